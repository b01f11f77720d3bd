package charttest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// release and namespace of every render.
const (
	release   = "rickmorty"
	namespace = "rickmorty"
)

// obj is one decoded manifest.
type obj map[string]any

func (o obj) kind() string { return str(o, "kind") }
func (o obj) name() string { return str(o, "metadata.name") }
func (o obj) id() string {
	n := o.name()
	if n == "" {
		n = str(o, "metadata.generateName") + "*"
	}
	return o.kind() + "/" + n
}

// repoRoot is the directory holding go.mod, found from the test's directory.
var repoRoot = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "charts", "rickmorty", "Chart.yaml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("charts/rickmorty/Chart.yaml not found above the test directory")
		}
		dir = parent
	}
})

// helmBinary is $HELM, else ./bin/helm, else helm on PATH.
var helmBinary = sync.OnceValues(func() (string, error) {
	if h := os.Getenv("HELM"); h != "" {
		return h, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	if p := filepath.Join(root, "bin", "helm"); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p, nil
	}
	return "", errors.New("helm not found in ./bin or on PATH: install the pinned version with " +
		"`tools/install.sh helm` (or run `bash scripts/chart/test.sh`, which does it first)")
})

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

type renderResult struct {
	objs []obj
	err  error
}

var renders sync.Map // key: joined args -> *renderResult (with its own once)

type cachedRender struct {
	once sync.Once
	res  renderResult
}

// helmTemplate runs `helm template` on the chart with args and returns its
// stdout, or an error carrying stderr.
func helmTemplate(args ...string) ([]byte, error) {
	helm, err := helmBinary()
	if err != nil {
		return nil, err
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	full := append([]string{"template", release, filepath.Join(root, "charts", "rickmorty"), "--namespace", namespace}, args...)
	cmd := exec.Command(helm, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s", strings.Join(full, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// helmNotes returns the NOTES.txt that `helm install --dry-run=client`
// prints for the chart with args (no cluster needed).
func helmNotes(args ...string) (string, error) {
	helm, err := helmBinary()
	if err != nil {
		return "", err
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	full := append([]string{"install", release, filepath.Join(root, "charts", "rickmorty"), "--namespace", namespace, "--dry-run=client"}, args...)
	cmd := exec.Command(helm, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("helm %s: %w\n%s", strings.Join(full, " "), err, stderr.String())
	}
	_, notes, found := strings.Cut(stdout.String(), "\nNOTES:\n")
	if !found {
		return "", fmt.Errorf("helm %s printed no NOTES", strings.Join(full, " "))
	}
	return notes, nil
}

// render returns the manifests of `helm template` with args (rendered once
// per distinct args for the whole test binary). It fails the test on error.
func render(t *testing.T, args ...string) []obj {
	t.Helper()
	objs, err := tryRender(args...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func tryRender(args ...string) ([]obj, error) {
	key := strings.Join(args, "\x00")
	v, _ := renders.LoadOrStore(key, &cachedRender{})
	c := v.(*cachedRender)
	c.once.Do(func() {
		out, err := helmTemplate(args...)
		if err != nil {
			c.res.err = err
			return
		}
		c.res.objs, c.res.err = decode(out)
	})
	return c.res.objs, c.res.err
}

func decode(b []byte) ([]obj, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var objs []obj
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode rendered manifests: %w", err)
		}
		if o == nil {
			continue
		}
		objs = append(objs, obj(o))
	}
	return objs, nil
}

// values returns the args for a file of charts/rickmorty/ci/.
func values(t *testing.T, name string) []string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return []string{"-f", filepath.Join(root, "charts", "rickmorty", "ci", name)}
}

// scenario is a named set of helm arguments.
type scenario struct {
	name string
	args []string
}

// scenarios are the default values and every file in charts/rickmorty/ci/.
func scenarios(t *testing.T) []scenario {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "charts", "rickmorty", "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want at least 3 files in charts/rickmorty/ci/, found %d", len(files))
	}
	sort.Strings(files)
	out := []scenario{{name: "defaults"}}
	for _, f := range files {
		out = append(out, scenario{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), args: []string{"-f", f}})
	}
	return out
}

// find returns the object of kind and name, failing the test when absent.
func find(t *testing.T, objs []obj, kind, name string) obj {
	t.Helper()
	if o := lookup(objs, kind, name); o != nil {
		return o
	}
	var have []string
	for _, o := range objs {
		have = append(have, o.id())
	}
	t.Fatalf("no %s/%s among %v", kind, name, have)
	return nil
}

func lookup(objs []obj, kind, name string) obj {
	for _, o := range objs {
		if o.kind() == kind && o.name() == name {
			return o
		}
	}
	return nil
}

func ofKind(objs []obj, kind string) []obj {
	var out []obj
	for _, o := range objs {
		if o.kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// get walks a dotted path of map keys ("spec.template.spec").
func get(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			if o, isObj := v.(obj); isObj {
				m = o
			} else {
				return nil
			}
		}
		v = m[k]
	}
	return v
}

// isBool reports whether v is the boolean want: a missing value or one of
// another type is neither true nor false.
func isBool(v any, want bool) bool {
	b, ok := v.(bool)
	return ok && b == want
}

func str(v any, path string) string {
	s, _ := get(v, path).(string)
	return s
}

func mapAt(v any, path string) map[string]any {
	m, _ := get(v, path).(map[string]any)
	return m
}

func listAt(v any, path string) []any {
	l, _ := get(v, path).([]any)
	return l
}

func stringMap(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// podSpec returns the pod spec of a workload, Job or Pod.
func podSpec(o obj) map[string]any {
	switch o.kind() {
	case "Pod":
		return mapAt(o, "spec")
	case "Deployment", "StatefulSet", "Job", "DaemonSet":
		return mapAt(o, "spec.template.spec")
	}
	return nil
}

// podLabels returns the labels of a workload's pods.
func podLabels(o obj) map[string]string {
	if o.kind() == "Pod" {
		return stringMap(mapAt(o, "metadata.labels"))
	}
	return stringMap(mapAt(o, "spec.template.metadata.labels"))
}

// containers returns the named containers of a pod spec: init containers
// (including native sidecars) and regular ones.
func containers(spec map[string]any) []map[string]any {
	var out []map[string]any
	for _, key := range []string{"initContainers", "containers"} {
		for _, c := range listAt(spec, key) {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func container(t *testing.T, o obj, name string) map[string]any {
	t.Helper()
	for _, c := range containers(podSpec(o)) {
		if c["name"] == name {
			return c
		}
	}
	t.Fatalf("%s has no container %q", o.id(), name)
	return nil
}

// env returns a container's env entries by name.
func env(c map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, e := range listAt(c, "env") {
		m := e.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// secretRef returns "secret/key" of an env entry's secretKeyRef.
func secretRef(e map[string]any) string {
	if e == nil {
		return ""
	}
	return str(e, "valueFrom.secretKeyRef.name") + "/" + str(e, "valueFrom.secretKeyRef.key")
}

// matches reports whether labels satisfy a LabelSelector (matchLabels and
// matchExpressions).
func matches(selector map[string]any, labels map[string]string) bool {
	if selector == nil {
		return false
	}
	for k, v := range stringMap(mapAt(selector, "matchLabels")) {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range listAt(selector, "matchExpressions") {
		m := e.(map[string]any)
		key := m["key"].(string)
		val, has := labels[key]
		var vals []string
		for _, v := range listAt(m, "values") {
			vals = append(vals, fmt.Sprint(v))
		}
		in := false
		for _, v := range vals {
			if v == val {
				in = true
			}
		}
		switch m["operator"] {
		case "In":
			if !has || !in {
				return false
			}
		case "NotIn":
			if has && in {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func annotations(o obj) map[string]string { return stringMap(mapAt(o, "metadata.annotations")) }

// secretData returns the decoded data of a Secret.
func secretData(t *testing.T, s obj) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range mapAt(s, "data") {
		b, err := base64.StdEncoding.DecodeString(v.(string))
		if err != nil {
			t.Fatalf("%s: data %s is not base64: %v", s.id(), k, err)
		}
		out[k] = string(b)
	}
	return out
}

// parseURL parses a postgres:// URL, failing the test when it is not one.
func parseURL(t *testing.T, what, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "postgres" || u.User == nil {
		t.Fatalf("%s = %q: not a postgres:// URL with a user (%v)", what, s, err)
	}
	return u
}
