package upstream

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		// Too many seconds for a Duration: the longest wait, never a
		// negative one (which retried at once).
		{"9300000000", time.Duration(math.MaxInt64), true},
		{"99999999999999999999999", time.Duration(math.MaxInt64), true},
		{"9223372036", 9223372036 * time.Second, true},
		{"+5", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoffHonoursAndCapsRetryAfter(t *testing.T) {
	b := backoff(5 * time.Second)
	resp := func(code int, ra string) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}}
		if ra != "" {
			r.Header.Set("Retry-After", ra)
		}
		return r
	}
	if got, want := b(time.Millisecond, time.Second, 0, resp(429, "2")), 2*time.Second; got != want { //nolint:bodyclose // a bare Response without a Body, built for the test
		t.Errorf("429 Retry-After 2 -> %s, want %s", got, want)
	}
	if got, want := b(time.Millisecond, time.Second, 0, resp(503, "3600")), 5*time.Second; got != want { //nolint:bodyclose // a bare Response without a Body, built for the test
		t.Errorf("503 Retry-After 3600 -> %s, want the cap %s", got, want)
	}
	for _, huge := range []string{"9300000000", "18446744073709551616"} {
		if got, want := b(time.Millisecond, time.Second, 0, resp(429, huge)), 5*time.Second; got != want { //nolint:bodyclose // a bare Response without a Body, built for the test
			t.Errorf("429 Retry-After %s -> %s, want the cap %s", huge, got, want)
		}
	}
	// Without Retry-After, and for other statuses, exponential jitter applies.
	for attempt := range 8 {
		got := b(10*time.Millisecond, 200*time.Millisecond, attempt, resp(500, "60")) //nolint:bodyclose // a bare Response without a Body, built for the test
		ceiling := min(10*time.Millisecond<<attempt, 200*time.Millisecond)
		if got < 10*time.Millisecond || got > ceiling {
			t.Errorf("attempt %d: backoff %s outside [10ms, %s]", attempt, got, ceiling)
		}
	}
}
