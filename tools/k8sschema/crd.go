package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"go.yaml.in/yaml/v3"
)

// CustomResourceDefinition mode: the openAPIV3Schema of every served version
// of each CRD becomes one strict standalone schema,
//
//	<out>/<kind>-<first label of the group>-<version>.json
//
// the file name kubeconform asks a schema location for ({{ .ResourceKind
// }}{{ .KindSuffix }}.json). The same rules as for the Kubernetes schemas
// apply (transform): objects that list their properties are closed unless
// marked x-kubernetes-preserve-unknown-fields; besides, a node marked
// x-kubernetes-int-or-string accepts an integer or a string and a nullable
// one also null, as the API server does.

// What Kubernetes accepts as a CRD's group and version (DNS names) and
// kind; the schema file names are made of them.
var (
	dnsName  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	kindName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
)

// crd is the part of an apiextensions.k8s.io/v1 CustomResourceDefinition
// that the schemas come from.
type crd struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Group string `yaml:"group"`
		Names struct {
			Kind string `yaml:"kind"`
		} `yaml:"names"`
		Versions []struct {
			Name   string `yaml:"name"`
			Served bool   `yaml:"served"`
			Schema struct {
				OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
			} `yaml:"schema"`
		} `yaml:"versions"`
	} `yaml:"spec"`
}

// runCRDs writes the schemas of the CRDs in files (YAML, several documents
// per file allowed) into out and returns the names of the files written.
func runCRDs(files []string, out string) ([]string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	var written []string
	seen := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		docs, err := crdSchemas(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if len(docs) == 0 {
			return nil, fmt.Errorf("%s: no CustomResourceDefinition with an openAPIV3Schema", f)
		}
		names := make([]string, 0, len(docs))
		for name := range docs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if prev, dup := seen[name]; dup {
				return nil, fmt.Errorf("%s: %s is also defined in %s", f, name, prev)
			}
			seen[name] = f
			b, err := json.MarshalIndent(docs[name], "", "  ")
			if err != nil {
				return nil, err
			}
			// name is fileName's: lower-case letters, digits, '-' and '.'
			// only (crdSchemas checks kind, group and version), so it stays in out.
			if err := os.WriteFile(filepath.Join(out, name), append(b, '\n'), 0o644); err != nil { //nolint:gosec // see above
				return nil, err
			}
			written = append(written, name)
		}
	}
	return written, nil
}

// crdSchemas returns the strict schema of every served version of every
// CRD in raw, by file name.
func crdSchemas(raw []byte) (map[string]any, error) {
	out := map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var c crd
		err := dec.Decode(&c)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if c.Kind == "" {
			continue // an empty document
		}
		if c.APIVersion != "apiextensions.k8s.io/v1" || c.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("%s %s is not an apiextensions.k8s.io/v1 CustomResourceDefinition", c.APIVersion, c.Kind)
		}
		if !dnsName.MatchString(c.Spec.Group) || !kindName.MatchString(c.Spec.Names.Kind) {
			return nil, fmt.Errorf("CustomResourceDefinition with spec.group %q, spec.names.kind %q: want a DNS name and an identifier", c.Spec.Group, c.Spec.Names.Kind)
		}
		for _, v := range c.Spec.Versions {
			if !v.Served {
				continue
			}
			if !dnsName.MatchString(v.Name) {
				return nil, fmt.Errorf("%s %s: version %q is not a DNS label", c.Spec.Names.Kind, c.Spec.Group, v.Name)
			}
			if v.Schema.OpenAPIV3Schema == nil {
				return nil, fmt.Errorf("%s %s/%s has no openAPIV3Schema", c.Spec.Names.Kind, c.Spec.Group, v.Name)
			}
			doc, ok := transformCRD(v.Schema.OpenAPIV3Schema).(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s %s/%s: openAPIV3Schema is not an object", c.Spec.Names.Kind, c.Spec.Group, v.Name)
			}
			doc["$schema"] = "http://json-schema.org/draft-07/schema#"
			out[fileName(gvk{Group: c.Spec.Group, Version: v.Name, Kind: c.Spec.Names.Kind})] = doc
		}
	}
	return out, nil
}

// transformCRD is transform with the structural-schema extensions of CRDs
// mapped to JSON Schema first, node by node.
func transformCRD(v any) any {
	return transform(crdExtensions(v))
}

// crdExtensions rewrites x-kubernetes-int-or-string and nullable, which
// JSON Schema does not know, into anyOf and type lists. Everything else is
// left for transform.
func crdExtensions(v any) any {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, c := range t {
			out[i] = crdExtensions(c)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, c := range t {
			switch k {
			case "properties":
				// property names are data, not keywords
				props := map[string]any{}
				for pn, pv := range c.(map[string]any) {
					props[pn] = crdExtensions(pv)
				}
				out[k] = props
			case "enum", "default", "example", "required":
				out[k] = c
			default:
				out[k] = crdExtensions(c)
			}
		}
		if ios, _ := t["x-kubernetes-int-or-string"].(bool); ios {
			// controller-gen writes anyOf [integer, string] itself; make
			// sure of it and drop a type that would contradict it. A
			// pattern stays: it constrains the string form only.
			delete(out, "type")
			out["anyOf"] = []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}
		}
		if nullable, _ := t["nullable"].(bool); nullable {
			delete(out, "nullable")
			switch typ := out["type"].(type) {
			case string:
				out["type"] = []any{typ, "null"}
			case nil:
				if anyOf, ok := out["anyOf"].([]any); ok {
					out["anyOf"] = append(anyOf, map[string]any{"type": "null"})
				}
			}
		} else {
			delete(out, "nullable")
		}
		return out
	default:
		return v
	}
}
