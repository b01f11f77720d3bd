package e2e

import (
	"fmt"
	"testing"
	"time"
)

// series is one documented metric: a sample name, label pairs its samples
// must include, and a check of the value.
type series struct {
	name   string
	labels []string
	check  func(float64) error
}

func atLeast(lowest float64) func(float64) error {
	return func(v float64) error {
		if v < lowest {
			return fmt.Errorf("%v, want at least %v", v, lowest)
		}
		return nil
	}
}

func equals(want float64) func(float64) error {
	return func(v float64) error {
		if v != want {
			return fmt.Errorf("%v, want %v", v, want)
		}
		return nil
	}
}

var present = atLeast(0)

// checkSeries requires every series in e, each check passing for the sum of
// its matching samples.
func checkSeries(t *testing.T, where string, e exposition, want []series) {
	t.Helper()
	for _, s := range want {
		m := e.find(s.name, s.labels...)
		if len(m) == 0 {
			t.Errorf("%s: no series %s%v", where, s.name, s.labels)
			continue
		}
		sum := 0.0
		for _, smp := range m {
			sum += smp.value
		}
		if err := s.check(sum); err != nil {
			t.Errorf("%s: %s%v = %v", where, s.name, s.labels, err)
		}
	}
}

// TestMetrics: both binaries' /metrics expose the documented series, with
// values that match what the system has done.
func TestMetrics(t *testing.T) {
	sys.baseline(t)

	// The ingester's own runs: at least the one at its start succeeded.
	ing := sys.metrics(t, sys.ingesterMetrics)
	now := float64(time.Now().Unix())
	checkSeries(t, sys.ingesterMetrics, ing, []series{
		{"rickmorty_build_info", []string{"component", "ingester"}, equals(1)},
		{"rickmorty_ingest_runs_total", []string{"result", "success"}, atLeast(1)},
		{"rickmorty_ingest_runs_total", []string{"result", "failed"}, present},
		{"rickmorty_ingest_runs_total", []string{"result", "refused"}, present},
		{"rickmorty_ingest_duration_seconds_bucket", []string{"le", "+Inf"}, atLeast(1)},
		{"rickmorty_ingest_duration_seconds_sum", nil, present},
		{"rickmorty_ingest_duration_seconds_count", nil, atLeast(1)},
		{"rickmorty_ingest_rows_total", []string{"operation", "inserted"}, present},
		{"rickmorty_ingest_rows_total", []string{"operation", "updated"}, present},
		{"rickmorty_ingest_rows_total", []string{"operation", "deleted"}, present},
		{"rickmorty_characters_stored", nil, atLeast(1)},
		{"rickmorty_ingest_last_success_timestamp_seconds", nil, func(v float64) error {
			if v < now-24*3600 || v > now+60 {
				return fmt.Errorf("%v is not a recent Unix time (now %v)", v, now)
			}
			return nil
		}},
		{"rickmorty_upstream_requests_total", []string{"code", "200"}, atLeast(1)},
		{"rickmorty_upstream_request_duration_seconds_count", nil, atLeast(1)},
		{"rickmorty_upstream_retries_total", nil, present},
		{"rickmorty_ingest_data_version", nil, atLeast(1)},
		{"rickmorty_ingest_schedule_interval_seconds", nil, atLeast(1)},
	})
	if got := ing.types["rickmorty_ingest_runs_total"]; got != "counter" {
		t.Errorf("%s: rickmorty_ingest_runs_total has type %q, want counter", sys.ingesterMetrics, got)
	}
	for _, h := range []string{"rickmorty_ingest_duration_seconds", "rickmorty_upstream_request_duration_seconds"} {
		if got := ing.types[h]; got != "histogram" {
			t.Errorf("%s: %s has type %q, want histogram", sys.ingesterMetrics, h, got)
		}
	}

	for _, api := range sys.apis {
		// Traffic the counters must reflect: a list, an item, a 404.
		sys.get(t, api+"/characters?page_size=3")
		sys.get(t, api+"/characters?page_size=3")
		sys.get(t, api+"/characters/2147483000")
		e := sys.metrics(t, api+"/metrics")
		checkSeries(t, api+"/metrics", e, []series{
			{"rickmorty_build_info", []string{"component", "api"}, equals(1)},
			{"rickmorty_http_requests_total", []string{"route", "/characters", "method", "GET", "code", "200"}, atLeast(2)},
			{"rickmorty_http_requests_total", []string{"route", "/characters/:id", "code", "404"}, atLeast(1)},
			{"rickmorty_http_request_duration_seconds_bucket", []string{"route", "/characters", "le", "+Inf"}, atLeast(2)},
			{"rickmorty_cache_hits_total", nil, atLeast(1)},
			{"rickmorty_cache_misses_total", nil, atLeast(1)},
			{"rickmorty_cache_evictions_total", nil, present},
			{"rickmorty_cache_invalidations_total", nil, atLeast(1)},
			{"rickmorty_cache_entries", nil, atLeast(1)},
			{"rickmorty_listener_connected", nil, equals(1)},
			{"rickmorty_listener_reconnects_total", nil, present},
			{"rickmorty_db_query_duration_seconds_count", []string{"query", "list"}, atLeast(1)},
			{"process_start_time_seconds", nil, atLeast(1)},
			{"go_goroutines", nil, atLeast(1)},
		})
	}
}
