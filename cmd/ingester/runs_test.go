package main

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

// runHistory leaves a success, a refused and a failed run in the database
// at dbURL, in that order.
func runHistory(t *testing.T, f *fake.Server, env map[string]string) {
	t.Helper()
	if code, _, stderr := runCmd(t, context.Background(), env, "once"); code != exitOK {
		t.Fatalf("once: %d\n%s", code, stderr)
	}
	all := f.Characters()
	f.SetCharacters(all[:40])
	if code, _, _ := runCmd(t, context.Background(), env, "once"); code != exitRefused {
		t.Fatalf("once over a mass delete: %d, want %d", code, exitRefused)
	}
	f.SetCharacters(all)
	f.SetFaults(fake.Faults{FailPages: map[int]int{2: -1}})
	if code, _, _ := runCmd(t, context.Background(), env, "once"); code != exitFailed {
		t.Fatalf("once over a failing page: %d, want %d", code, exitFailed)
	}
	f.SetFaults(fake.Faults{})
}

func TestRunsPrintsTheHistoryNewestFirst(t *testing.T) {
	f, url := fakeUpstream(t)
	dbURL := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "LOG_LEVEL": "error",
		"UPSTREAM_RETRIES": "1", "UPSTREAM_RETRY_WAIT_MIN": "1ms", "UPSTREAM_RETRY_WAIT_MAX": "2ms"}

	code, stdout, _ := runCmd(t, context.Background(), env, "runs")
	if header := "ID  STARTED  DURATION  RESULT  PAGES  FETCHED  KEPT  INSERTED  UPDATED  DELETED  VERSION  ERROR"; code != exitOK || strings.Join(strings.Fields(stdout), "  ") != header {
		t.Errorf("runs with no history: %d %q, want the header only", code, stdout)
	}

	runHistory(t, f, env)
	code, stdout, stderr := runCmd(t, context.Background(), env, "runs")
	if code != exitOK {
		t.Fatalf("runs: %d\n%s", code, stderr)
	}
	out := lines(stdout)
	if len(out) != 4 {
		t.Fatalf("runs printed %d lines, want a header and 3 runs:\n%s", len(out), stdout)
	}
	rows := []*regexp.Regexp{
		regexp.MustCompile(`^3 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\S+ +failed +0 +0 +0 +0 +0 +0 +- +crawl: .*page 2`),
		regexp.MustCompile(`^2 +\S+ +\S+ +refused +2 +40 +\d+ +0 +0 +0 +- +mass-delete guard refused the sync: .*\S$`),
		regexp.MustCompile(`^1 +\S+ +\S+ +success +21 +413 +124 +124 +0 +0 +1 *$`),
	}
	for i, re := range rows {
		if !re.MatchString(out[i+1]) {
			t.Errorf("row %d = %q, want to match %s", i+1, out[i+1], re)
		}
	}
	for _, l := range out {
		if n := len([]rune(l)); n > 220 {
			t.Errorf("a line of %d characters: the error column is not cut:\n%s", n, l)
		}
	}

	code, stdout, _ = runCmd(t, context.Background(), env, "runs", "--limit", "2")
	if got := lines(stdout); code != exitOK || len(got) != 3 || !strings.HasPrefix(got[2], "2 ") {
		t.Errorf("runs --limit 2: %d\n%s", code, stdout)
	}

	code, stdout, _ = runCmd(t, context.Background(), env, "runs", "--json")
	doc := validateJSON(t, "runs.schema.json", stdout)
	var results []string
	var ids []json.Number
	for _, r := range doc["runs"].([]any) {
		results = append(results, r.(map[string]any)["result"].(string))
		ids = append(ids, r.(map[string]any)["id"].(json.Number))
	}
	if code != exitOK || !slices.Equal(results, []string{"failed", "refused", "success"}) || !slices.Equal(ids, []json.Number{"3", "2", "1"}) {
		t.Errorf("runs --json: exit %d, results %v, ids %v", code, results, ids)
	}
	first := doc["runs"].([]any)[2].(map[string]any)
	if first["data_version"] != json.Number("1") || first["error"] != "" || first["finished_at"] == nil {
		t.Errorf("the successful run as JSON: %v", first)
	}
}

// TestRunsAndPlanWorkWithASelectOnlyRole: both read with the API's role
// (db/grants/api_readonly.sql), so they can run with an API pod's
// credentials.
func TestRunsAndPlanWorkWithASelectOnlyRole(t *testing.T) {
	f, url := fakeUpstream(t)
	dbURL := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "LOG_LEVEL": "error",
		"UPSTREAM_RETRIES": "1", "UPSTREAM_RETRY_WAIT_MIN": "1ms", "UPSTREAM_RETRY_WAIT_MAX": "2ms"}
	runHistory(t, f, env)
	f.Update(func(chars []upstream.Character) []upstream.Character { return chars[1:] })

	ro := map[string]string{"DATABASE_URL": pgtest.SelectOnlyRole(t, dbURL), "UPSTREAM_URL": url, "LOG_LEVEL": "error"}
	code, stdout, stderr := runCmd(t, context.Background(), ro, "runs")
	if code != exitOK || len(lines(stdout)) != 4 {
		t.Errorf("runs as the SELECT-only role: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, context.Background(), ro, "plan")
	if code != exitOK || !strings.HasPrefix(stdout, "plan: insert=0 update=0 delete=1 ") {
		t.Errorf("plan as the SELECT-only role: exit %d\n%s%s", code, stdout, stderr)
	}
	// The role really cannot write: once fails, recording nothing.
	if code, _, _ := runCmd(t, context.Background(), ro, "once"); code != exitFailed {
		t.Errorf("once as the SELECT-only role: exit %d, want %d", code, exitFailed)
	}
}

func TestRunsOnAnUnmigratedDatabaseSaysToMigrate(t *testing.T) {
	code, _, stderr := runCmd(t, context.Background(), map[string]string{"DATABASE_URL": pgtest.NewEmpty(t)}, "runs")
	if code != exitFailed || !strings.Contains(stderr, "ingester migrate") {
		t.Errorf("runs on an unmigrated database: exit %d, stderr %q", code, stderr)
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"short":                 "short",
		"first\nsecond":         "first…",
		"tab\there":             "tab here",
		strings.Repeat("é", 12): "ééééééééé…",
		strings.Repeat("x", 10): "xxxxxxxxxx",
	} {
		if got := oneLine(in, 10); got != want {
			t.Errorf("oneLine(%q, 10) = %q, want %q", in, got, want)
		}
	}
}
