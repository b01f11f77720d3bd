package charttest

import (
	"strings"
	"testing"
)

// Values the schema accepted although the binaries refuse them at start, so
// that a valid `helm install` CrashLoops (issue "Hardening", item 8): the
// chart must refuse each, and accept the bounds themselves. The full
// comparison with the Go declarations is in cmd/api and cmd/ingester
// (settings_drift_test.go).
func TestChartRefusesWhatTheBinariesRefuse(t *testing.T) {
	for _, set := range []string{
		`api.config.cacheTTL="25h"`,
		`api.config.shutdownDrain="10m"`,
		`api.config.cacheMaxEntries=20000000`,
		`api.config.dbMaxConns=2000`,
		`api.config.rateLimitBurst=2000000`,
		`api.config.cacheControlSMaxAge="8761h"`,
		`api.config.cacheControlMaxAge="1 minute"`,
		`api.config.cacheControlStaleIfError="1.5s"`,
		`api.config.cacheControlMaxAge="500ms"`,
		`api.config.compressionMinBytes=0`,
		`ingester.config.upstreamTimeout="50ms"`,
		`ingester.config.upstreamTimeout="10m"`,
		`ingester.config.schedule="61 * * * *"`,
		`ingester.config.schedule="0 24 * * *"`,
		`ingester.config.schedule="0 0 0 * *"`,
		`ingester.config.schedule="0 0 * 13 *"`,
		`ingester.config.schedule="0 0 * * 7"`,
		`ingester.config.schedule="TZ=UTC 0-60 * * * *"`,
	} {
		if _, err := tryRender("--set-json", set); err == nil {
			t.Errorf("--set-json %s: rendered; want the chart to refuse it", set)
		} else if name, _, _ := strings.Cut(set, "="); !strings.Contains(err.Error(), name) && !strings.Contains(err.Error(), strings.ReplaceAll(name, ".", "/")) {
			t.Errorf("--set-json %s: the error does not name the value: %v", set, err)
		}
	}
	render(t,
		"--set-json", `api.config.cacheTTL="24h"`, "--set-json", `api.config.shutdownDrain="5m"`,
		"--set-json", `api.config.cacheMaxEntries=10000000`, "--set-json", `api.config.dbMaxConns=1000`,
		"--set-json", `api.config.rateLimitBurst=1000000`, "--set-json", `ingester.config.upstreamTimeout="5m"`,
		"--set-json", `ingester.config.schedule="59 23 31 12 6"`)
	render(t,
		"--set-json", `api.config.cacheTTL="0s"`, "--set-json", `api.config.shutdownDrain="0s"`,
		"--set-json", `api.config.cacheMaxEntries=1`, "--set-json", `api.config.dbMaxConns=1`,
		"--set-json", `api.config.rateLimitBurst=1`, "--set-json", `ingester.config.upstreamTimeout="0.1s"`,
		"--set-json", `ingester.config.schedule="*/90 0-23 1-31/2 JAN-DEC SUN-SAT"`)
}
