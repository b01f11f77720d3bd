// Command k8sschema turns the Kubernetes OpenAPI v2 spec (swagger.json, as
// shipped in the k8s.io/kubernetes module under api/openapi-spec) into
// standalone JSON schemas in the layout kubeconform reads from a local
// schema location:
//
//	<out>/<version>-standalone-strict/<kind>[-<group>]-<apiversion>.json
//
// where <group> is the first label of the API group (apps, batch,
// networking, ...) and is left out for the core group. Each file holds the
// kind's schema at its root and every definition it references under
// "definitions", so recursive types keep working. For strict validation every
// object that lists its properties gets "additionalProperties": false (unless
// the spec marks it x-kubernetes-preserve-unknown-fields), IntOrString
// accepts a string or an integer and Quantity a string or a number.
//
// With -crd instead of -swagger it converts CustomResourceDefinitions (the
// openAPIV3Schema of each served version) the same way, one file per kind
// and version directly in <out> (see crd.go).
//
// Usage:
//
//	go run ./tools/k8sschema -swagger .../api/openapi-spec/swagger.json -out .cache/k8s-schemas -version v1.37.2
//	go run ./tools/k8sschema -crd .../postgresql.cnpg.io_clusters.yaml -crd .../postgresql.cnpg.io_poolers.yaml -out .cache/crd-schemas
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const refPrefix = "#/definitions/"

func main() {
	swagger := flag.String("swagger", "", "path to the Kubernetes swagger.json (OpenAPI v2)")
	out := flag.String("out", "", "output directory (the <version>-standalone-strict folder is created in it; with -crd the files themselves)")
	version := flag.String("version", "", "Kubernetes version the spec belongs to, like v1.37.2")
	var crds stringList
	flag.Var(&crds, "crd", "a CustomResourceDefinition YAML file to convert instead of -swagger (repeatable)")
	flag.Parse()
	if len(crds) > 0 {
		if *swagger != "" || *version != "" || *out == "" {
			flag.Usage()
			os.Exit(2)
		}
		written, err := runCRDs(crds, *out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "k8sschema:", err)
			os.Exit(1)
		}
		fmt.Printf("k8sschema: wrote %s\n", strings.Join(written, ", "))
		return
	}
	if *swagger == "" || *out == "" || *version == "" {
		flag.Usage()
		os.Exit(2)
	}
	n, err := run(*swagger, *out, *version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8sschema:", err)
		os.Exit(1)
	}
	fmt.Printf("k8sschema: wrote %d schemas for Kubernetes %s\n", n, *version)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type gvk struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

func run(swaggerPath, out, version string) (int, error) {
	raw, err := os.ReadFile(swaggerPath)
	if err != nil {
		return 0, err
	}
	var spec struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return 0, fmt.Errorf("parse %s: %w", swaggerPath, err)
	}
	if len(spec.Definitions) == 0 {
		return 0, fmt.Errorf("%s has no definitions", swaggerPath)
	}

	// Transform every definition once; files then pick what they reference.
	defs := make(map[string]any, len(spec.Definitions))
	for name, d := range spec.Definitions {
		defs[name] = transformDefinition(name, d)
	}

	dir := filepath.Join(out, "v"+strings.TrimPrefix(version, "v")+"-standalone-strict")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}

	names := make([]string, 0, len(spec.Definitions))
	for name := range spec.Definitions {
		names = append(names, name)
	}
	sort.Strings(names)

	written := map[string]string{}
	for _, name := range names {
		kinds, err := groupVersionKinds(spec.Definitions[name])
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		for _, k := range kinds {
			file := fileName(k)
			if _, dup := written[file]; dup {
				// A kind listed by more than one definition (an alias):
				// the first in name order wins, deterministically.
				continue
			}
			doc := standalone(name, defs)
			b, err := json.MarshalIndent(doc, "", "  ")
			if err != nil {
				return 0, err
			}
			if err := os.WriteFile(filepath.Join(dir, file), append(b, '\n'), 0o644); err != nil {
				return 0, err
			}
			written[file] = name
		}
	}
	return len(written), nil
}

func groupVersionKinds(def map[string]any) ([]gvk, error) {
	v, ok := def["x-kubernetes-group-version-kind"]
	if !ok {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var kinds []gvk
	if err := json.Unmarshal(b, &kinds); err != nil {
		return nil, fmt.Errorf("x-kubernetes-group-version-kind: %w", err)
	}
	return kinds, nil
}

// fileName follows kubeconform's naming: lower-case kind, then the first
// label of the group (none for the core group), then the version.
func fileName(k gvk) string {
	name := strings.ToLower(k.Kind)
	if k.Group != "" {
		name += "-" + strings.ToLower(strings.Split(k.Group, ".")[0])
	}
	return name + "-" + strings.ToLower(k.Version) + ".json"
}

// standalone returns the schema of definition root with every definition it
// reaches, directly or not, under "definitions".
func standalone(root string, defs map[string]any) map[string]any {
	reached := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if ref, ok := t["$ref"].(string); ok && strings.HasPrefix(ref, refPrefix) {
				name := strings.TrimPrefix(ref, refPrefix)
				if !reached[name] {
					reached[name] = true
					walk(defs[name])
				}
			}
			for _, c := range t {
				walk(c)
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(defs[root])

	doc := map[string]any{"$schema": "http://json-schema.org/draft-07/schema#"}
	for k, v := range defs[root].(map[string]any) {
		doc[k] = v
	}
	if len(reached) > 0 {
		sub := make(map[string]any, len(reached))
		for name := range reached {
			sub[name] = defs[name]
		}
		doc["definitions"] = sub
	}
	return doc
}

// Definitions whose wire form is not what their swagger type says.
var special = map[string]map[string]any{
	"io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
		"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}},
	},
	"io.k8s.apimachinery.pkg.api.resource.Quantity": {
		"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}},
	},
}

func transformDefinition(name string, def map[string]any) any {
	if s, ok := special[name]; ok {
		return s
	}
	return transform(def)
}

// transform copies a swagger schema node into JSON-schema form: it drops
// documentation and vendor extensions, closes objects that list their
// properties and maps int-or-string formats.
func transform(v any) any {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, c := range t {
			out[i] = transform(c)
		}
		return out
	case map[string]any:
		if t["format"] == "int-or-string" {
			return special["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
		}
		out := map[string]any{}
		for k, c := range t {
			switch {
			case k == "description", k == "format", k == "example", strings.HasPrefix(k, "x-"):
				// documentation, unchecked formats (int32, date-time, ...) and
				// vendor extensions carry no structure
			case k == "properties":
				props := map[string]any{}
				for pn, pv := range c.(map[string]any) {
					props[pn] = transform(pv)
				}
				out[k] = props
			default:
				out[k] = transform(c)
			}
		}
		_, hasProps := out["properties"]
		_, hasAdditional := out["additionalProperties"]
		preserve, _ := t["x-kubernetes-preserve-unknown-fields"].(bool)
		if hasProps && !hasAdditional && !preserve {
			out["additionalProperties"] = false
		}
		return out
	default:
		return v
	}
}
