package main

import (
	"fmt"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/config/configtest"
	"github.com/rickmorty/rickmorty/pkg/ingest"
)

// The README's table lists exactly the declared settings, with their
// defaults and stated ranges.
func TestREADMEListsTheSettings(t *testing.T) {
	configtest.CheckREADME(t, "### Configuration (ingester)", settings(&Config{}))
}

// The chart refuses what the ingester refuses at start (a valid install
// must not CrashLoop) and passes what it accepts.
func TestChartBoundsAreTheSettings(t *testing.T) {
	values := configtest.ChartValues(t, "ingester.config", "templates/_helpers.tpl")
	if len(values) < 6 {
		t.Fatalf("found only %v in the ingester's env", values)
	}
	configtest.CheckChart(t, settings(&Config{}), "ingester", values)
}

// The chart accepts a cron spec exactly when the ingester does.
func TestChartChecksTheScheduleAsTheIngesterDoes(t *testing.T) {
	for _, spec := range []string{
		"59 23 31 12 6", "0 0 1 1 0", "*/90 * * * *", "0-59/5 0-23 1-31 JAN-DEC SUN-SAT", "TZ=Europe/Berlin 0 9 * * 1-5", "@every 5m", "@hourly",
		"61 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 32 * *", "0 0 * 0 *", "0 0 * 13 *", "0 0 * * 7", "0,60 * * * *", "0 1-24 * * *",
	} {
		_, parseErr := ingest.ParseSchedule(spec)
		_, chartErr := configtest.Helm(t, "--set-json", fmt.Sprintf("ingester.config.schedule=%q", spec))
		if (parseErr == nil) != (chartErr == nil) {
			t.Errorf("schedule %q: the ingester says %v, the chart says %v", spec, parseErr, chartErr)
		}
	}
}
