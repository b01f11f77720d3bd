package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

func newClient(base string, concurrency int) *upstream.Client {
	return upstream.New(upstream.Config{
		BaseURL: base, Timeout: 5 * time.Second, Retries: 2,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, MaxRetryAfter: time.Second,
		Concurrency: concurrency,
	}, slog.New(slog.DiscardHandler), nil)
}

func TestCrawlReturnsEveryCharacterOnce(t *testing.T) {
	f := fake.New(fake.Dataset())
	srv := httptest.NewServer(f)
	defer srv.Close()

	res, err := newClient(srv.URL+"/api", 4).Crawl(context.Background())
	if err != nil {
		t.Fatalf("Crawl: %v", err)
	}
	want := f.Characters()
	if got, want := len(res.Characters), len(want); got != want {
		t.Fatalf("got %d characters, want %d", got, want)
	}
	for i := range want {
		if res.Characters[i].ID != want[i].ID {
			t.Fatalf("character %d has id %d, want %d (page order)", i, res.Characters[i].ID, want[i].ID)
		}
	}
	if got, want := res.Pages, (len(want)+19)/20; got != want {
		t.Errorf("Pages = %d, want %d", got, want)
	}
}

func TestCrawlOfAnEmptyUpstreamIsEmpty(t *testing.T) {
	srv := httptest.NewServer(fake.New(nil))
	defer srv.Close()
	res, err := newClient(srv.URL+"/api", 2).Crawl(context.Background())
	if err != nil {
		t.Fatalf("Crawl: %v", err)
	}
	if len(res.Characters) != 0 || res.Count != 0 {
		t.Errorf("got %d characters, count %d; want none", len(res.Characters), res.Count)
	}
}

// shiftingUpstream answers pages whose count grows with every request.
func shiftingUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		count := 100 + int(n)
		p := upstream.Page{Info: upstream.Info{Count: count, Pages: (count + 19) / 20}}
		for i := range 20 {
			id := (page-1)*20 + i + 1
			p.Results = append(p.Results, upstream.Character{ID: id, Name: "C", URL: "u", Created: "2017-11-04T18:48:46.250Z"})
		}
		_ = json.NewEncoder(w).Encode(p)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestCrawlFailsWhenTheUpstreamKeepsChanging(t *testing.T) {
	srv, _ := shiftingUpstream(t)
	_, err := newClient(srv.URL, 1).Crawl(context.Background())
	if !errors.Is(err, upstream.ErrChanged) {
		t.Fatalf("Crawl error = %v, want ErrChanged", err)
	}
}

func TestCrawlRespectsTheConcurrencyBound(t *testing.T) {
	f := fake.New(fake.Dataset())
	var inFlight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	if _, err := newClient(srv.URL+"/api", 3).Crawl(context.Background()); err != nil {
		t.Fatalf("Crawl: %v", err)
	}
	if got, want := peak.Load(), int64(3); got != want {
		t.Errorf("peak concurrent requests = %d, want %d", got, want)
	}
}

func TestCrawlStopsOnCancel(t *testing.T) {
	f := fake.New(fake.Dataset())
	f.SetFaults(fake.Faults{Latency: time.Minute})
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newClient(srv.URL+"/api", 2).Crawl(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Crawl error = %v, want context.DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Crawl took %s after cancellation", elapsed)
	}
}

func TestMetricsCountEveryAttempt(t *testing.T) {
	f := fake.New(fake.Dataset())
	f.SetFaults(fake.Faults{FailPages: map[int]int{2: 1}})
	srv := httptest.NewServer(f)
	defer srv.Close()
	m := upstream.NewMetrics(nil)
	c := upstream.New(upstream.Config{BaseURL: srv.URL + "/api", Timeout: time.Second, Retries: 2,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond, Concurrency: 2},
		slog.New(slog.DiscardHandler), m)
	res, err := c.Crawl(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := counterValue(t, m.Requests.WithLabelValues("500")), 1.0; got != want {
		t.Errorf("requests{code=500} = %v, want %v", got, want)
	}
	if got, want := counterValue(t, m.Requests.WithLabelValues("200")), float64(res.Pages); got != want {
		t.Errorf("requests{code=200} = %v, want %v", got, want)
	}
	if got, want := counterValue(t, m.Retries), 1.0; got != want {
		t.Errorf("retries = %v, want %v", got, want)
	}
}

// BenchmarkCrawl42Pages measures a crawl of 42 pages (826 characters, the
// real upstream's size) with 100ms latency per page against the limit
// ceil(42/concurrency) x 100ms. Results are in docs/benchmarks.md.
func BenchmarkCrawl42Pages(b *testing.B) {
	f := fake.New(fake.DatasetOfSize(826))
	f.SetFaults(fake.Faults{Latency: 100 * time.Millisecond})
	srv := httptest.NewServer(f)
	defer srv.Close()
	for _, c := range []int{1, 4, 8, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) {
			client := newClient(srv.URL+"/api", c)
			limit := time.Duration((42+c-1)/c) * 100 * time.Millisecond
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				res, err := client.Crawl(context.Background())
				if err != nil || len(res.Characters) != 826 {
					b.Fatalf("Crawl: %d characters, %v", len(res.Characters), err)
				}
				total += time.Since(start)
			}
			wall := total / time.Duration(b.N)
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.ReportMetric(float64(wall)/float64(limit), "x-limit")
		})
	}
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

func TestATransientlyTruncatedPageIsFetchedAgain(t *testing.T) {
	f := fake.New(fake.Dataset())
	var truncated atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "2" && !truncated.Swap(true) {
			rec := httptest.NewRecorder()
			f.ServeHTTP(rec, r)
			var p upstream.Page
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Error(err)
			}
			p.Results = p.Results[:7] // a proxy cut the page short, once
			_ = json.NewEncoder(w).Encode(p)
			return
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	res, err := newClient(srv.URL+"/api", 2).Crawl(context.Background())
	if err != nil {
		t.Fatalf("Crawl: %v", err)
	}
	if got, want := len(res.Characters), len(f.Characters()); got != want {
		t.Errorf("got %d characters, want %d", got, want)
	}
}
