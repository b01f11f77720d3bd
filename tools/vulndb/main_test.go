package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildWritesTheV1Layout(t *testing.T) {
	osv := t.TempDir()
	writeFile(t, osv, "GO-2026-0001.json", `{"id":"GO-2026-0001","modified":"2026-01-02T03:04:05Z","aliases":["CVE-2026-1"],
		"affected":[{"package":{"name":"example.com/a"}},{"package":{"name":"example.com/a"}},{"package":{"name":"stdlib"}}]}`)
	writeFile(t, osv, "GO-2026-0002.json", `{"id":"GO-2026-0002","modified":"2026-03-01T00:00:00Z","affected":[{"package":{"name":"example.com/a"}}]}`)
	writeFile(t, osv, "README.txt", "not an entry")
	out := filepath.Join(t.TempDir(), "db")

	n, err := build(osv, out, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("entries = %d, want 2", n)
	}

	var db dbMeta
	readJSON(t, filepath.Join(out, "index", "db.json"), &db)
	if want := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC); !db.Modified.Equal(want) {
		t.Errorf("db modified = %s, want the newest entry %s", db.Modified, want)
	}
	var modules []moduleMeta
	readJSON(t, filepath.Join(out, "index", "modules.json"), &modules)
	if len(modules) != 2 || modules[0].Path != "example.com/a" || modules[1].Path != "stdlib" {
		t.Fatalf("modules = %+v, want example.com/a and stdlib, sorted", modules)
	}
	if ids := []string{modules[0].Vulns[0].ID, modules[0].Vulns[1].ID}; len(modules[0].Vulns) != 2 || ids[0] != "GO-2026-0001" || ids[1] != "GO-2026-0002" {
		t.Errorf("example.com/a vulns = %+v, want each id once, sorted", modules[0].Vulns)
	}
	raw, err := os.ReadFile(filepath.Join(out, "index", "modules.json"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(`"fixed"`)) {
		t.Error(`modules.json has "fixed" hints; they must be left out`)
	}
	if _, err := os.Stat(filepath.Join(out, "ID", "GO-2026-0002.json")); err != nil {
		t.Errorf("entry file: %v", err)
	}
}

func TestBuildRejectsAMisnamedEntry(t *testing.T) {
	osv := t.TempDir()
	writeFile(t, osv, "GO-2026-0001.json", `{"id":"GO-2026-0009","affected":[{"package":{"name":"m"}}]}`)
	if _, err := build(osv, filepath.Join(t.TempDir(), "db"), time.Time{}); err == nil {
		t.Fatal("build accepted an entry whose id differs from its file name")
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestReadAllowlist(t *testing.T) {
	dir := t.TempDir()
	ok := writeFile(t, dir, "ok.txt", "# header\n\nGO-2026-6872  # reviewed: mitigated in pkg/httpapi\n")
	allow, err := readAllowlist(ok)
	if err != nil {
		t.Fatal(err)
	}
	if allow["GO-2026-6872"] != "reviewed: mitigated in pkg/httpapi" || len(allow) != 1 {
		t.Errorf("allow = %v", allow)
	}
	for name, content := range map[string]string{
		"no comment": "GO-2026-6872\n",
		"bad id":     "CVE-2026-1 # x\n",
		"duplicate":  "GO-2026-6872 # a\nGO-2026-6872 # b\n",
	} {
		if _, err := readAllowlist(writeFile(t, dir, "bad.txt", content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// stream builds govulncheck -format json output.
func stream(findings ...string) string {
	var b strings.Builder
	b.WriteString(`{"config":{"scanner_name":"govulncheck","scanner_version":"v1.9.0","go_version":"go1.26.8","scan_level":"symbol"}}` + "\n")
	b.WriteString(`{"osv":{"id":"GO-2026-0001","summary":"reached, no fix"}}` + "\n")
	for _, f := range findings {
		b.WriteString(f + "\n")
	}
	return b.String()
}

func finding(id, level string) string {
	top := frame{Module: "example.com/m", Version: "v1.0.0"}
	switch level {
	case "symbol":
		top.Package, top.Function = "example.com/m/p", "F"
	case "package":
		top.Package = "example.com/m/p"
	}
	type finding struct {
		OSV   string  `json:"osv"`
		Trace []frame `json:"trace"`
	}
	data, err := json.Marshal(struct {
		Finding finding `json:"finding"`
	}{finding{OSV: id, Trace: []frame{top}}})
	if err != nil {
		panic(err)
	}
	return string(data)
}

func TestCheck(t *testing.T) {
	accepted := map[string]string{"GO-2026-0001": "reviewed"}
	cases := []struct {
		name   string
		in     string
		allow  map[string]string
		wantOK bool
		want   string
	}{
		{"accepted finding passes", stream(finding("GO-2026-0001", "symbol")), accepted, true, "ok: 1 reached"},
		{"module- and package-level findings do not fail",
			stream(finding("GO-2026-0002", "module"), finding("GO-2026-0003", "package"), finding("GO-2026-0001", "symbol")), accepted, true, "not reached by the code"},
		{"a new reached finding fails", stream(finding("GO-2026-0001", "symbol"), finding("GO-2026-0004", "symbol")), accepted, false, "FAIL: the code reaches 1"},
		{"a stale exception fails", stream(), accepted, false, "stale exceptions"},
		{"an exception only imported, no longer called, is stale", stream(finding("GO-2026-0001", "package")), accepted, false, "stale exceptions"},
		{"nothing found, nothing allowed", stream(), map[string]string{}, true, "ok: 0 reached"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			ok, err := check(strings.NewReader(tc.in), &out, tc.allow)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.wantOK || !strings.Contains(out.String(), tc.want) {
				t.Errorf("ok = %v, want %v; output:\n%s", ok, tc.wantOK, out.String())
			}
		})
	}
}

func TestCheckRefusesOutputWithoutConfig(t *testing.T) {
	if _, err := check(strings.NewReader(""), &bytes.Buffer{}, nil); err == nil {
		t.Fatal("empty govulncheck output accepted")
	}
}
