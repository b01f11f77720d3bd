package fake_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

func TestLatency(t *testing.T) {
	s, base := start(t, fake.Dataset())
	s.SetFaults(fake.Faults{Latency: 150 * time.Millisecond})

	began := time.Now()
	getPage(t, base+"/character?page=1")
	if got, least := time.Since(began), 150*time.Millisecond; got < least {
		t.Errorf("answer took %v, want at least %v", got, least)
	}

	// A client that gives up is not held for the full latency.
	s.SetFaults(fake.Faults{Latency: time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/character?page=1", nil)
	began = time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if got, most := time.Since(began), 10*time.Second; got > most {
		t.Errorf("cancelled request took %v", got)
	}
	if got, want := s.Requests(), int64(2); got != want {
		t.Errorf("Requests() = %d, want %d", got, want)
	}
}

func TestFailPagesThenSucceed(t *testing.T) {
	s, base := start(t, fake.Dataset())
	s.SetFaults(fake.Faults{FailPages: map[int]int{2: 2}})

	wantError(t, get(t, base+"/character?page=2"), http.StatusInternalServerError, "Internal Server Error")
	getPage(t, base+"/character?page=1") // other pages are unaffected
	wantError(t, get(t, base+"/character?page=2"), http.StatusInternalServerError, "Internal Server Error")
	getPage(t, base+"/character?page=2")
	getPage(t, base+"/character?page=2")

	if got, want := s.PageRequests(2), int64(4); got != want {
		t.Errorf("PageRequests(2) = %d, want %d", got, want)
	}
	if got, want := s.Requests(), int64(5); got != want {
		t.Errorf("Requests() = %d, want %d", got, want)
	}
	s.ResetCounters()
	if s.Requests() != 0 || s.PageRequests(2) != 0 {
		t.Errorf("after ResetCounters: %d, %d", s.Requests(), s.PageRequests(2))
	}
}

func TestFailPagesForeverWithStatus(t *testing.T) {
	s, base := start(t, fake.Dataset())
	// Page 0 is page 1, as the upstream counts it.
	s.SetFaults(fake.Faults{FailPages: map[int]int{1: -1}, Status: http.StatusServiceUnavailable})
	for range 5 {
		wantError(t, get(t, base+"/character?page=0"), http.StatusServiceUnavailable, "Service Unavailable")
	}
	s.SetFaults(fake.Faults{})
	getPage(t, base+"/character?page=1")
}

func TestRateLimit(t *testing.T) {
	s, base := start(t, fake.Dataset())
	s.SetFaults(fake.Faults{RateLimitPages: map[int]int{3: 1}, RetryAfter: "7"})
	res := get(t, base+"/character?page=3")
	wantError(t, res, http.StatusTooManyRequests, "Too Many Requests")
	if got, want := res.header.Get("Retry-After"), "7"; got != want {
		t.Errorf("Retry-After = %q, want %q", got, want)
	}
	getPage(t, base+"/character?page=3")

	s.SetFaults(fake.Faults{RateLimitPages: map[int]int{3: 1}})
	if got, want := get(t, base+"/character?page=3").header.Get("Retry-After"), "1"; got != want {
		t.Errorf("default Retry-After = %q, want %q", got, want)
	}
}

func TestMalformedPage(t *testing.T) {
	s, base := start(t, fake.Dataset())
	s.SetFaults(fake.Faults{MalformedPages: map[int]bool{4: true}})
	res := get(t, base+"/character?page=4")
	if got, want := res.status, http.StatusOK; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	var p upstream.Page
	if err := json.Unmarshal(res.body, &p); err == nil {
		t.Errorf("malformed page decoded fine: %s", res.body)
	}
}

func TestTruncatedPage(t *testing.T) {
	data := fake.Dataset()
	s, base := start(t, data)
	pages := (len(data) + 19) / 20
	s.SetFaults(fake.Faults{TruncatedPages: map[int]bool{1: true, pages: true}})

	p := getPage(t, base+"/character?page=1")
	if got, want := len(p.Results), 10; got != want {
		t.Errorf("truncated page 1 has %d results, want %d", got, want)
	}
	if got, want := p.Info.Count, len(data); got != want {
		t.Errorf("truncated page claims count %d, want %d", got, want)
	}
	last := getPage(t, base+"/character?page="+itoa(pages))
	if got, want := len(last.Results), (len(data)-(pages-1)*20)/2; got != want {
		t.Errorf("truncated last page has %d results, want %d", got, want)
	}
}

func TestCountChangesMidCrawl(t *testing.T) {
	data := fake.Dataset()
	s, base := start(t, data)
	s.SetFaults(fake.Faults{CountChangeAfter: 2, FailPages: map[int]int{2: 1}})

	counts := []int{
		getPage(t, base+"/character?page=1").Info.Count,
		getPage(t, base+"/character?page=1").Info.Count, // the 2nd success: grows right after
	}
	// Failures are not successes and do not count.
	wantError(t, get(t, base+"/character?page=2"), http.StatusInternalServerError, "Internal Server Error")
	counts = append(counts,
		getPage(t, base+"/character?page=2").Info.Count,
		getPage(t, base+"/character?page=3").Info.Count,
	)
	n := len(data)
	if want := []int{n, n, n + 1, n + 1}; !slices.Equal(counts, want) {
		t.Errorf("counts = %v, want %v (grows once, after 2 successes)", counts, want)
	}

	chars := s.Characters()
	added := chars[len(chars)-1]
	if got, want := added.ID, n+1; got != want {
		t.Errorf("added id = %d, want %d", got, want)
	}
	if added.Species != "Human" || added.Status != "Alive" || !strings.HasPrefix(added.Origin.Name, "Earth (") {
		t.Errorf("added character does not pass the exact filter: %+v", added)
	}
}

// Requests and data changes race on purpose; -race checks the locking.
func TestConcurrentUse(t *testing.T) {
	s, base := start(t, fake.Dataset())
	s.SetFaults(fake.Faults{FailPages: map[int]int{1: 3}, CountChangeAfter: 5})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				// Not get: t.Fatal must not run outside the test's goroutine.
				res, err := http.Get(base + "/character?page=" + itoa(1+(w+i)%5))
				if err != nil {
					t.Error(err)
					continue
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusInternalServerError {
					t.Errorf("status %d", res.StatusCode)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			s.Update(func(c []upstream.Character) []upstream.Character { c[0].Status = "Dead"; return c })
			s.SetCharacters(s.Characters())
			_ = s.PageRequests(1)
		}
	})
	wg.Wait()
	if got, want := s.Requests(), int64(40); got != want {
		t.Errorf("Requests() = %d, want %d", got, want)
	}
}

func TestFaultsJSON(t *testing.T) {
	f := fake.Faults{
		Latency:          100 * time.Millisecond,
		FailPages:        map[int]int{3: 2},
		Status:           503,
		RateLimitPages:   map[int]int{5: -1},
		RetryAfter:       "2",
		MalformedPages:   map[int]bool{7: true},
		TruncatedPages:   map[int]bool{8: true},
		CountChangeAfter: 4,
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"latency":"100ms","fail_pages":{"3":2},"status":503,"rate_limit_pages":{"5":-1},"retry_after":"2","malformed_pages":{"7":true},"truncated_pages":{"8":true},"count_change_after":4}`
	if got := string(b); got != want {
		t.Errorf("json = %s\nwant   %s", got, want)
	}
	var back fake.Faults
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, back), string(b); got != want {
		t.Errorf("round trip = %s, want %s", got, want)
	}

	if err := json.Unmarshal([]byte(`{"latency":2000000}`), &back); err != nil || back.Latency != 2*time.Millisecond {
		t.Errorf("latency in ns: %v, %v", back.Latency, err)
	}
	if got, want := mustJSON(t, fake.Faults{}), `{}`; got != want {
		t.Errorf("empty faults = %s, want %s", got, want)
	}
	for _, bad := range []string{`{"latency":"soon"}`, `{"fail_page":{"1":1}}`, `{"latency":true}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	for _, bad := range []fake.Faults{
		{Latency: -1}, {Status: 200}, {FailPages: map[int]int{1: -2}}, {RateLimitPages: map[int]int{0: 1}},
		{MalformedPages: map[int]bool{-1: true}}, {CountChangeAfter: -1},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v): no error", bad)
		}
	}
}
