package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/rickmorty/rickmorty/pkg/character"
	"github.com/rickmorty/rickmorty/pkg/pgtest"
	"github.com/rickmorty/rickmorty/pkg/postgres"
	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

// validateJSON checks doc against the JSON Schema at docs/schemas/<name>
// (formats asserted) and returns it decoded.
func validateJSON(t *testing.T, name, doc string) map[string]any {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(filepath.Join("..", "..", "docs", "schemas", name))
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("output is not one JSON document: %v\n%s", err, doc)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("output does not match %s: %v\n%s", name, err, doc)
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func admittedOf(chars []upstream.Character) []upstream.Character {
	var out []upstream.Character
	for _, c := range chars {
		if character.Admit(character.Character{Species: c.Species, Status: c.Status, OriginName: c.Origin.Name}) {
			out = append(out, c)
		}
	}
	return out
}

// state fingerprints what a plan must not touch: the rows, the version and
// the run history.
func state(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `
		SELECT coalesce(md5(string_agg(ctid::text || xmin::text || c::text, '|' ORDER BY id)), 'empty')
		       || (SELECT version::text FROM data_version)
		       || (SELECT count(*)::text || coalesce(max(id), 0)::text FROM ingest_runs)
		FROM characters c`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func TestPlanListsWhatASyncWouldChange(t *testing.T) {
	f, url := fakeUpstream(t)
	pool, dbURL := pgtest.NewPool(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "LOG_LEVEL": "warn"}
	kept := admittedOf(f.Characters())
	n := len(kept)

	// Into an empty table: every admitted character is an insert; the
	// listing is capped at 50 lines unless told otherwise.
	before := state(t, pool)
	code, stdout, stderr := runCmd(t, context.Background(), env, "plan")
	if code != exitOK {
		t.Fatalf("plan exit code %d, stderr:\n%s", code, stderr)
	}
	out := lines(stdout)
	if want := fmt.Sprintf("plan: insert=%d update=0 delete=0 unchanged=0 guard=ok", n); out[0] != want {
		t.Errorf("summary %q, want %q", out[0], want)
	}
	if len(out) != 1+defaultPlanLimit+1 || out[len(out)-1] != fmt.Sprintf("... and %d more (--limit 0 lists them all)", n-defaultPlanLimit) {
		t.Errorf("%d lines ending %q: want the summary, %d change lines and the rest counted", len(out), out[len(out)-1], defaultPlanLimit)
	}
	if want := fmt.Sprintf("+ %d %s (%s)", kept[0].ID, kept[0].Name, kept[0].Origin.Name); out[1] != want {
		t.Errorf("first change %q, want %q", out[1], want)
	}
	for _, limit := range []int{0, 3} {
		_, stdout, _ := runCmd(t, context.Background(), env, "plan", "--limit", fmt.Sprint(limit))
		want := 1 + n
		if limit > 0 {
			want = 1 + limit + 1
		}
		if got := len(lines(stdout)); got != want {
			t.Errorf("plan --limit %d: %d lines, want %d", limit, got, want)
		}
	}
	if state(t, pool) != before {
		t.Fatal("plan wrote to the database")
	}

	if code, _, stderr := runCmd(t, context.Background(), env, "once"); code != exitOK {
		t.Fatalf("once: %d\n%s", code, stderr)
	}
	code, stdout, _ = runCmd(t, context.Background(), env, "plan")
	if want := fmt.Sprintf("plan: insert=0 update=0 delete=0 unchanged=%d guard=ok\n", n); code != exitOK || stdout != want {
		t.Errorf("plan after the ingest: %d %q, want 0 %q", code, stdout, want)
	}

	// One character dies, one moves to Cronenberg Earth, one vanishes, one
	// relocates, one is new.
	died, moved, vanished, relocated := kept[3], kept[1], kept[2], kept[0]
	newcomer := kept[4]
	f.Update(func(chars []upstream.Character) []upstream.Character {
		out := chars[:0]
		last := 0
		for _, c := range chars {
			last = max(last, c.ID)
			switch c.ID {
			case died.ID:
				c.Status = "Dead"
			case moved.ID:
				c.Origin = upstream.Place{Name: "Cronenberg Earth"}
			case vanished.ID:
				continue
			case relocated.ID:
				c.Location.Name = "Citadel of Ricks"
			}
			out = append(out, c)
		}
		newcomer.ID, newcomer.Name = last+1, "Newcomer\tSmith"
		return append(out, newcomer)
	})
	before = state(t, pool)
	code, stdout, stderr = runCmd(t, context.Background(), env, "plan")
	if code != exitOK {
		t.Fatalf("plan exit code %d, stderr:\n%s", code, stderr)
	}
	deletes := map[int]string{
		died.ID:     fmt.Sprintf("- %d %s (reason: died)", died.ID, died.Name),
		moved.ID:    fmt.Sprintf("- %d %s (reason: origin changed)", moved.ID, moved.Name),
		vanished.ID: fmt.Sprintf("- %d %s (reason: vanished upstream)", vanished.ID, vanished.Name),
	}
	want := []string{fmt.Sprintf("plan: insert=1 update=1 delete=3 unchanged=%d guard=ok", n-4)}
	for _, id := range slices.Sorted(maps.Keys(deletes)) { // by id
		want = append(want, deletes[id])
	}
	want = append(want,
		fmt.Sprintf("~ %d %s: location %q -> \"Citadel of Ricks\"", relocated.ID, relocated.Name, relocated.Location.Name),
		fmt.Sprintf("+ %d \"Newcomer\\tSmith\" (%s)", newcomer.ID, newcomer.Origin.Name),
	)
	if got := lines(stdout); !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if state(t, pool) != before {
		t.Fatal("plan wrote to the database")
	}

	// The same as JSON, every change listed, in the documented shape.
	code, stdout, _ = runCmd(t, context.Background(), env, "plan", "--json", "--limit", "1")
	if code != exitOK {
		t.Fatalf("plan --json exit code %d", code)
	}
	doc := validateJSON(t, "plan.schema.json", stdout)
	if doc["insert"] != json.Number("1") || doc["update"] != json.Number("1") || doc["delete"] != json.Number("3") ||
		doc["guard"] != "ok" || doc["data_version"] != json.Number("1") || len(doc["deletes"].([]any)) != 3 {
		t.Errorf("plan --json = %s", stdout)
	}
	upd := doc["updates"].([]any)[0].(map[string]any)["changes"].([]any)[0].(map[string]any)
	if upd["field"] != "location" || upd["old"] != relocated.Location.Name || upd["new"] != "Citadel of Ricks" {
		t.Errorf("update change = %v", upd)
	}

	// The sync then does what the plan said.
	code, stdout, _ = runCmd(t, context.Background(), env, "once")
	if code != exitOK || !strings.Contains(stdout, " inserted=1 updated=1 deleted=3 ") {
		t.Errorf("once after the plan: %d %q, want inserted=1 updated=1 deleted=3", code, stdout)
	}
}

func TestPlanAndOnceRefuseAMassDeleteWithExitCode4(t *testing.T) {
	f, url := fakeUpstream(t)
	pool, dbURL := pgtest.NewPool(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "LOG_LEVEL": "warn"}
	if code, _, stderr := runCmd(t, context.Background(), env, "once"); code != exitOK {
		t.Fatalf("once: %d\n%s", code, stderr)
	}
	kept := admittedOf(f.Characters())
	gone := map[int]bool{}
	for _, c := range kept[len(kept)*3/10:] {
		gone[c.ID] = true
	}
	f.Update(func(chars []upstream.Character) []upstream.Character {
		return slices.DeleteFunc(chars, func(c upstream.Character) bool { return gone[c.ID] })
	})

	before := state(t, pool)
	code, stdout, stderr := runCmd(t, context.Background(), env, "plan")
	if code != exitRefused {
		t.Fatalf("plan exit code %d, want %d; stderr:\n%s", code, exitRefused, stderr)
	}
	out := lines(stdout)
	if want := fmt.Sprintf("plan: insert=0 update=0 delete=%d unchanged=%d guard=refused", len(gone), len(kept)-len(gone)); out[0] != want {
		t.Errorf("summary %q, want %q", out[0], want)
	}
	for _, l := range out[1 : len(out)-1] {
		if !strings.HasPrefix(l, "- ") || !strings.HasSuffix(l, " (reason: vanished upstream)") {
			t.Errorf("change line %q, want a deletion of a vanished character", l)
		}
	}
	if got, want := out[len(out)-1], fmt.Sprintf("... and %d more (--limit 0 lists them all)", len(gone)-defaultPlanLimit); got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
	if !strings.Contains(stderr, "would be refused: mass-delete guard refused the sync: it would delete") {
		t.Errorf("stderr does not say why the sync would be refused:\n%s", stderr)
	}
	code, stdout, _ = runCmd(t, context.Background(), env, "plan", "--json")
	doc := validateJSON(t, "plan.schema.json", stdout)
	if code != exitRefused || doc["guard"] != "refused" || !strings.Contains(doc["guard_reason"].(string), "would delete") ||
		len(doc["deletes"].([]any)) != len(gone) {
		t.Errorf("plan --json: exit %d, guard %v %q, %d deletes (want %d)", code, doc["guard"], doc["guard_reason"], len(doc["deletes"].([]any)), len(gone))
	}
	if state(t, pool) != before {
		t.Fatal("plan wrote to the database")
	}

	code, stdout, stderr = runCmd(t, context.Background(), env, "once")
	if code != exitRefused || stdout != "" || !strings.Contains(stderr, "ingest refused: mass-delete guard refused the sync") {
		t.Errorf("once over the mass delete: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	var result string
	if err := pool.QueryRow(context.Background(), "SELECT result FROM ingest_runs ORDER BY id DESC LIMIT 1").Scan(&result); err != nil || result != postgres.ResultRefused {
		t.Errorf("the refused run is recorded as %q (%v), want refused", result, err)
	}

	code, stdout, _ = runCmd(t, context.Background(), env, "once", "--force")
	if code != exitOK || !strings.Contains(stdout, fmt.Sprintf(" deleted=%d ", len(gone))) {
		t.Errorf("once --force: %d %q", code, stdout)
	}
	code, stdout, _ = runCmd(t, context.Background(), env, "plan")
	if want := fmt.Sprintf("plan: insert=0 update=0 delete=0 unchanged=%d guard=ok\n", len(kept)-len(gone)); code != exitOK || stdout != want {
		t.Errorf("plan after the forced sync: %d %q, want 0 %q", code, stdout, want)
	}
}

func TestPlanFailuresExitWith1AndWriteNothing(t *testing.T) {
	f, url := fakeUpstream(t)
	pool, dbURL := pgtest.NewPool(t)
	env := map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "LOG_LEVEL": "error",
		"UPSTREAM_RETRIES": "1", "UPSTREAM_RETRY_WAIT_MIN": "1ms", "UPSTREAM_RETRY_WAIT_MAX": "2ms"}
	if code, _, stderr := runCmd(t, context.Background(), env, "once"); code != exitOK {
		t.Fatalf("once: %d\n%s", code, stderr)
	}
	before := state(t, pool)
	f.SetFaults(fake.Faults{FailPages: map[int]int{2: -1}})
	code, stdout, stderr := runCmd(t, context.Background(), env, "plan")
	if last := lastLine(stderr); code != exitFailed || stdout != "" || !strings.HasPrefix(last, "plan failed: crawl: ") || !strings.Contains(last, "page 2") {
		t.Errorf("plan over a failing crawl: exit %d, stdout %q, last stderr line %q", code, stdout, last)
	}
	if state(t, pool) != before {
		t.Error("the failed plan wrote to the database")
	}
	f.SetFaults(fake.Faults{})

	// An unmigrated database: the plan says to migrate.
	env["DATABASE_URL"] = pgtest.NewEmpty(t)
	code, _, stderr = runCmd(t, context.Background(), env, "plan")
	if code != exitFailed || !strings.Contains(stderr, "ingester migrate") {
		t.Errorf("plan on an unmigrated database: exit %d, stderr %q", code, stderr)
	}
}

// TestPlanTakesNoLock: a plan runs while an ingest holds the lock.
func TestPlanTakesNoLock(t *testing.T) {
	_, url := fakeUpstream(t)
	pool, dbURL := pgtest.NewPool(t)
	lock, err := postgres.NewIngests(pool).TryLock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	code, stdout, stderr := runCmd(t, context.Background(), map[string]string{"DATABASE_URL": dbURL, "UPSTREAM_URL": url, "LOG_LEVEL": "warn"}, "plan")
	if code != exitOK || !strings.HasPrefix(stdout, "plan: insert=") {
		t.Errorf("plan under the ingest lock: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
}

func TestPlanAndRunsUsage(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/y"}
	for _, args := range [][]string{
		{"plan", "--limit", "-1"}, {"plan", "--limit", "x"}, {"plan", "extra"}, {"plan", "--force"},
		{"runs", "--limit", "0"}, {"runs", "--limit", "10001"}, {"runs", "--bogus"}, {"runs", "extra"},
	} {
		if code, _, _ := runCmd(t, context.Background(), env, args...); code != exitUsage {
			t.Errorf("ingester %v: exit code %d, want %d", args, code, exitUsage)
		}
	}
	for _, cmd := range []string{"plan", "runs"} {
		if code, _, stderr := runCmd(t, context.Background(), nil, cmd); code != exitUsage || !strings.Contains(stderr, "DATABASE_URL") {
			t.Errorf("ingester %s without DATABASE_URL: exit %d, stderr %q", cmd, code, stderr)
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"help"}, envOf(nil), &out, &out); code != exitOK ||
		!strings.Contains(out.String(), "plan [--json] [--limit N]") || !strings.Contains(out.String(), "runs [--json] [--limit N]") {
		t.Errorf("help: %d\n%s", code, out.String())
	}
}
