package opscheck

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// dashboardTestsGlob are the promtool unit tests of dashboard queries.
const dashboardTestsGlob = "ops/grafana/tests/*.yaml"

// dashboardTestVars are the values those tests give Grafana's variables:
// the namespace of their series, "All" pods and a 5m rate interval.
var dashboardTestVars = strings.NewReplacer(
	"$namespace", "rm",
	"$pod", ".*",
	"${__rate_interval}", "5m", "$__rate_interval", "5m",
)

// healthQuery reports whether a query reads target health (up) or a
// kube-state-metrics series: the queries whose joins are easy to get wrong
// and that must be unit-tested.
func healthQuery(e parser.Expr) bool {
	return slices.ContainsFunc(selectors(e), func(vs *parser.VectorSelector) bool {
		n := metricName(vs)
		return n == "up" || strings.HasPrefix(n, "kube_")
	})
}

func readsKSM(e parser.Expr) bool {
	return slices.ContainsFunc(selectors(e), func(vs *parser.VectorSelector) bool {
		return strings.HasPrefix(metricName(vs), "kube_")
	})
}

// hasFallback reports whether e has an `or` with kube-state-metrics on one
// side and none on the other: what the panel shows without it.
func hasFallback(e parser.Expr) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if b, ok := n.(*parser.BinaryExpr); ok && b.Op == parser.LOR && readsKSM(b.LHS) != readsKSM(b.RHS) {
			found = true
		}
		return nil
	})
	return found
}

// TestDashboardHealthQueriesAreUnitTested: every expr of the promtool tests
// in ops/grafana/tests/ is a dashboard query with the tests' variable
// values (so a changed panel query fails until its tests follow), and every
// dashboard query that reads up or a kube_* series has such tests (they run
// in scripts/ops-test.sh against series where pods are down, not ready or
// restarting, with and without kube-state-metrics).
func TestDashboardHealthQueriesAreUnitTested(t *testing.T) {
	root := repoRoot(t)
	dashboard := map[string][]string{} // canonical expr -> where
	for _, p := range allPanels(loadDashboard(t).Panels) {
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				continue
			}
			q := parseQuery(t, fmt.Sprintf("panel %q (id %d) query %s", p.Title, p.ID, tg.RefID), dashboardTestVars.Replace(tg.Expr))
			if q.ast != nil {
				dashboard[q.ast.String()] = append(dashboard[q.ast.String()], q.where)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(root, dashboardTestsGlob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests match %s (%v)", dashboardTestsGlob, err)
	}
	tested := map[string]int{}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		var pt struct {
			Tests []struct {
				Name           string `yaml:"name"`
				PromqlExprTest []struct {
					Expr string `yaml:"expr"`
				} `yaml:"promql_expr_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(readRepoFile(t, rel), &pt); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, tc := range pt.Tests {
			for _, e := range tc.PromqlExprTest {
				q := parseQuery(t, fmt.Sprintf("%s, test %q", rel, tc.Name), e.Expr)
				if q.ast == nil {
					continue
				}
				if _, ok := dashboard[q.ast.String()]; !ok {
					t.Errorf("%s: expr is no dashboard query with $namespace=rm, $pod=.*, $__rate_interval=5m (changed on one side only?):\n%s", q.where, e.Expr)
				}
				tested[q.ast.String()]++
			}
		}
	}
	var untested []string
	for expr, where := range dashboard {
		ast, err := promql.ParseExpr(expr)
		if err != nil {
			continue // reported above
		}
		if healthQuery(ast) && tested[expr] == 0 {
			untested = append(untested, fmt.Sprintf("%s:\n  %s", strings.Join(where, ", "), expr))
		}
	}
	sort.Strings(untested)
	for _, u := range untested {
		t.Errorf("reads up or kube-state-metrics but has no promtool test in %s: %s", dashboardTestsGlob, u)
	}
}

// TestKubeStateMetricsPanelsSaySoAndFallBack: a panel that reads
// kube-state-metrics says in its description that it needs it, and each of
// its kube_* queries falls back (an `or` to series of the binaries or up)
// so that it still shows something where kube-state-metrics is missing.
func TestKubeStateMetricsPanelsSaySoAndFallBack(t *testing.T) {
	ksmPanels := 0
	for _, p := range allPanels(loadDashboard(t).Panels) {
		needs := false
		for _, tg := range p.Targets {
			q := parseQuery(t, fmt.Sprintf("panel %q (id %d) query %s", p.Title, p.ID, tg.RefID), tg.Expr)
			if q.ast == nil || !readsKSM(q.ast) {
				continue
			}
			needs = true
			if !hasFallback(q.ast) {
				t.Errorf("%s reads kube-state-metrics with no fallback (an `or` whose other side reads up or the binaries' metrics):\n%s", q.where, q.expr)
			}
		}
		if !needs {
			continue
		}
		ksmPanels++
		if !strings.Contains(p.Description, "kube-state-metrics") {
			t.Errorf("panel %q (id %d) reads kube-state-metrics, but its description does not say it needs it: %q", p.Title, p.ID, p.Description)
		}
	}
	if ksmPanels == 0 {
		t.Error("no panel reads kube-state-metrics: the API readiness and restart panels are expected to")
	}
}
