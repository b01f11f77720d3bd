package main

import (
	"testing"

	"github.com/rickmorty/rickmorty/pkg/config/configtest"
)

// The README's table lists exactly the declared settings, with their
// defaults and stated ranges.
func TestREADMEListsTheSettings(t *testing.T) {
	t.Parallel()
	configtest.CheckREADME(t, "### Configuration (API)", settings(&Config{}))
}

// The chart refuses what the API refuses at start (a valid install must not
// CrashLoop) and passes what it accepts.
func TestChartBoundsAreTheSettings(t *testing.T) {
	t.Parallel()
	values := configtest.ChartValues(t, "api.config", "charts/api/templates/deployment.yaml")
	if len(values) < 7 {
		t.Fatalf("found only %v in the api Deployment", values)
	}
	configtest.CheckChart(t, settings(&Config{}), "api", values)
}
