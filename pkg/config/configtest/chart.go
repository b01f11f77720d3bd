package configtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rickmorty/rickmorty/pkg/config"
)

// CheckChart fails the test unless, for every chart value passed to a
// bounded setting: the schema's minimum and maximum (of a number) are the
// declaration's; the chart renders at both bounds, passing values the binary
// accepts to container; and one step past either bound the chart refuses
// the value, or does not pass it (leaving the binary's default).
func CheckChart(t *testing.T, settings []config.Setting, container string, values []ChartValue) {
	t.Helper()
	byName := map[string]config.Setting{}
	for _, s := range settings {
		byName[s.Name] = s
	}
	var low, high []string
	var bounded []ChartValue
	for _, v := range values {
		s, ok := byName[v.Env]
		if !ok {
			t.Errorf("chart: %s is passed as %s, which the binary does not read", v.Path, v.Env)
			continue
		}
		if s.Min == "" && s.Max == "" {
			continue
		}
		bounded = append(bounded, v)
		checkSchemaBounds(t, v, s)
		low = append(low, "--set-json", v.Path+"="+jsonValue(s.Min, 0))
		high = append(high, "--set-json", v.Path+"="+jsonValue(s.Max, 0))
	}
	for i, args := range [][]string{low, high} {
		out, err := Helm(t, args...)
		if err != nil {
			t.Errorf("chart refuses values the binary accepts: %v", err)
			continue
		}
		env := containerEnv(t, out, container)
		for _, v := range bounded {
			s := byName[v.Env]
			for _, got := range env[v.Env] {
				r := config.NewReader(func(string) string { return got })
				r.Load([]config.Setting{s}, s.Scope)
				if err := r.Err(); err != nil {
					t.Errorf("chart renders %s from %s; the binary refuses it: %v", v.Env, v.Path, err)
				}
			}
			bound := s.Min
			if i == 1 {
				bound = s.Max
			}
			// 0 may mean "leave the binary's default" to a template.
			if len(env[v.Env]) == 0 && jsonValue(bound, 0) != "0" {
				t.Errorf("chart does not pass %s to %s", v.Path, v.Env)
			}
		}
	}
	for _, v := range bounded {
		s := byName[v.Env]
		for _, set := range []string{jsonValue(s.Min, -1), jsonValue(s.Max, +1)} {
			out, err := Helm(t, "--set-json", v.Path+"="+set)
			if err != nil {
				continue
			}
			if got := containerEnv(t, out, container)[v.Env]; len(got) > 0 {
				t.Errorf("chart accepts %s=%s, out of the bounds of %s (%s - %s), and passes it as %v", v.Path, set, v.Env, s.Min, s.Max, got)
			}
		}
	}
}

// jsonValue is bound (a declaration's Min or Max) moved by step (-1 below,
// +1 above, 0 as is) as a JSON value for --set-json: a quoted duration
// (moved by a millisecond), or a number (moved by 1).
func jsonValue(bound string, step int) string {
	if d, err := time.ParseDuration(bound); err == nil && !isNumber(bound) {
		return strconv.Quote((d + time.Duration(step)*time.Millisecond).String())
	}
	f, _ := strconv.ParseFloat(bound, 64)
	return strconv.FormatFloat(f+float64(step), 'f', -1, 64)
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func checkSchemaBounds(t *testing.T, v ChartValue, s config.Setting) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "charts", "rickmorty", "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var node map[string]any
	if err := json.Unmarshal(b, &node); err != nil {
		t.Fatal(err)
	}
	for _, key := range strings.Split(v.Path, ".") {
		props, _ := node["properties"].(map[string]any)
		node, _ = props[key].(map[string]any)
		if node == nil {
			t.Errorf("values.schema.json has no %s", v.Path)
			return
		}
	}
	if node["type"] == "string" {
		return // a duration: bounded by templates/validate.yaml, proved by the renders
	}
	if anyOf, ok := node["anyOf"].([]any); ok {
		for _, branch := range anyOf {
			if m, _ := branch.(map[string]any); m["minimum"] != nil {
				node = m
			}
		}
	}
	for what, want := range map[string]string{"minimum": s.Min, "maximum": s.Max} {
		w, _ := strconv.ParseFloat(want, 64)
		if got, ok := node[what].(float64); !ok || got != w {
			t.Errorf("values.schema.json %s: %s is %v, the binary's bound on %s is %s", v.Path, what, node[what], v.Env, want)
		}
	}
}

// containerEnv is the literal env values of every container named name in
// the manifests, by variable.
func containerEnv(t *testing.T, manifests []byte, name string) map[string][]string {
	t.Helper()
	env := map[string][]string{}
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return env
		}
		if err != nil {
			t.Fatal(err)
		}
		walkContainers(doc, name, env)
	}
}

func walkContainers(node any, name string, env map[string][]string) {
	switch n := node.(type) {
	case map[string]any:
		if cs, ok := n["containers"].([]any); ok {
			for _, c := range cs {
				c, _ := c.(map[string]any)
				if c["name"] != name {
					continue
				}
				list, _ := c["env"].([]any)
				for _, e := range list {
					e, _ := e.(map[string]any)
					if v, ok := e["value"].(string); ok {
						env[e["name"].(string)] = append(env[e["name"].(string)], v)
					}
				}
			}
		}
		for _, v := range n {
			walkContainers(v, name, env)
		}
	case []any:
		for _, v := range n {
			walkContainers(v, name, env)
		}
	}
}
