package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rickmorty/rickmorty/pkg/upstream"
)

// hostileClient is a client with fast retries against srv.
func hostileClient(srv *httptest.Server, maxPages int) *upstream.Client {
	return upstream.New(upstream.Config{
		BaseURL: srv.URL, Timeout: time.Second, Retries: 2,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond,
		Concurrency: 4, MaxPages: maxPages,
	}, slog.New(slog.DiscardHandler), nil)
}

// fullPage is a valid first page of 20 characters that claims count in all.
func fullPage(count int64) string {
	results := ""
	for id := 1; id <= 20; id++ {
		if id > 1 {
			results += ","
		}
		results += fmt.Sprintf(`{"id":%d,"name":"N%d","status":"Alive","species":"Human","type":"","gender":"Female",`+
			`"origin":{"name":"Earth (C-137)","url":""},"location":{"name":"x","url":""},"image":"i","episode":[],`+
			`"url":"u%d","created":"2017-11-04T18:48:46.250Z"}`, id, id, id)
	}
	pages := count/20 + min(count%20, 1)
	return fmt.Sprintf(`{"info":{"count":%d,"pages":%d,"next":null,"prev":null},"results":[%s]}`, count, pages, results)
}

func TestHugeCountsFailTheCrawlInsteadOfTheProcess(t *testing.T) {
	t.Parallel()
	for _, count := range []int64{1e11, 2e16, 1<<63 - 1} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, fullPage(count))
		}))
		_, err := hostileClient(srv, 0).Crawl(context.Background())
		srv.Close()
		if !errors.Is(err, upstream.ErrTooLarge) {
			t.Errorf("count %d: err = %v, want ErrTooLarge", count, err)
		}
	}
}

func TestMaxPagesIsEnforcedAtItsValue(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, fullPage(61))
	}))
	defer srv.Close()
	_, err := hostileClient(srv, 3).Crawl(context.Background())
	if !errors.Is(err, upstream.ErrTooLarge) {
		t.Errorf("4 pages with a limit of 3: %v, want ErrTooLarge", err)
	}
}

func TestAnOverflowingRetryAfterIsWaitedAtTheCap(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "9300000000") // seconds: overflows a Duration
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	start := time.Now()
	_, err := hostileClient(srv, 0).Crawl(context.Background())
	if err == nil {
		t.Fatal("crawl of an always-429 upstream succeeded")
	}
	// 3 attempts of page 1, each retry after the 50ms cap (not at once).
	if got, want := requests.Load(), int64(3); got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("crawl took %s: the retries did not wait the capped Retry-After", took)
	}
}

// FuzzCrawl feeds arbitrary status codes, Retry-After headers and bodies as
// every page of the upstream through the real crawl path: whatever arrives,
// the crawl ends with a result or an error, never a panic or a hang.
func FuzzCrawl(f *testing.F) {
	f.Add(200, "", []byte(`{"info":{"count":1,"pages":1,"next":null,"prev":null},"results":[{"id":1,"name":"A","status":"Alive","species":"Human","type":"","gender":"Female","origin":{"name":"Earth (C-137)","url":""},"location":{"name":"x","url":""},"image":"i","episode":[],"url":"u","created":"2017-11-04T18:48:46.250Z"}]}`))
	f.Add(200, "", []byte(fullPage(1e11)))
	f.Add(200, "", []byte(fullPage(2e16)))
	f.Add(200, "", []byte(`{"info":{"count":9223372036854775807,"pages":-1},"results":null}`))
	f.Add(200, "", []byte(`{"info":{"count":41,"pages":3},"results":[]}`))
	f.Add(429, "9300000000", []byte(`{}`))
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(``))
	f.Add(404, "", []byte(`{"error":"There is nothing here"}`))
	f.Add(200, "", []byte(`[1,2,3]`))
	f.Add(200, "", []byte("\x00\xff{"))
	f.Add(301, "", []byte(``))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 100 || status > 599 {
			status = 200
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if retryAfter != "" && validHeaderValue(retryAfter) {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := hostileClient(srv, 50).Crawl(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the crawl did not end within 5s (err %v)", err)
		}
		if err == nil && len(res.Characters) != res.Count {
			t.Fatalf("a successful crawl of %d characters says count %d", len(res.Characters), res.Count)
		}
	})
}

func validHeaderValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
