package opscheck

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Paths of the files under test, relative to the repository root.
const (
	rulesPath     = "ops/alerts/rules.yaml"
	ruleTestsGlob = "ops/alerts/tests/*.yaml"
	dashboardPath = "ops/grafana/dashboard.json"
	runbookPath   = "docs/runbook.md"
)

// runbookURLPrefix is what every runbook_url starts with; the rest is the
// anchor of a heading in docs/runbook.md.
const runbookURLPrefix = "https://github.com/rickmorty/rickmorty/blob/main/docs/runbook.md#"

// externalSeries are the series the dashboard and the rules may use although
// no rickmorty binary exports them. Everything else must appear on the real
// binaries' /metrics. Keep this list short and explicit: a typo in one of
// these names is not caught against an exposition.
var externalSeries = map[string]string{
	// Written by Prometheus itself for every scrape target: 1 when the scrape
	// succeeded, 0 when it failed.
	"up": "Prometheus",
	// kube-state-metrics (kube-prometheus-stack scrapes it with honorLabels,
	// so namespace/pod/container are the subject pod's).
	"kube_pod_status_ready":                    "kube-state-metrics: pod Ready condition, label condition=true|false|unknown",
	"kube_pod_container_status_restarts_total": "kube-state-metrics: container restarts",
	"kube_pod_container_status_waiting_reason": "kube-state-metrics: why a container waits, e.g. reason=CrashLoopBackOff",
	"kube_pod_container_info":                  "kube-state-metrics: container image, to recognise rickmorty pods",
}

// targetLabels are attached by Prometheus (the operator's ServiceMonitor
// relabelling) rather than by the binaries, so queries may match and group
// on them freely.
var targetLabels = map[string]bool{
	"namespace": true, "pod": true, "job": true, "instance": true,
	"container": true, "service": true, "endpoint": true,
}

// query is one PromQL expression found in the dashboard or the rules.
type query struct {
	where string // for messages: which panel, variable or rule
	expr  string // as written
	ast   parser.Expr
}

var promql = parser.NewParser(parser.Options{})

// grafanaVars replaces Grafana's interval variables with durations so the
// query parses; other variables ($namespace, $pod) only appear inside label
// matcher strings, where they are literal text to the parser.
var grafanaVars = strings.NewReplacer(
	"${__rate_interval}", "5m", "$__rate_interval", "5m",
	"${__interval}", "1m", "$__interval", "1m",
	"${__range}", "1h", "$__range", "1h",
)

// labelValuesRE matches Grafana's label_values(selector, label) variable query.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, rulesPath)); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no %s above the working directory", rulesPath)
		}
		dir = parent
	}
}

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseQuery(t testing.TB, where, expr string) query {
	t.Helper()
	ast, err := promql.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		t.Errorf("%s: query does not parse: %v\n%s", where, err, expr)
		return query{where: where, expr: expr}
	}
	return query{where: where, expr: expr, ast: ast}
}

// loadRules parses the rules with Prometheus' own loader (which also
// parses every expression and checks templates' syntax).
func loadRules(t testing.TB) *rulefmt.RuleGroups {
	t.Helper()
	path := filepath.Join(repoRoot(t), rulesPath)
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", rulesPath, err)
	}
	if groups == nil {
		t.Fatalf("%s: no rule groups", rulesPath)
	}
	return groups
}

func ruleQueries(t testing.TB) []query {
	t.Helper()
	var qs []query
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			qs = append(qs, parseQuery(t, fmt.Sprintf("rule %s (group %s)", name, g.Name), r.Expr))
		}
	}
	return qs
}

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	UID         string  `json:"uid"`
	Title       string  `json:"title"`
	Panels      []panel `json:"panels"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

// annotation is a Prometheus annotation query: Grafana marks the time
// ranges where expr returns a value (of 1 or more) on every time-series panel.
type annotation struct {
	Name        string         `json:"name"`
	Enable      bool           `json:"enable"`
	Expr        string         `json:"expr"`
	Step        string         `json:"step"`
	TitleFormat string         `json:"titleFormat"`
	TagKeys     string         `json:"tagKeys"`
	Datasource  *datasourceRef `json:"datasource"`
	BuiltIn     int            `json:"builtIn"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	GridPos     *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t testing.TB) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readRepoFile(t, dashboardPath), &d); err != nil {
		t.Fatalf("%s is not valid JSON for a dashboard: %v", dashboardPath, err)
	}
	return d
}

// allPanels flattens rows, collapsed or not.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// variableQuery returns a query variable's PromQL, or "" when it has none
// (e.g. label_values(label) without a metric).
func variableQuery(t testing.TB, v variable) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(v.Query, &s); err != nil {
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &obj); err != nil {
			t.Errorf("variable %s: query is neither a string nor an object: %s", v.Name, v.Query)
			return ""
		}
		s = obj.Query
	}
	if m := labelValuesRE.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if strings.HasPrefix(strings.TrimSpace(s), "label_values(") {
		return "" // label_values(label): every series
	}
	if inner, ok := strings.CutPrefix(strings.TrimSpace(s), "query_result("); ok {
		return strings.TrimSuffix(strings.TrimSpace(inner), ")")
	}
	return s
}

func dashboardQueries(t testing.TB) []query {
	t.Helper()
	d := loadDashboard(t)
	var qs []query
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				continue
			}
			qs = append(qs, parseQuery(t, fmt.Sprintf("panel %q (id %d) query %s", p.Title, p.ID, tg.RefID), tg.Expr))
		}
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn != 0 || strings.TrimSpace(a.Expr) == "" {
			continue // Grafana's own "Annotations & Alerts"; an empty query is reported by the static test
		}
		qs = append(qs, parseQuery(t, fmt.Sprintf("annotation %q", a.Name), a.Expr))
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if q := variableQuery(t, v); q != "" {
			qs = append(qs, parseQuery(t, fmt.Sprintf("variable $%s", v.Name), q))
		}
	}
	return qs
}

// selectors returns the vector selectors of an expression (those inside
// range selectors and subqueries included).
func selectors(e parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	if e == nil {
		return nil
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// metricName is the selector's metric name, or "" when it selects by
// something other than one exact name.
func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// groupings returns every aggregation's by() labels with the metric names
// that aggregation reads.
func groupings(e parser.Expr) []grouping {
	var out []grouping
	if e == nil {
		return nil
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if a, ok := n.(*parser.AggregateExpr); ok && !a.Without && len(a.Grouping) > 0 {
			g := grouping{labels: a.Grouping}
			for _, vs := range selectors(a.Expr) {
				g.metrics = append(g.metrics, metricName(vs))
			}
			out = append(out, g)
		}
		return nil
	})
	return out
}

type grouping struct {
	labels  []string
	metrics []string
}
