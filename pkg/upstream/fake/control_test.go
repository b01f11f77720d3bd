package fake_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rickmorty/rickmorty/pkg/upstream"
	"github.com/rickmorty/rickmorty/pkg/upstream/fake"
)

// controlURL turns the /api base into the control API's root.
func controlURL(base string) string { return strings.TrimSuffix(base, "/api") + "/_fake" }

func wantStatus(t *testing.T, res response, want int) {
	t.Helper()
	if res.status != want {
		t.Fatalf("status = %d, want %d (body %s)", res.status, want, res.body)
	}
}

func TestControlReplaceCharacters(t *testing.T) {
	s, base := start(t, fake.Dataset())
	ctl := controlURL(base)
	three := fake.Dataset()[:3]

	wantStatus(t, do(t, http.MethodPut, ctl+"/characters", mustJSON(t, three)), http.StatusOK)
	p := getPage(t, base+"/character")
	if p.Info.Count != 3 || p.Info.Pages != 1 || p.Info.Next != nil {
		t.Errorf("after PUT: info = %+v", p.Info)
	}
	var listed []upstream.Character
	if err := json.Unmarshal(get(t, ctl+"/characters").body, &listed); err != nil {
		t.Fatal(err)
	}
	if got, want := len(listed), 3; got != want {
		t.Errorf("GET characters: %d, want %d", got, want)
	}

	for _, bad := range []string{`not json`, `null`, `{"id":1}`, `[{"id":1},{"id":1}]`, `[{"id":0}]`, `[] []`} {
		wantStatus(t, do(t, http.MethodPut, ctl+"/characters", bad), http.StatusBadRequest)
	}
	if got, want := len(s.Characters()), 3; got != want {
		t.Errorf("a rejected PUT changed the data set: %d characters", got)
	}

	// An empty data set has no pages at all.
	wantStatus(t, do(t, http.MethodPut, ctl+"/characters", `[]`), http.StatusOK)
	wantError(t, get(t, base+"/character?page=1"), http.StatusNotFound, "There is nothing here")
}

func TestControlUpsertPatchDelete(t *testing.T) {
	s, base := start(t, fake.Dataset())
	ctl := controlURL(base)
	n := len(s.Characters())

	c := fake.Dataset()[0]
	c.ID, c.Name = n+5, "New Person"
	wantStatus(t, do(t, http.MethodPost, ctl+"/characters", mustJSON(t, c)), http.StatusCreated)
	c.Name = "Renamed Person"
	wantStatus(t, do(t, http.MethodPost, ctl+"/characters", mustJSON(t, c)), http.StatusOK)
	if got, want := getPage(t, base+"/character").Info.Count, n+1; got != want {
		t.Errorf("count after upsert = %d, want %d", got, want)
	}
	wantStatus(t, do(t, http.MethodPost, ctl+"/characters", `{"id":0}`), http.StatusBadRequest)
	wantStatus(t, do(t, http.MethodPost, ctl+"/characters", `{"id":9,"nmae":"typo"}`), http.StatusBadRequest) //nolint:misspell // an unknown field on purpose

	wantStatus(t, do(t, http.MethodPatch, ctl+"/characters/1", `{"status":"Dead"}`), http.StatusOK)
	wantStatus(t, do(t, http.MethodPatch, ctl+"/characters/1", `{"origin":{"name":"Cronenberg Earth"}}`), http.StatusOK)
	var one upstream.Character
	if err := json.Unmarshal(get(t, base+"/character/1").body, &one); err != nil {
		t.Fatal(err)
	}
	if one.Status != "Dead" || one.Origin.Name != "Cronenberg Earth" || one.Name != "Pell Harrow" {
		t.Errorf("after PATCH: %+v", one)
	}
	if got, want := one.Origin.URL, "https://rickandmortyapi.com/api/location/1"; got != want {
		t.Errorf("PATCH of origin.name changed origin.url to %q, want %q", got, want)
	}
	wantStatus(t, do(t, http.MethodPatch, ctl+"/characters/1", `{"origin":{"name":"unknown","url":""}}`), http.StatusOK)
	if got, want := s.Characters()[0].Origin, (upstream.Place{Name: "unknown"}); got != want {
		t.Errorf("origin = %+v, want %+v", got, want)
	}
	wantStatus(t, do(t, http.MethodPatch, ctl+"/characters/1", `{"id":2}`), http.StatusBadRequest)
	wantStatus(t, do(t, http.MethodPatch, ctl+"/characters/1", `{"stauts":"Alive"}`), http.StatusBadRequest)
	wantStatus(t, do(t, http.MethodPatch, ctl+"/characters/1", `["x"]`), http.StatusBadRequest)
	wantStatus(t, do(t, http.MethodPatch, ctl+"/characters/1", `{"episode":["a","b"],"status":7}`), http.StatusBadRequest)
	if got := s.Characters()[0]; got.Status != "Dead" || len(got.Episode) == 2 {
		t.Errorf("a rejected PATCH changed the character: %+v", got)
	}
	wantStatus(t, do(t, http.MethodPatch, ctl+"/characters/99999", `{"status":"Dead"}`), http.StatusNotFound)

	wantStatus(t, do(t, http.MethodDelete, ctl+"/characters/2", ""), http.StatusNoContent)
	wantError(t, get(t, base+"/character/2"), http.StatusNotFound, "Character not found")
	wantStatus(t, do(t, http.MethodDelete, ctl+"/characters/2", ""), http.StatusNotFound)
	wantStatus(t, do(t, http.MethodDelete, ctl+"/characters/x", ""), http.StatusBadRequest)
	if got, want := getPage(t, base+"/character").Results[1].ID, 3; got != want {
		t.Errorf("after DELETE 2, second id = %d, want %d", got, want)
	}
}

func TestControlFaultsStatsReset(t *testing.T) {
	s, base := start(t, fake.Dataset(), fake.WithFaults(fake.Faults{Latency: time.Millisecond}))
	ctl := controlURL(base)
	n := len(s.Characters())

	body := `{"latency":"5ms","fail_pages":{"1":1},"status":502,"retry_after":"3","rate_limit_pages":{"2":1}}`
	wantStatus(t, do(t, http.MethodPut, ctl+"/faults", body), http.StatusOK)
	if got, want := s.Faults().Status, 502; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if got, want := string(get(t, ctl+"/faults").body), `{"latency":"5ms","fail_pages":{"1":1},"status":502,"rate_limit_pages":{"2":1},"retry_after":"3"}`+"\n"; got != want {
		t.Errorf("GET faults = %s, want %s", got, want)
	}
	wantError(t, get(t, base+"/character?page=1"), http.StatusBadGateway, "Bad Gateway")
	wantStatus(t, get(t, base+"/character?page=2"), http.StatusTooManyRequests)
	for _, bad := range []string{`{"latency":"-1s"}`, `{"status":302}`, `{"fail_pages":{"x":1}}`, `{"unknown":1}`, `nope`} {
		wantStatus(t, do(t, http.MethodPut, ctl+"/faults", bad), http.StatusBadRequest)
	}

	var stats struct {
		Requests   int64            `json:"requests"`
		Pages      map[string]int64 `json:"pages"`
		Characters int              `json:"characters"`
	}
	if err := json.Unmarshal(get(t, ctl+"/stats").body, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Requests != 2 || stats.Pages["1"] != 1 || stats.Pages["2"] != 1 || stats.Characters != n {
		t.Errorf("stats = %+v", stats)
	}

	wantStatus(t, do(t, http.MethodDelete, ctl+"/faults", ""), http.StatusNoContent)
	if got, want := string(get(t, ctl+"/faults").body), "{}\n"; got != want {
		t.Errorf("after DELETE faults = %s, want %s", got, want)
	}

	// Reset brings back the starting data set and faults, and zeroes counters.
	wantStatus(t, do(t, http.MethodDelete, ctl+"/characters/5", ""), http.StatusNoContent)
	s.SetFaults(fake.Faults{FailPages: map[int]int{1: -1}})
	wantStatus(t, do(t, http.MethodPost, ctl+"/reset", ""), http.StatusNoContent)
	if got, want := len(s.Characters()), n; got != want {
		t.Errorf("after reset: %d characters, want %d", got, want)
	}
	if got, want := mustJSON(t, s.Faults()), `{"latency":"1ms"}`; got != want {
		t.Errorf("after reset: faults %s, want %s", got, want)
	}
	if got := s.Requests(); got != 0 {
		t.Errorf("after reset: Requests() = %d", got)
	}
	getPage(t, base+"/character?page=1")

	wantStatus(t, do(t, http.MethodDelete, ctl+"/stats", ""), http.StatusNoContent)
	if got := s.Requests(); got != 0 {
		t.Errorf("after DELETE stats: Requests() = %d", got)
	}
}

func TestControlBodyLimit(t *testing.T) {
	_, base := start(t, fake.Dataset())
	huge := "[" + strings.Repeat(" ", 10<<20) + "]"
	wantStatus(t, do(t, http.MethodPut, controlURL(base)+"/characters", huge), http.StatusRequestEntityTooLarge)
}

func TestGoAPICopies(t *testing.T) {
	data := fake.Dataset()
	s := fake.New(data)
	data[0].Name = "changed by caller"
	data[0].Episode[0] = "changed by caller"
	if got := s.Characters()[0]; got.Name == data[0].Name || got.Episode[0] == data[0].Episode[0] {
		t.Errorf("New kept the caller's memory: %+v", got)
	}
	out := s.Characters()
	out[0].Episode[0] = "changed by reader"
	if got := s.Characters()[0].Episode[0]; got == out[0].Episode[0] {
		t.Error("Characters returned the server's memory")
	}

	// SetCharacters and Update keep the data set ordered by id.
	s.SetCharacters([]upstream.Character{{ID: 3}, {ID: 1}, {ID: 2}})
	s.Update(func(c []upstream.Character) []upstream.Character { return append(c, upstream.Character{ID: 4}) })
	ids := []int{}
	for _, c := range s.Characters() {
		ids = append(ids, c.ID)
		if c.Episode == nil {
			t.Errorf("id %d: episode is nil; the upstream always sends an array", c.ID)
		}
	}
	if got, want := mustJSON(t, ids), `[1,2,3,4]`; got != want {
		t.Errorf("ids = %s, want %s", got, want)
	}
}

func TestControlIndexListsTheEndpoints(t *testing.T) {
	_, base := start(t, fake.Dataset())
	res := get(t, controlURL(base)+"/")
	wantStatus(t, res, http.StatusOK)
	var index map[string]string
	if err := json.Unmarshal(res.body, &index); err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"PUT /_fake/characters", "GET|PUT|DELETE /_fake/faults", "POST /_fake/reset"} {
		if index[route] == "" {
			t.Errorf("GET /_fake/ does not list %q", route)
		}
	}
}
