// Command vulndb supports scripts/ci/govulncheck.sh, the project's
// vulnerability gate. It has two subcommands.
//
// build turns a folder of OSV entries (the data/osv folder of the
// golang.org/x/vulndb module, which the Go module proxy serves) into a
// database in the layout that govulncheck reads through -db file://DIR (the
// "v1" layout of the Go vulnerability database):
//
//	DIR/index/db.json       {"modified": <newest modification>}
//	DIR/index/modules.json  [{"path": <module>, "vulns": [{"id", "modified"}]}]
//	DIR/index/vulns.json    [{"id", "modified", "aliases"}]
//	DIR/ID/<id>.json        the OSV entry, unchanged
//
// The modules index leaves out the optional "fixed" hint on purpose:
// govulncheck then reads every entry of a module and decides from the
// entry's own version ranges, so no hint computed here can hide a finding.
//
// check reads govulncheck's JSON output (-format json) on standard input and
// compares the vulnerabilities that the code reaches (symbol-level findings,
// the ones govulncheck itself fails on) with a reviewed allowlist:
//
//   - a reached vulnerability that is not allowlisted fails the check;
//   - an allowlisted vulnerability that is no longer reached fails it too
//     (a stale exception must be removed, with its entry in
//     docs/security-exceptions.md);
//   - vulnerabilities in imported packages or required modules that the
//     code does not reach are listed, with their fixed versions, and do not
//     fail the check (govulncheck's own rule).
//
// Usage:
//
//	go run ./tools/vulndb build -osv DIR -out DIR [-modified RFC3339]
//	govulncheck -format json ./... | go run ./tools/vulndb check -allowlist FILE
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: vulndb build|check [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = buildCmd(os.Args[2:])
	case "check":
		var ok bool
		ok, err = checkCmd(os.Args[2:], os.Stdin, os.Stdout)
		if err == nil && !ok {
			os.Exit(1)
		}
	default:
		err = fmt.Errorf("unknown subcommand %q (want build or check)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(2)
	}
}

// ---------------------------------------------------------------- build

// osvEntry is the part of an OSV entry that the indexes need.
type osvEntry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
	Summary  string    `json:"summary,omitempty"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type dbMeta struct {
	Modified time.Time `json:"modified"`
}

type vulnMeta struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

var idPattern = regexp.MustCompile(`^GO-\d{4}-\d{4,}$`)

func buildCmd(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	osvDir := fs.String("osv", "", "folder of OSV entries, one <ID>.json each")
	out := fs.String("out", "", "database folder to write (replaced)")
	modified := fs.String("modified", "", "RFC 3339 time of the snapshot; index/db.json gets the later of it and the newest entry")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *osvDir == "" || *out == "" {
		return errors.New("build: -osv and -out are required")
	}
	var snapshot time.Time
	if *modified != "" {
		t, err := time.Parse(time.RFC3339, *modified)
		if err != nil {
			return fmt.Errorf("build: -modified: %w", err)
		}
		snapshot = t
	}
	n, err := build(*osvDir, *out, snapshot)
	if err != nil {
		return err
	}
	fmt.Printf("vulndb: %d entries written to %s\n", n, *out)
	return nil
}

// build writes the database into a temporary sibling of out and renames
// it into place, so an interrupted build never leaves a partial database.
func build(osvDir, out string, snapshot time.Time) (int, error) {
	names, err := filepath.Glob(filepath.Join(osvDir, "*.json"))
	if err != nil {
		return 0, err
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("no OSV entries (*.json) in %s", osvDir)
	}
	sort.Strings(names)

	if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".vulndb-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp) //nolint:errcheck // best-effort cleanup of the temporary folder
	for _, d := range []string{"ID", "index"} {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o750); err != nil {
			return 0, err
		}
	}

	dbModified := snapshot
	modules := map[string]*moduleMeta{}
	var vulns []vulnMeta
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			return 0, err
		}
		var e osvEntry
		if err := json.Unmarshal(data, &e); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if !idPattern.MatchString(e.ID) || filepath.Base(name) != e.ID+".json" {
			return 0, fmt.Errorf("%s: id %q does not match the file name", name, e.ID)
		}
		if len(e.Affected) == 0 {
			return 0, fmt.Errorf("%s: no affected modules", name)
		}
		if e.Modified.After(dbModified) {
			dbModified = e.Modified
		}
		vulns = append(vulns, vulnMeta{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		seen := map[string]bool{}
		for _, a := range e.Affected {
			path := a.Package.Name
			if path == "" {
				return 0, fmt.Errorf("%s: an affected entry has no module path", name)
			}
			if seen[path] {
				continue
			}
			seen[path] = true
			m := modules[path]
			if m == nil {
				m = &moduleMeta{Path: path}
				modules[path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
		}
		//nolint:gosec // G703: e.ID matched idPattern (GO-YYYY-NNNN) above, so it cannot leave ID/
		if err := os.WriteFile(filepath.Join(tmp, "ID", e.ID+".json"), data, 0o600); err != nil {
			return 0, err
		}
	}

	paths := make([]string, 0, len(modules))
	for p := range modules {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	index := make([]*moduleMeta, 0, len(paths))
	for _, p := range paths {
		m := modules[p]
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		index = append(index, m)
	}
	sort.Slice(vulns, func(i, j int) bool { return vulns[i].ID < vulns[j].ID })

	for file, v := range map[string]any{
		"db.json":      dbMeta{Modified: dbModified},
		"modules.json": index,
		"vulns.json":   vulns,
	} {
		data, err := json.Marshal(v)
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(tmp, "index", file), data, 0o600); err != nil {
			return 0, err
		}
	}

	if err := os.RemoveAll(out); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return 0, err
	}
	return len(vulns), nil
}

// ---------------------------------------------------------------- check

// message is one JSON value of govulncheck's output stream.
type message struct {
	Config *struct {
		ScannerName    string `json:"scanner_name"`
		ScannerVersion string `json:"scanner_version"`
		DB             string `json:"db"`
		DBLastModified string `json:"db_last_modified"`
		GoVersion      string `json:"go_version"`
		ScanLevel      string `json:"scan_level"`
	} `json:"config"`
	OSV     *osvEntry `json:"osv"`
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []frame `json:"trace"`
	} `json:"finding"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

// Finding levels, weakest first.
const (
	levelModule  = iota // a required module is affected
	levelPackage        // an imported package is affected
	levelSymbol         // the code reaches an affected symbol
)

var levelNames = []string{"required module, not imported", "imported package, not called", "called"}

type vuln struct {
	id, summary  string
	module       string
	version      string
	fixed        string
	level        int
	exampleTrace string
	allowComment string
	allowlisted  bool
}

func checkCmd(args []string, in io.Reader, out io.Writer) (bool, error) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	allowPath := fs.String("allowlist", "", "reviewed exceptions: one GO-ID per line, each with a # comment")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *allowPath == "" {
		return false, errors.New("check: -allowlist is required")
	}
	allow, err := readAllowlist(*allowPath)
	if err != nil {
		return false, err
	}
	return check(in, out, allow)
}

// readAllowlist reads lines of the form
//
//	GO-2026-6872  # why it is accepted (see docs/security-exceptions.md)
//
// Blank lines and lines starting with # are ignored; an entry without a
// comment, a malformed id and a duplicate are errors.
func readAllowlist(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // opened read-only
	allow := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, comment, _ := strings.Cut(line, "#")
		id, comment = strings.TrimSpace(id), strings.TrimSpace(comment)
		switch {
		case !idPattern.MatchString(id):
			return nil, fmt.Errorf("%s:%d: %q is not a Go vulnerability id (GO-YYYY-NNNN)", path, n, id)
		case comment == "":
			return nil, fmt.Errorf("%s:%d: %s has no comment: say why it is accepted and where it is mitigated", path, n, id)
		case allow[id] != "":
			return nil, fmt.Errorf("%s:%d: %s is listed twice", path, n, id)
		}
		allow[id] = comment
	}
	return allow, sc.Err()
}

func check(in io.Reader, out io.Writer, allow map[string]string) (bool, error) {
	vulns := map[string]*vuln{}
	summaries := map[string]string{}
	sawConfig := false
	dec := json.NewDecoder(in)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return false, fmt.Errorf("reading govulncheck output: %w", err)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
			c := m.Config
			fmt.Fprintf(out, "govulncheck: %s %s, %s, database %s (last modified %s), scan level %s\n",
				c.ScannerName, c.ScannerVersion, c.GoVersion, c.DB, c.DBLastModified, c.ScanLevel)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f := m.Finding
			top := f.Trace[0]
			level := levelModule
			switch {
			case top.Function != "":
				level = levelSymbol
			case top.Package != "":
				level = levelPackage
			}
			v := vulns[f.OSV]
			if v == nil {
				v = &vuln{id: f.OSV, module: top.Module, version: top.Version, fixed: f.FixedVersion, level: -1}
				vulns[f.OSV] = v
			}
			if level > v.level {
				v.level = level
				if level == levelSymbol {
					v.exampleTrace = formatTrace(f.Trace)
				}
			}
		}
	}
	if !sawConfig {
		return false, errors.New("no govulncheck output (no config message): did govulncheck run?")
	}

	ids := make([]string, 0, len(vulns))
	for id, v := range vulns {
		v.summary = summaries[id]
		v.allowComment, v.allowlisted = allow[id]
		ids = append(ids, id)
	}
	sort.Strings(ids)

	var unexpected, accepted, informational []*vuln
	for _, id := range ids {
		v := vulns[id]
		switch {
		case v.level == levelSymbol && v.allowlisted:
			accepted = append(accepted, v)
		case v.level == levelSymbol:
			unexpected = append(unexpected, v)
		default:
			informational = append(informational, v)
		}
	}
	var stale []string
	for id := range allow {
		if v := vulns[id]; v == nil || v.level != levelSymbol {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)

	if len(informational) > 0 {
		fmt.Fprintf(out, "\nnot reached by the code (not failing; update when convenient):\n")
		for _, v := range informational {
			fmt.Fprintf(out, "  %s  %s@%s  %s  [%s]\n", v.id, v.module, v.version, fixText(v.fixed), levelNames[v.level])
			if v.summary != "" {
				fmt.Fprintf(out, "      %s\n", v.summary)
			}
		}
	}
	if len(accepted) > 0 {
		fmt.Fprintf(out, "\nreached, accepted by a reviewed exception (docs/security-exceptions.md):\n")
		for _, v := range accepted {
			fmt.Fprintf(out, "  %s  %s@%s  %s\n      %s\n      exception: %s\n", v.id, v.module, v.version, fixText(v.fixed), v.summary, v.allowComment)
		}
	}
	ok := true
	if len(unexpected) > 0 {
		ok = false
		fmt.Fprintf(out, "\nFAIL: the code reaches %d vulnerabilities without a reviewed exception:\n", len(unexpected))
		for _, v := range unexpected {
			fmt.Fprintf(out, "  %s  %s@%s  %s\n      %s\n      e.g. %s\n", v.id, v.module, v.version, fixText(v.fixed), v.summary, v.exampleTrace)
		}
		fmt.Fprintf(out, "  Upgrade to the fixed version (for the standard library: the Go version in go.mod, the Dockerfiles and the workflows).\n"+
			"  Only when there is no fix and the code is not exposed: add the id to scripts/ci/vuln-allowlist.txt and a reviewed entry to docs/security-exceptions.md.\n")
	}
	if len(stale) > 0 {
		ok = false
		fmt.Fprintf(out, "\nFAIL: %d allowlisted vulnerabilities are no longer reached (stale exceptions):\n", len(stale))
		for _, id := range stale {
			fmt.Fprintf(out, "  %s  # %s\n", id, allow[id])
		}
		fmt.Fprintf(out, "  Remove them from scripts/ci/vuln-allowlist.txt and mark them resolved in docs/security-exceptions.md.\n")
	}
	if ok {
		fmt.Fprintf(out, "\nok: %d reached vulnerabilities, all covered by reviewed exceptions; %d not reached\n", len(accepted), len(informational))
	}
	return ok, nil
}

func fixText(fixed string) string {
	if fixed == "" {
		return "no fixed version"
	}
	return "fixed in " + fixed
}

// formatTrace prints a call path from the project's code to the vulnerable
// symbol, outermost caller first.
func formatTrace(trace []frame) string {
	parts := make([]string, 0, len(trace))
	for i := len(trace) - 1; i >= 0; i-- {
		f := trace[i]
		name := f.Function
		if f.Receiver != "" {
			name = f.Receiver + "." + name
		}
		name = f.Package + "." + name
		if f.Position != nil && f.Position.Filename != "" && i == len(trace)-1 {
			name += fmt.Sprintf(" (%s:%d)", f.Position.Filename, f.Position.Line)
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, " -> ")
}
