package main

import (
	"testing"
	"time"

	"github.com/rickmorty/rickmorty/pkg/ingest"
)

// The interval exported as rickmorty_ingest_schedule_interval_seconds (the
// RickmortyDataStale threshold is 3 of them).
func TestScheduleInterval(t *testing.T) {
	// A Thursday, 10:00:30 UTC.
	thu := time.Date(2025, time.June, 5, 10, 0, 30, 0, time.UTC)
	for _, tc := range []struct {
		spec string
		at   time.Time
		want time.Duration
	}{
		{"@every 5m", thu, 5 * time.Minute},
		{"@every 1h", thu, time.Hour},
		{"@every 90s", thu.Add(123 * time.Millisecond), 90 * time.Second},
		{"*/10 * * * *", thu, 10 * time.Minute},
		{"@hourly", thu, time.Hour},
		{"@daily", thu, 24 * time.Hour},
		{"0 9 * * 1-5", thu, 72 * time.Hour},                     // next Fri 09:00, then Mon 09:00
		{"0 9 * * 1-5", thu.Add(-2 * time.Hour), 24 * time.Hour}, // next Thu 09:00, then Fri 09:00
		{"0 0 30 2 *", thu, 0},                                   // never fires
	} {
		s, err := ingest.ParseSchedule(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := ingest.ScheduleInterval(s, tc.at); got != tc.want {
			t.Errorf("ScheduleInterval(%q at %s) = %s, want %s", tc.spec, tc.at.Format(time.RFC3339), got, tc.want)
		}
	}
}
