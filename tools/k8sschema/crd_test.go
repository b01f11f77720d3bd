package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// A CRD in the shape controller-gen writes, with each construct the
// conversion has to handle.
const testCRD = `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.cnpg.io
spec:
  group: example.cnpg.io
  names:
    kind: Widget
  versions:
  - name: v1
    served: true
    schema:
      openAPIV3Schema:
        description: A widget.
        type: object
        properties:
          apiVersion:
            type: string
          kind:
            type: string
          metadata:
            type: object
          spec:
            description: The spec.
            type: object
            required: [instances]
            properties:
              instances:
                type: integer
                minimum: 1
                format: int32
              size:
                anyOf:
                - type: integer
                - type: string
                pattern: ^[0-9]+(Mi|Gi)?$
                x-kubernetes-int-or-string: true
              labels:
                type: object
                additionalProperties:
                  type: string
              config:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties:
                  known:
                    type: string
              note:
                type: string
                nullable: true
              properties:
                description: a field named like a keyword
                type: string
                enum: [a, b]
  - name: v1alpha1
    served: false
    schema:
      openAPIV3Schema:
        type: object
`

func TestCRDSchemas(t *testing.T) {
	docs, err := crdSchemas([]byte(testCRD))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("got %d schemas, want 1 (the unserved version left out): %v", len(docs), keys(docs))
	}
	doc, ok := docs["widget-example-v1.json"].(map[string]any)
	if !ok {
		t.Fatalf("no widget-example-v1.json (kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json) among %v", keys(docs))
	}
	at := func(path string) map[string]any {
		t.Helper()
		var v any = doc
		for _, k := range strings.Split(path, ".") {
			v = v.(map[string]any)[k]
		}
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s is %T", path, v)
		}
		return m
	}
	if doc["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema = %v", doc["$schema"])
	}
	// Objects that list their properties are closed, at every level.
	for _, p := range []string{"", "properties.spec"} {
		m := doc
		if p != "" {
			m = at(p)
		}
		if closed, ok := m["additionalProperties"].(bool); !ok || closed {
			t.Errorf("%q: additionalProperties = %v, want false", p, m["additionalProperties"])
		}
	}
	// Maps keep their value schema; open objects and preserved fields stay open.
	if got := at("properties.spec.properties.labels")["additionalProperties"]; !reflect.DeepEqual(got, map[string]any{"type": "string"}) {
		t.Errorf("labels.additionalProperties = %v", got)
	}
	if _, closed := at("properties.metadata")["additionalProperties"]; closed {
		t.Error("metadata (no properties listed) was closed")
	}
	if _, closed := at("properties.spec.properties.config")["additionalProperties"]; closed {
		t.Error("config (x-kubernetes-preserve-unknown-fields) was closed")
	}
	// int-or-string: an integer or a string; the pattern stays for strings.
	size := at("properties.spec.properties.size")
	if !reflect.DeepEqual(size["anyOf"], []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}) || size["pattern"] == nil || size["type"] != nil {
		t.Errorf("size = %v, want anyOf integer/string with the pattern", size)
	}
	// nullable: the type also admits null.
	if got := at("properties.spec.properties.note")["type"]; !reflect.DeepEqual(got, []any{"string", "null"}) {
		t.Errorf("note.type = %v, want [string null]", got)
	}
	// Documentation, formats and vendor extensions are gone; constraints and
	// a property named like a keyword are kept.
	inst := at("properties.spec.properties.instances")
	if inst["format"] != nil || inst["minimum"] != 1 {
		t.Errorf("instances = %v", inst)
	}
	if doc["description"] != nil || at("properties.spec")["description"] != nil {
		t.Error("descriptions were kept")
	}
	if p := at("properties.spec.properties.properties"); p["type"] != "string" || !reflect.DeepEqual(p["enum"], []any{"a", "b"}) {
		t.Errorf("the field named properties = %v", p)
	}
	if req := at("properties.spec")["required"]; !reflect.DeepEqual(req, []any{"instances"}) {
		t.Errorf("spec.required = %v", req)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"x-kubernetes-`) || strings.Contains(string(b), `"nullable"`) {
		t.Errorf("extensions left in the schema: %s", b)
	}
}

func TestRunCRDsWritesFiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "crd.yaml")
	if err := os.WriteFile(in, []byte(testCRD), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	written, err := runCRDs([]string{in}, out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(written, []string{"widget-example-v1.json"}) {
		t.Fatalf("written = %v", written)
	}
	b, err := os.ReadFile(filepath.Join(out, "widget-example-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	// The same CRD twice is an error, not a silent overwrite.
	if _, err := runCRDs([]string{in, in}, out); err == nil || !strings.Contains(err.Error(), "also defined") {
		t.Errorf("duplicate kind: err = %v", err)
	}
}

func TestCRDSchemasRefusesOtherDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"not a CRD":         "apiVersion: v1\nkind: ConfigMap\n",
		"v1beta1 CRD":       "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\n",
		"no group":          "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  names:\n    kind: X\n",
		"path in a group":   "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  group: ../../etc\n  names:\n    kind: X\n",
		"served, no schema": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  group: g.io\n  names:\n    kind: X\n  versions:\n  - name: v1\n    served: true\n",
	} {
		if _, err := crdSchemas([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
