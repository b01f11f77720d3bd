package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUpstreamFailureKeepsData: the upstream fails in the middle of a crawl
// (errors, a malformed page, a truncated page), the ingest fails, and every
// replica keeps serving exactly the previous data, from its cache and from
// the database alike. Once the upstream heals, the next ingest applies the
// change the failed ones saw part of.
func TestUpstreamFailureKeepsData(t *testing.T) {
	_, want := sys.baseline(t)
	mid := strconv.Itoa((sys.fakePages(t) + 1) / 2)

	type snapshot struct {
		list    listing
		version int64
	}
	before := map[string]snapshot{}
	for _, api := range sys.apis {
		l := sys.mustWalk(t, api, "id", "asc", 100)
		h, r, err := sys.healthcheck(api)
		if err != nil || h.DataVersion == nil {
			t.Fatalf("%s/healthcheck: %s (%v): no data_version", api, r, err)
		}
		before[api] = snapshot{l, *h.DataVersion}
	}

	// A change in the upstream that a failed ingest must not apply, even
	// partly: the dying character sits on an early page, before the fault.
	dies := pick(t, want[:len(want)/4], func(fakeCharacter) bool { return true })
	sys.patchFake(t, dies.ID, map[string]any{"status": "Dead"})

	faults := []struct{ name, config string }{
		{"server errors", `{"fail_pages":{"MID":-1},"status":503}`},
		{"malformed page", `{"malformed_pages":{"MID":true}}`},
		{"truncated page", `{"truncated_pages":{"MID":true}}`},
	}
	for i, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			sys.setFaults(t, strings.ReplaceAll(f.config, "MID", mid))
			sys.ingest(t, false)
			for j, api := range sys.apis {
				// What the replica had cached, byte for byte.
				l := sys.mustWalk(t, api, "id", "asc", 100)
				if l.etag != before[api].list.etag {
					t.Errorf("%s: ETag %s, was %s: the data version changed", api, l.etag, before[api].list.etag)
				}
				if err := diffListing(l.chars, want); err != nil {
					t.Errorf("%s: the cached listing changed: %v", api, err)
				}
				// A query nobody asked before comes from the database.
				size := 50 + 10*i + j
				if err := diffListing(sys.mustWalk(t, api, "id", "asc", size).chars, want); err != nil {
					t.Errorf("%s: page_size=%d (uncached): the stored data changed: %v", api, size, err)
				}
				if r := sys.get(t, api+"/characters/"+strconv.Itoa(dies.ID)); r.status != http.StatusOK {
					t.Errorf("%s/characters/%d: %s, want 200: the failed ingest removed it", api, dies.ID, r)
				}
				h, r, err := sys.healthcheck(api)
				if err != nil || h.DataVersion == nil || *h.DataVersion != before[api].version {
					t.Errorf("%s/healthcheck: %s (%v), want data_version %d", api, r, err, before[api].version)
				}
			}
		})
	}

	sys.fakeDo(t, http.MethodDelete, "/_fake/faults", nil, http.StatusNoContent, http.StatusOK)
	sys.ingest(t, true)
	newWant := curated(sys.fakeCharacters(t))
	if len(newWant) != len(want)-1 {
		t.Fatalf("the fake admits %d characters after %d died, want %d", len(newWant), dies.ID, len(want)-1)
	}
	sys.waitServed(t, newWant, propagationDeadline)
}

// TestDatabaseRestart: the database goes away and comes back; the API keeps
// answering from its cache meanwhile, reports the outage, and recovers by
// itself: no replica restarts, queries reach the database again, and the
// change listener reconnects, so an ingest still propagates within the
// deadline.
func TestDatabaseRestart(t *testing.T) {
	if sys.dbRestartCmd == "" && sys.dbStopCmd == "" {
		t.Fatalf("%s is not set: the suite cannot restart the database (make e2e sets it; for another deployment give a shell command, e.g. `kubectl rollout restart statefulset/postgres && kubectl rollout status statefulset/postgres`)",
			envDBRestartCmd)
	}
	all, want := sys.baseline(t)

	type before struct {
		started    float64 // process_start_time_seconds, 0 if not exported
		reconnects float64
		flushes    float64
		cached     response
	}
	was := map[string]before{}
	for _, api := range sys.apis {
		m := sys.metrics(t, api+"/metrics")
		b := before{}
		if v, err := m.value("process_start_time_seconds"); err == nil {
			b.started = v
		}
		v, err := m.value("rickmorty_listener_reconnects_total")
		if err != nil {
			t.Fatalf("%s/metrics: %v", api, err)
		}
		b.reconnects = v
		if b.flushes, err = m.value("rickmorty_cache_invalidations_total"); err != nil {
			t.Fatalf("%s/metrics: %v", api, err)
		}
		u := listURL(api, "id", "asc", 1, 10)
		sys.get(t, u) // fill the cache
		b.cached = sys.get(t, u)
		if b.cached.status != http.StatusOK {
			t.Fatalf("GET %s: %s", u, b.cached)
		}
		was[api] = b
	}

	if sys.dbStopCmd != "" {
		// An outage window, to look at the API while the database is away.
		running := true
		t.Cleanup(func() {
			if !running {
				mustShell(t, "starting the database again after a failure", sys.dbStartCmd, 2*time.Minute)
			}
		})
		mustShell(t, "stopping the database", sys.dbStopCmd, 2*time.Minute)
		running = false
		sys.waitAll(t, 15*time.Second, func(api string) error {
			h, r, err := sys.healthcheck(api)
			if err != nil {
				return err
			}
			if r.status != http.StatusServiceUnavailable || h.DBOK || h.Status == "ok" {
				return fmt.Errorf("/healthcheck: %s, want 503 with db_ok false while the database is down", r)
			}
			return nil
		})
		for i, api := range sys.apis {
			u := listURL(api, "id", "asc", 1, 10)
			if r := sys.get(t, u); r.status != http.StatusOK || !bytes.Equal(r.body, was[api].cached.body) ||
				r.header.Get("ETag") != was[api].cached.header.Get("ETag") {
				t.Errorf("GET %s while the database is down: %s, want the cached 200", u, r)
			}
			u = listURL(api, "name", "desc", 1, 31+i)
			r := sys.get(t, u)
			if r.status != http.StatusServiceUnavailable {
				t.Errorf("GET %s (uncached) while the database is down: %s, want 503", u, r)
			} else {
				checkProblem(t, "GET "+u, r, http.StatusServiceUnavailable, "")
				if r.header.Get("Retry-After") == "" {
					t.Errorf("GET %s: 503 without Retry-After", u)
				}
			}
			for _, p := range []string{"/healthz", "/readyz"} {
				if r := sys.get(t, api+p); r.status != http.StatusOK {
					t.Errorf("GET %s%s while the database is down: %s, want 200 (a database outage must not take replicas out of rotation)", api, p, r)
				}
			}
		}
		mustShell(t, "starting the database", sys.dbStartCmd, 2*time.Minute)
		running = true
	} else {
		mustShell(t, "restarting the database", sys.dbRestartCmd, 2*time.Minute)
	}

	// Recovery, without restarting anything.
	took := sys.waitAll(t, 30*time.Second, func(api string) error {
		h, r, err := sys.healthcheck(api)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK || !h.DBOK || !h.ListenerConnected {
			return fmt.Errorf("/healthcheck: %s, want 200 with db_ok and listener_connected", r)
		}
		// Notifications sent while the listener was away are lost, so on
		// reconnecting a replica asks the database for its data version
		// (unchanged here: the cache stays valid).
		m := sys.metrics(t, api+"/metrics")
		reconnects, err := m.value("rickmorty_listener_reconnects_total")
		if err != nil {
			return err
		}
		if reconnects <= was[api].reconnects {
			return fmt.Errorf("the listener has not reconnected yet (rickmorty_listener_reconnects_total %v)", reconnects)
		}
		if v := sys.invalidations(t, api); v != was[api].flushes {
			return fmt.Errorf("the data did not change, yet the cache was invalidated (rickmorty_cache_invalidations_total %v -> %v)", was[api].flushes, v)
		}
		return nil
	})
	t.Logf("every replica healthy again %s after the database came back", took.Round(time.Millisecond))
	for i, api := range sys.apis {
		size := 41 + i // a query nobody asked before
		l := sys.mustWalk(t, api, "created", "desc", size)
		if err := diffListing(l.chars, sorted(t, want, "created", "desc")); err != nil {
			t.Errorf("%s: sort=created order=desc page_size=%d after the restart: %v", api, size, err)
		}
		m := sys.metrics(t, api+"/metrics")
		if v, err := m.value("process_start_time_seconds"); err == nil && was[api].started != 0 && v != was[api].started {
			t.Errorf("%s: process_start_time_seconds went from %v to %v: the replica restarted", api, was[api].started, v)
		}
	}
	readyz := sys.ingesterURL("/readyz")
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := sys.expectStatus(readyz, http.StatusOK)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ingester did not recover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The listener is back: a change still reaches every replica in time.
	sys.expectPropagation(t, sys.changeData(t, all, want))
}

// checkProblem checks an RFC 9457 problem answer; param, when not empty,
// must be named by the detail (and by the param member, if present).
func checkProblem(t testing.TB, what string, r response, status int, param string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d", what, r.status, status)
	}
	if mt := r.mediaType(); mt != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, r.header.Get("Content-Type"))
	}
	if missing, err := missingFields(r.body, []string{"type", "title", "status", "detail", "instance"}); err != nil || len(missing) > 0 {
		t.Errorf("%s: %s: missing problem fields %v (%v)", what, r, missing, err)
		return
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if p.Status != status || p.Title == "" || p.Type == "" || p.Detail == "" || p.Instance == "" {
		t.Errorf("%s: problem %+v: want status %d and non-empty type, title, detail, instance", what, p, status)
	}
	if param != "" {
		if !strings.Contains(p.Detail, param) {
			t.Errorf("%s: detail %q does not name the parameter %q", what, p.Detail, param)
		}
		if p.Param != "" && p.Param != param {
			t.Errorf("%s: param %q, want %q", what, p.Param, param)
		}
	}
	if r.header.Get("ETag") != "" {
		t.Errorf("%s: a problem answer carries an ETag", what)
	}
}
