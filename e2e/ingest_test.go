package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The ingester's documented exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitLocked  = 3
	exitRefused = 4 // the mass-delete guard refuses (once) or would refuse (plan) the sync
)

// runShell runs cmd with sh -c and returns its exit code and combined
// output. Output goes to a file, not a pipe, so a daemon the command starts
// (pg_ctl start) cannot keep the call waiting.
func runShell(ctx context.Context, cmd string) (int, string, error) {
	code, out, _, err := runShellSplit(ctx, cmd, true)
	return code, out, err
}

// runShellSplit is runShell with stdout and stderr apart, unless combined.
func runShellSplit(ctx context.Context, cmd string, combined bool) (code int, stdout, stderr string, err error) {
	tmp := func() (*os.File, func() string, error) {
		f, err := os.CreateTemp("", "e2e-cmd-*.log")
		if err != nil {
			return nil, nil, err
		}
		return f, func() string {
			b, _ := os.ReadFile(f.Name())
			// Best effort: the output was read back, and a temp file left
			// behind is harmless.
			_ = f.Close()
			_ = os.Remove(f.Name())
			return string(b)
		}, nil
	}
	out, readOut, err := tmp()
	if err != nil {
		return -1, "", "", err
	}
	errOut, readErr := out, func() string { return "" }
	if !combined {
		if errOut, readErr, err = tmp(); err != nil {
			_ = readOut()
			return -1, "", "", err
		}
	}
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Stdout, c.Stderr = out, errOut
	c.WaitDelay = 5 * time.Second
	runErr := c.Run()
	stdout, stderr = readOut(), readErr()
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		return 0, stdout, stderr, nil
	case errors.As(runErr, &ee) && ee.Exited():
		return ee.ExitCode(), stdout, stderr, nil
	default:
		return -1, stdout, stderr, runErr
	}
}

// mustShell runs cmd and fails the test unless it exits 0.
func mustShell(t testing.TB, what, cmd string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	code, out, err := runShell(ctx, cmd)
	if err != nil || code != 0 {
		t.Fatalf("%s: `%s` exited %d (%v) after %s:\n%s", what, cmd, code, err, time.Since(start).Round(time.Millisecond), tail(out, 40))
	}
	t.Logf("%s: done in %s", what, time.Since(start).Round(time.Millisecond))
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// ingest runs one ingest and fails the test unless its outcome is the wanted
// one (true: success). With E2E_INGEST_CMD it runs the command, retrying while
// another ingest holds the lock; without it, it waits for the ingester's next
// scheduled run by watching rickmorty_ingest_runs_total. It returns when the
// ingest has finished, which for a success means committed and notified.
func (s *system) ingest(t testing.TB, wantSuccess bool) {
	t.Helper()
	start := time.Now()
	var ok bool
	if s.ingestCmd != "" {
		ok = s.ingestByCommand(t)
	} else {
		ok = s.ingestBySchedule(t)
	}
	if ok != wantSuccess {
		t.Fatalf("ingest succeeded=%v, want %v", ok, wantSuccess)
	}
	t.Logf("ingest (success=%v) took %s", ok, time.Since(start).Round(time.Millisecond))
}

func (s *system) ingestByCommand(t testing.TB) bool {
	t.Helper()
	code, out := s.ingestWith(t)
	switch code {
	case exitOK:
		return true
	case exitFailed:
		t.Logf("ingest failed (exit 1); its output ends:\n%s", tail(out, 5))
		return false
	default:
		t.Fatalf("ingest: `%s` exited %d:\n%s", s.ingestCmd, code, tail(out, 40))
		return false
	}
}

// ingestWith runs E2E_INGEST_CMD with flags appended (e.g. --force),
// waiting while another ingest holds the lock, and returns its exit code
// (0, 1 or 4) and output.
func (s *system) ingestWith(t testing.TB, flags ...string) (int, string) {
	t.Helper()
	if s.ingestCmd == "" {
		t.Fatalf("%s is not set: this test runs ingests on demand", envIngestCmd)
	}
	cmd := strings.Join(append([]string{s.ingestCmd}, flags...), " ")
	ctx, cancel := context.WithTimeout(context.Background(), s.ingestTimeout)
	defer cancel()
	for {
		code, out, err := runShell(ctx, cmd)
		switch {
		case err != nil:
			t.Fatalf("ingest: `%s`: %v\n%s", cmd, err, tail(out, 40))
		case code == exitLocked:
			// The ingester's own schedule is running one; ours comes next.
			select {
			case <-ctx.Done():
				t.Fatalf("ingest: the lock stayed held for %s", s.ingestTimeout)
			case <-time.After(200 * time.Millisecond):
			}
		case code == exitOK, code == exitFailed, code == exitRefused:
			return code, out
		default:
			t.Fatalf("ingest: `%s` exited %d:\n%s", cmd, code, tail(out, 40))
		}
	}
}

// ingestBySchedule waits for the ingester's scheduled runs. The first run to
// finish may have started before the test changed the upstream, so it is
// the second whose result counts.
func (s *system) ingestBySchedule(t testing.TB) bool {
	t.Helper()
	last := s.ingestRuns(t)
	deadline := time.Now().Add(s.ingestTimeout)
	t.Logf("no %s: waiting up to %s for the ingester's second scheduled run from now", envIngestCmd, s.ingestTimeout)
	finished := 0
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		now := s.ingestRuns(t)
		succeeded := now["success"] > last["success"]
		failed := now["failed"] > last["failed"]
		if !succeeded && !failed {
			continue
		}
		finished += int(now["success"] - last["success"] + now["failed"] - last["failed"])
		last = now
		if finished < 2 {
			continue
		}
		if succeeded && failed {
			t.Fatal("two scheduled runs finished between two looks at the metrics; use a longer INGEST_SCHEDULE or set " + envIngestCmd)
		}
		return succeeded
	}
	t.Fatalf("no two scheduled ingests finished within %s; set %s to run one on demand", s.ingestTimeout, envIngestCmd)
	return false
}

// ingestRuns reads rickmorty_ingest_runs_total by result.
func (s *system) ingestRuns(t testing.TB) map[string]float64 {
	t.Helper()
	m := s.metrics(t, s.ingesterMetrics)
	out := map[string]float64{}
	for _, smp := range m.find("rickmorty_ingest_runs_total") {
		out[smp.labels["result"]] += smp.value
	}
	return out
}

// baseline puts the system in a known state: the fake's initial data set,
// no faults, one successful ingest, and every replica serving exactly the
// curated set. It returns the fake's data set and the curated set.
func (s *system) baseline(t testing.TB) (all, want []fakeCharacter) {
	t.Helper()
	s.resetFake(t)
	t.Cleanup(func() {
		// Leave no fault behind for the next test, whatever happened here.
		if r, err := s.request(http.MethodDelete, s.fake+"/_fake/faults", nil); err != nil || r.status >= 300 {
			t.Logf("clearing the fake's faults: %v %v", r, err)
		}
	})
	s.ingest(t, true)
	all = s.fakeCharacters(t)
	want = curated(all)
	if len(want) < 10 {
		t.Fatalf("the fake's data set admits only %d characters; the suite needs at least 10", len(want))
	}
	// The data version changes only when the data does. Every replica must
	// serve the stored set at the stored version: then a notification of
	// this ingest, if one is still on its way, changes nothing in a cache
	// the test fills from here on.
	h, r, err := s.healthcheck(s.apis[0])
	if err != nil || h.DataVersion == nil {
		t.Fatalf("healthcheck: %s (%v): no data_version", r, err)
	}
	tag := fmt.Sprintf(`"v%d"`, *h.DataVersion)
	s.waitAll(t, 10*time.Second, func(api string) error {
		l, err := s.walk(api, "id", "asc", 100)
		if err != nil {
			return err
		}
		if l.etag != tag {
			return fmt.Errorf("serves ETag %s, want %s (the stored data version)", l.etag, tag)
		}
		return diffListing(l.chars, want)
	})
	return all, want
}

// invalidations reads a replica's rickmorty_cache_invalidations_total.
func (s *system) invalidations(t testing.TB, api string) float64 {
	t.Helper()
	v, err := s.metrics(t, api+"/metrics").value("rickmorty_cache_invalidations_total")
	if err != nil {
		t.Fatalf("%s/metrics: %v", api, err)
	}
	return v
}

// servedBy checks that api lists exactly want (id order, 100 a page).
func (s *system) servedBy(api string, want []fakeCharacter) error {
	l, err := s.walk(api, "id", "asc", 100)
	if err != nil {
		return err
	}
	return diffListing(l.chars, want)
}

// waitServed waits until every replica lists exactly want, failing the test
// after within. It returns how long the slowest replica took.
func (s *system) waitServed(t testing.TB, want []fakeCharacter, within time.Duration) time.Duration {
	t.Helper()
	return s.waitAll(t, within, func(api string) error { return s.servedBy(api, want) })
}

// waitAll polls check on every replica until it passes everywhere, failing
// the test with each replica's last error once within has passed. It returns
// when the last replica passed, measured from the call.
func (s *system) waitAll(t testing.TB, within time.Duration, check func(api string) error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	pending := map[string]error{}
	for _, api := range s.apis {
		pending[api] = errors.New("not checked")
	}
	var slowest time.Duration
	for {
		for api := range pending {
			if err := check(api); err != nil {
				pending[api] = err
				continue
			}
			delete(pending, api)
			slowest = time.Since(start)
		}
		if len(pending) == 0 {
			return slowest
		}
		if time.Now().After(deadline) {
			var msgs []string
			for api, err := range pending {
				msgs = append(msgs, fmt.Sprintf("%s: %v", api, err))
			}
			t.Fatalf("not every replica got there within %s:\n%s", within, strings.Join(msgs, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
