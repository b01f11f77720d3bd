package opscheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// requiredAlerts are the alerts the Observability issue (and, for the
// refusals, the operators' issue) asks for.
var requiredAlerts = []string{
	"RickmortyIngestRefused",      // the mass-delete guard refused a sync
	"RickmortyAPIHigh5xxRatio",    // high 5xx ratio
	"RickmortyAPILatencyHigh",     // p95 latency over SLO
	"RickmortyDataStale",          // no successful ingest for 3 schedule intervals
	"RickmortyIngestFailing",      // repeated ingest failures
	"RickmortyUpstreamErrorRatio", // upstream error ratio
	"RickmortyAPINoReadyPods",     // API has no ready pods
	"RickmortyTargetDown",         // scrape target down
	"RickmortyPodCrashLooping",    // pods crash-looping
	"RickmortyCacheListenerDown",  // cache invalidation listener down
}

// requiredDashboardSeries are what the panel list needs at least.
var requiredDashboardSeries = []string{
	"rickmorty_http_requests_total",                      // request rate by route and status, error ratio
	"rickmorty_http_request_duration_seconds_bucket",     // p50/p95/p99 by route
	"rickmorty_cache_hits_total",                         // cache hit ratio
	"rickmorty_cache_misses_total",                       // cache hit ratio
	"rickmorty_cache_invalidations_total",                // invalidations
	"kube_pod_status_ready",                              // API pods ready
	"rickmorty_db_query_duration_seconds_bucket",         // DB query latency
	"rickmorty_listener_reconnects_total",                // listener reconnects
	"rickmorty_ingest_runs_total",                        // ingest runs by result
	"rickmorty_ingest_last_success_timestamp_seconds",    // last successful ingest age
	"rickmorty_ingest_schedule_interval_seconds",         // the RickmortyDataStale threshold (3 intervals)
	"rickmorty_ingest_duration_seconds_bucket",           // ingest duration
	"rickmorty_ingest_rows_total",                        // rows inserted/updated/deleted
	"rickmorty_characters_stored",                        // stored characters
	"rickmorty_upstream_requests_total",                  // upstream rate/errors
	"rickmorty_upstream_retries_total",                   // upstream retries
	"rickmorty_upstream_request_duration_seconds_bucket", // upstream latency
}

var severities = []string{"critical", "warning"}

func TestDashboardIsValidAndEveryPanelHasAQuery(t *testing.T) {
	raw := readRepoFile(t, dashboardPath)
	if !json.Valid(raw) {
		t.Fatalf("%s is not valid JSON", dashboardPath)
	}
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a uid and a title (got uid %q, title %q)", d.UID, d.Title)
	}

	// Variables: a Prometheus data-source variable, and namespace and pod.
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || string(v.Query) != `"prometheus"` {
		t.Errorf("want a variable datasource of type datasource with query \"prometheus\", got %+v", v)
	}
	for _, name := range []string{"namespace", "pod"} {
		if v, ok := vars[name]; !ok || v.Type != "query" {
			t.Errorf("want a query variable %q", name)
		}
	}

	// No hard-coded data source anywhere: every "datasource" reference is
	// the variable.
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	walkJSON(doc, "", func(path string, key string, val any) {
		if key != "datasource" {
			return
		}
		switch ds := val.(type) {
		case string:
			if !isDatasourceVar(ds) {
				t.Errorf("%s: datasource %q is hard-coded; use ${datasource}", path, ds)
			}
		case map[string]any:
			uid, _ := ds["uid"].(string)
			if !isDatasourceVar(uid) {
				t.Errorf("%s: datasource uid %q is hard-coded; use ${datasource}", path, uid)
			}
			if typ, _ := ds["type"].(string); typ != "prometheus" {
				t.Errorf("%s: datasource type %q, want prometheus", path, typ)
			}
		case nil:
		default:
			t.Errorf("%s: unexpected datasource value %v", path, val)
		}
	})

	// Panels: unique ids, on the grid, not overlapping, and every panel
	// that is not a row has queries, none of them empty.
	ids := map[int]string{}
	var cells [][24]string
	panels := allPanels(d.Panels)
	if len(panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	for _, p := range panels {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or already used by %q", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		if p.Title == "" {
			t.Errorf("panel id %d has no title", p.ID)
		}
		if g := p.GridPos; g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: gridPos %+v is missing or off the 24-column grid", p.Title, p.GridPos)
		} else {
			for len(cells) < g.Y+g.H {
				cells = append(cells, [24]string{})
			}
			for y := g.Y; y < g.Y+g.H; y++ {
				for x := g.X; x < g.X+g.W; x++ {
					if other := cells[y][x]; other != "" {
						t.Errorf("panel %q overlaps panel %q at x=%d y=%d", p.Title, other, x, y)
					}
					cells[y][x] = p.Title
				}
			}
		}
		if p.Type == "row" {
			if len(p.Targets) > 0 {
				t.Errorf("row %q has queries", p.Title)
			}
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q (id %d) has no query", p.Title, p.ID)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q (id %d): query %s is empty", p.Title, p.ID, tg.RefID)
			}
		}
	}

	// Every query parses, and the panels are there.
	used := map[string]bool{}
	for _, q := range dashboardQueries(t) {
		for _, vs := range selectors(q.ast) {
			used[metricName(vs)] = true
		}
	}
	for _, name := range requiredDashboardSeries {
		if !used[name] {
			t.Errorf("no dashboard query uses %s", name)
		}
	}
}

// requiredAnnotations are the dashboard's annotations the operators' issue
// asks for, each recognised by a series its query must read and a word it
// must contain: ingests that changed data, failed and refused runs.
var requiredAnnotations = []struct{ series, contains string }{
	{"rickmorty_ingest_rows_total", ""},
	{"rickmorty_ingest_runs_total", "failed"},
	{"rickmorty_ingest_runs_total", "refused"},
}

// TestDashboardAnnotations: every annotation query is an enabled
// Prometheus query of the dashboard's data source, with a name, a step and
// a title, and the required ones are there. Their metric names are checked
// against the real exposition with the panels' (dashboardQueries).
func TestDashboardAnnotations(t *testing.T) {
	d := loadDashboard(t)
	found := make([]bool, len(requiredAnnotations))
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 {
			continue
		}
		if a.Name == "" || !a.Enable || strings.TrimSpace(a.Expr) == "" || a.Step == "" || a.TitleFormat == "" {
			t.Errorf("annotation %+v: want a name, enable, an expr, a step and a titleFormat", a)
		}
		if a.Datasource == nil || !isDatasourceVar(a.Datasource.UID) {
			t.Errorf("annotation %q: datasource %+v, want ${datasource}", a.Name, a.Datasource)
		}
		q := parseQuery(t, "annotation "+a.Name, a.Expr)
		for i, r := range requiredAnnotations {
			if strings.Contains(a.Expr, r.contains) && slices.ContainsFunc(selectors(q.ast), func(vs *parser.VectorSelector) bool {
				return metricName(vs) == r.series
			}) {
				found[i] = true
			}
		}
	}
	for i, r := range requiredAnnotations {
		if !found[i] {
			t.Errorf("no annotation reads %s with %q", r.series, r.contains)
		}
	}
}

func isDatasourceVar(s string) bool { return s == "${datasource}" || s == "$datasource" }

// walkJSON calls f for every key of every object in v.
func walkJSON(v any, path string, f func(path, key string, val any)) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			f(path, k, val)
			walkJSON(val, path+"."+k, f)
		}
	case []any:
		for i, val := range x {
			walkJSON(val, fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
}

func TestRulesHaveForSeveritySummaryAndRunbookSection(t *testing.T) {
	anchors := runbookAnchors(t)
	seen := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue // recording rules need none of this
			}
			name := r.Alert
			if seen[name] {
				t.Errorf("alert %s is defined twice", name)
			}
			seen[name] = true
			if r.For <= 0 {
				t.Errorf("alert %s: needs a positive for:", name)
			}
			if s := r.Labels["severity"]; !slices.Contains(severities, s) {
				t.Errorf("alert %s: severity label %q, want one of %v", name, s, severities)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: annotation %s is missing", name, a)
				}
			}
			u := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(u, runbookURLPrefix)
			switch {
			case !ok || anchor == "":
				t.Errorf("alert %s: runbook_url %q does not start with %s<anchor>", name, u, runbookURLPrefix)
			case !anchors[anchor]:
				t.Errorf("alert %s: runbook_url anchor #%s is not a heading of %s (headings: %v)", name, anchor, runbookPath, sortedKeys(anchors))
			}
		}
	}
	for _, name := range requiredAlerts {
		if !seen[name] {
			t.Errorf("required alert %s is missing from %s", name, rulesPath)
		}
	}
}

// promtoolTests is the part of promtool's unit-test file format read here.
type promtoolTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// promtool runs the tests; this checks that they exist: every alert has a
// case where it fires and one where it stays quiet.
func TestEveryAlertHasFiringAndQuietUnitTests(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, ruleTestsGlob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool test files match %s (%v)", ruleTestsGlob, err)
	}
	fires, quiet := map[string]int{}, map[string]int{}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		var pt promtoolTests
		if err := yaml.Unmarshal(readRepoFile(t, rel), &pt); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if !slices.ContainsFunc(pt.RuleFiles, func(s string) bool {
			return filepath.Clean(filepath.Join(filepath.Dir(f), s)) == filepath.Join(root, rulesPath)
		}) {
			t.Errorf("%s: rule_files %v does not load %s", rel, pt.RuleFiles, rulesPath)
		}
		for _, tc := range pt.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
		}
	}
	alerts := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts[r.Alert] = true
			}
		}
	}
	for name := range alerts {
		if fires[name] == 0 {
			t.Errorf("alert %s: no promtool test case where it fires", name)
		}
		if quiet[name] == 0 {
			t.Errorf("alert %s: no promtool test case where it stays quiet", name)
		}
	}
	for name := range fires {
		if !alerts[name] {
			t.Errorf("promtool tests expect alert %s, which %s does not define", name, rulesPath)
		}
	}
}

// runbookAnchors returns the anchors GitHub generates for the runbook's
// headings: lower case, punctuation dropped, spaces to hyphens, and -1, -2
// appended to repeats.
func runbookAnchors(t testing.TB) map[string]bool {
	t.Helper()
	anchors := map[string]bool{}
	count := map[string]int{}
	inFence := false
	sc := bufio.NewScanner(bytes.NewReader(readRepoFile(t, runbookPath)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if len(line)-len(text) > 6 || (text != "" && text[0] != ' ') {
			continue // not an ATX heading
		}
		slug := githubSlug(strings.TrimSpace(text))
		if n := count[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		count[slug]++
	}
	return anchors
}

func githubSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestGithubSlug(t *testing.T) {
	for in, want := range map[string]string{
		"RickmortyDataStale":                      "rickmortydatastale",
		"Probes: /healthz, /readyz, /healthcheck": "probes-healthz-readyz-healthcheck",
		"Caches when scaling (in & out)":          "caches-when-scaling-in--out",
		"Manual re-ingest":                        "manual-re-ingest",
	} {
		if got := githubSlug(in); got != want {
			t.Errorf("githubSlug(%q) = %q, want %q", in, got, want)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
