// Package configtest checks, in the tests of a binary, that what documents
// and deploys its settings agrees with their declaration in Go
// ([config.Setting]): the README's table and the Helm chart (its schema and
// validations must refuse what the binary refuses, and what it renders the
// binary must accept). The chart checks need helm: $HELM, else ./bin/helm
// (tools/install.sh helm), else helm on PATH.
package configtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rickmorty/rickmorty/pkg/config"
)

// RepoRoot is the directory holding go.mod, found from the test's directory.
func RepoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Row is one row of a README settings table.
type Row struct{ Name, Default, Meaning string }

// READMETable returns the rows of the first table after the heading line
// (e.g. "### Configuration (API)") of the repository's README.md.
func READMETable(t *testing.T, heading string) []Row {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	found, inTable := false, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !found:
			found = line == heading
		case strings.HasPrefix(line, "|"):
			inTable = true
			cells := strings.Split(strings.Trim(line, "|"), " | ")
			name := strings.Trim(strings.TrimSpace(cells[0]), "`")
			if len(cells) < 3 || name == "variable" || strings.HasPrefix(name, "---") {
				continue
			}
			rows = append(rows, Row{Name: name, Default: strings.TrimSpace(cells[1]), Meaning: strings.TrimSpace(strings.Join(cells[2:], " | "))})
		case inTable:
			return rows
		}
	}
	if len(rows) == 0 {
		t.Fatalf("README.md: no table under %q", heading)
	}
	return rows
}

var (
	firstCode = regexp.MustCompile("`([^`]*)`")
	rangeText = regexp.MustCompile(`\((-?[0-9][0-9.e+]*)-([0-9][0-9.e+]*)\)`)
	minText   = regexp.MustCompile(`\(min ([0-9][0-9.]*)`)
)

// CheckREADME fails the test unless the table under heading lists exactly
// the settings, in any order, each with its default (the first `code` of
// the default cell, or a parenthesis for a required or unset setting) and,
// where the meaning states a range "(a-b)" or a minimum "(min a", those of
// the declaration.
func CheckREADME(t *testing.T, heading string, settings []config.Setting) {
	t.Helper()
	rows := map[string]Row{}
	for _, r := range READMETable(t, heading) {
		rows[r.Name] = r
	}
	for _, s := range settings {
		r, ok := rows[s.Name]
		if !ok {
			t.Errorf("README %s: %s is missing (declared in Go)", heading, s.Name)
			continue
		}
		delete(rows, s.Name)
		switch m := firstCode.FindStringSubmatch(r.Default); {
		case s.Required && r.Default != "(required)":
			t.Errorf("README %s: %s default %q, want (required)", heading, s.Name, r.Default)
		case !s.Required && s.Default == "" && !strings.HasPrefix(r.Default, "("):
			t.Errorf("README %s: %s default %q, want a parenthesis: it has none", heading, s.Name, r.Default)
		case s.Default != "" && (len(m) < 2 || m[1] != s.Default):
			t.Errorf("README %s: %s default %q, want `%s`", heading, s.Name, r.Default, s.Default)
		}
		if m := rangeText.FindStringSubmatch(r.Meaning); len(m) == 3 && (m[1] != s.Min || m[2] != s.Max) {
			t.Errorf("README %s: %s states the range %s-%s, the binary enforces %s-%s", heading, s.Name, m[1], m[2], s.Min, s.Max)
		}
		if m := minText.FindStringSubmatch(r.Meaning); len(m) == 2 && m[1] != s.Min {
			t.Errorf("README %s: %s states the minimum %s, the binary enforces %s", heading, s.Name, m[1], s.Min)
		}
	}
	for name := range rows {
		t.Errorf("README %s: %s is not a setting of the binary", heading, name)
	}
}

// Helm runs `helm template` on charts/rickmorty with args and returns the
// manifests, or an error carrying helm's message.
//
// Tests that run helm are named TestChart…: on a first run scripts/ci/test.sh
// builds helm beside the other tests and runs these only once it is there.
func Helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	if !strings.HasPrefix(t.Name(), "TestChart") {
		t.Fatalf("%s runs helm: name it TestChart… so that scripts/ci/test.sh runs it once helm is built", t.Name())
	}
	root := RepoRoot(t)
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(root, "bin", "helm")
		if _, err := os.Stat(helm); err != nil {
			if helm, err = exec.LookPath("helm"); err != nil {
				t.Fatal("helm not found: run tools/install.sh helm, or set HELM")
			}
		}
	}
	full := append([]string{"template", "rickmorty", filepath.Join(root, "charts", "rickmorty"), "--namespace", "rickmorty"}, args...)
	cmd := exec.CommandContext(t.Context(), helm, full...) //nolint:gosec // helm from $HELM, ./bin or PATH, as in pkg/charttest; test support only
	cmd.Env = append(os.Environ(), "KUBECONFIG=/dev/null")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return nil, fmt.Errorf("helm template %s: %s", strings.Join(args, " "), stderr.String())
	}
	return stdout.Bytes(), nil
}

// ChartValue is a value of the chart (e.g. api.config.cacheTTL) and the
// variable a template passes it as (CACHE_TTL).
type ChartValue struct{ Path, Env string }

var envFromValue = regexp.MustCompile(`- name: ([A-Z][A-Z0-9_]*)\s*\n\s*value: \{\{[^}\n]*?\.config\.(\w+)`)

// ChartValues reads the chart templates files (paths under charts/rickmorty)
// for env entries whose value is a config value: each becomes
// prefix.<key> -> the variable.
func ChartValues(t *testing.T, prefix string, files ...string) []ChartValue {
	t.Helper()
	var out []ChartValue
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(RepoRoot(t), "charts", "rickmorty", f)) //nolint:gosec // a chart file named by the test
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envFromValue.FindAllStringSubmatch(string(b), -1) {
			out = append(out, ChartValue{Path: prefix + "." + m[2], Env: m[1]})
		}
	}
	if len(out) == 0 {
		t.Fatalf("no config value passed as a variable in %v", files)
	}
	return out
}
