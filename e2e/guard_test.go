package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// plan runs E2E_PLAN_CMD with flags appended and returns its exit code,
// stdout and stderr apart (stdout may be a JSON document).
func (s *system) plan(t testing.TB, flags ...string) (code int, stdout, stderr string) {
	t.Helper()
	if s.planCmd == "" {
		t.Fatalf("%s is not set: it runs `ingester plan` with the ingester's configuration (make e2e sets it)", envPlanCmd)
	}
	cmd := strings.Join(append([]string{s.planCmd}, flags...), " ")
	ctx, cancel := context.WithTimeout(context.Background(), s.ingestTimeout)
	defer cancel()
	code, stdout, stderr, err := runShellSplit(ctx, cmd, false)
	if err != nil {
		t.Fatalf("plan: `%s`: %v\n%s%s", cmd, err, tail(stdout, 20), tail(stderr, 20))
	}
	return code, stdout, stderr
}

// summaryLine is the plan's first line, or "" when stdout has none.
func summaryLine(stdout string) string {
	first, _, _ := strings.Cut(stdout, "\n")
	if !strings.HasPrefix(first, "plan: ") {
		return ""
	}
	return first
}

// planDoc is the part of `ingester plan --json` (docs/schemas/plan.schema.json)
// read here.
type planDoc struct {
	Insert, Update, Delete, Unchanged int
	Guard                             string `json:"guard"`
	GuardReason                       string `json:"guard_reason"`
	DataVersion                       int64  `json:"data_version"`
	Deletes                           []struct {
		ID      int      `json:"id"`
		Name    string   `json:"name"`
		Reasons []string `json:"reasons"`
	} `json:"deletes"`
}

// TestPlanBeforeAGuardedSync follows the runbook's loop on a bad upstream
// day: the upstream loses two thirds of the curated characters and one more
// dies. The plan shows exactly that (exit 4, a "-" line per loss with its
// reason, the same as JSON) and changes nothing; the sync is refused (exit
// 4) and every replica keeps serving the old data at the old version;
// forced, it goes through and every replica follows; then the plan finds
// nothing to do.
func TestPlanBeforeAGuardedSync(t *testing.T) {
	all, want := sys.baseline(t)
	h, r, err := sys.healthcheck(sys.apis[0])
	if err != nil || h.DataVersion == nil {
		t.Fatalf("healthcheck: %s (%v)", r, err)
	}
	version := *h.DataVersion
	tag := fmt.Sprintf(`"v%d"`, version)

	// Keep the first third of the curated set; of those, one dies.
	keep := want[:len(want)/3]
	died := keep[0]
	gone := map[int]string{}
	for _, c := range want[len(want)/3:] {
		gone[c.ID] = "vanished upstream"
	}
	gone[died.ID] = "died"
	var rest []fakeCharacter
	for _, c := range all {
		if gone[c.ID] != "vanished upstream" {
			rest = append(rest, c)
		}
	}
	sys.fakeDo(t, http.MethodPut, "/_fake/characters", rest, http.StatusOK)
	sys.patchFake(t, died.ID, map[string]any{"status": "Dead"})
	after := curated(sys.fakeCharacters(t))
	if len(after) != len(keep)-1 {
		t.Fatalf("the fake now admits %d characters, want %d", len(after), len(keep)-1)
	}

	// The plan: refused, every loss listed with its reason.
	code, stdout, stderr := sys.plan(t, "--limit", "0")
	wantSummary := fmt.Sprintf("plan: insert=0 update=0 delete=%d unchanged=%d guard=refused", len(gone), len(after))
	if code != exitRefused || summaryLine(stdout) != wantSummary {
		t.Fatalf("plan: exit %d, summary %q; want %d, %q\nstdout:\n%s\nstderr:\n%s", code, summaryLine(stdout), exitRefused, wantSummary, tail(stdout, 10), tail(stderr, 10))
	}
	listed := map[int]bool{}
	for _, l := range strings.Split(strings.TrimRight(stdout, "\n"), "\n")[1:] {
		var id int
		if _, err := fmt.Sscanf(l, "- %d ", &id); err != nil {
			t.Errorf("plan line %q: want only deletions", l)
			continue
		}
		if reason, ok := gone[id]; !ok || !strings.HasSuffix(l, "(reason: "+reason+")") {
			t.Errorf("plan line %q: want the reason %q", l, reason)
		}
		listed[id] = true
	}
	if len(listed) != len(gone) {
		t.Errorf("the plan lists %d deletions, want %d", len(listed), len(gone))
	}
	if !strings.Contains(stderr, "mass-delete guard") {
		t.Errorf("plan's stderr does not name the guard:\n%s", tail(stderr, 10))
	}

	// The same as JSON, the default line cap not applying.
	code, stdout, _ = sys.plan(t, "--json")
	var doc planDoc
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, tail(stdout, 20))
	}
	if code != exitRefused || doc.Guard != "refused" || doc.GuardReason == "" || doc.Delete != len(gone) ||
		len(doc.Deletes) != len(gone) || doc.DataVersion != version {
		t.Errorf("plan --json: exit %d, guard %q (%q), delete %d with %d listed, data_version %d; want %d, refused, %d, version %d",
			code, doc.Guard, doc.GuardReason, doc.Delete, len(doc.Deletes), doc.DataVersion, exitRefused, len(gone), version)
	}

	// The plan wrote nothing; the sync is refused and writes nothing either.
	unchanged := func(what string) {
		t.Helper()
		sys.waitAll(t, 0, func(api string) error {
			l, err := sys.walk(api, "id", "asc", 100)
			if err != nil {
				return err
			}
			if l.etag != tag {
				return fmt.Errorf("after %s: ETag %s, want %s", what, l.etag, tag)
			}
			return diffListing(l.chars, want)
		})
	}
	unchanged("the plans")
	if code, out := sys.ingestWith(t); code != exitRefused || !strings.Contains(out, "ingest refused") {
		t.Fatalf("once over the losses: exit %d, want %d (refused)\n%s", code, exitRefused, tail(out, 10))
	}
	unchanged("the refused sync")

	// Forced, the sync goes through and every replica follows.
	if code, out := sys.ingestWith(t, "--force"); code != exitOK {
		t.Fatalf("once --force: exit %d\n%s", code, tail(out, 10))
	}
	sys.waitServed(t, after, propagationDeadline)

	code, stdout, _ = sys.plan(t)
	if want := fmt.Sprintf("plan: insert=0 update=0 delete=0 unchanged=%d guard=ok\n", len(after)); code != exitOK || stdout != want {
		t.Errorf("plan after the forced sync: exit %d, %q; want 0, %q", code, stdout, want)
	}
}
