package charttest

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// valuesComment returns the comment above a key of charts/rickmorty/values.yaml
// (path of keys from the top), as plain text: "#" markers dropped, lines
// joined, spaces collapsed.
func valuesComment(t *testing.T, keys ...string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "charts", "rickmorty", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	node := doc.Content[0]
	var comment string
	for _, k := range keys {
		found := false
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == k {
				comment, node, found = node.Content[i].HeadComment, node.Content[i+1], true
				break
			}
		}
		if !found {
			t.Fatalf("values.yaml has no %s", strings.Join(keys, "."))
		}
	}
	return plainComment(comment)
}

var commentMarks = regexp.MustCompile(`(?m)^\s*#+ ?`)

func plainComment(s string) string {
	return strings.Join(strings.Fields(commentMarks.ReplaceAllString(s, "")), " ")
}

// TestMigrationsWithADatabaseOfTheRelease checks what the chart says about
// the migrations when the database is part of the release (the dev
// Postgres, CloudNativePG) against what it renders: the migration Job is
// then an ordinary Job per revision (not a hook), retried until the
// database answers, and nothing else migrates (no init container). The
// comments of values.yaml and NOTES.txt must say exactly that; NOTES.txt
// used to promise that upgrades run the migrations first.
func TestMigrationsWithADatabaseOfTheRelease(t *testing.T) {
	for _, sc := range []scenario{
		{"dev Postgres (full-values)", values(t, "full-values.yaml")},
		{"dev Postgres alone", []string{"--set", "postgres.enabled=true"}},
		{"CloudNativePG", values(t, "cloudnativepg-values.yaml")},
	} {
		t.Run(sc.name, func(t *testing.T) {
			objs := render(t, sc.args...)
			job := find(t, objs, "Job", migrateName+"-r1")
			for k := range annotations(job) {
				if strings.HasPrefix(k, "helm.sh/hook") {
					t.Errorf("migration Job has %s: a hook would run before the database exists", k)
				}
			}
			if args := listAt(container(t, job, "ingester"), "args"); !reflect.DeepEqual(args, []any{"migrate"}) {
				t.Errorf("migration Job args = %v, want [migrate]", args)
			}
			// Retried until the database accepts connections: a refused
			// connection exits 1, which only exit code 2 (configuration)
			// would cut short.
			if get(job, "spec.backoffLimit") != 6 || get(job, "spec.activeDeadlineSeconds") != 600 {
				t.Errorf("backoffLimit %v, activeDeadlineSeconds %v; want ingester.migrations' 6 and 600",
					get(job, "spec.backoffLimit"), get(job, "spec.activeDeadlineSeconds"))
			}
			for _, r := range listAt(job, "spec.podFailurePolicy.rules") {
				if str(r, "action") == "FailJob" && !reflect.DeepEqual(listAt(r, "onExitCodes.values"), []any{2}) {
					t.Errorf("podFailurePolicy fails the Job on %v; a database not yet up (exit 1) must be retried", listAt(r, "onExitCodes.values"))
				}
			}
			// Nothing else migrates: the workloads have no init container
			// but the log sidecar, and no other container runs `migrate`.
			for _, o := range objs {
				spec := podSpec(o)
				if spec == nil || o.id() == job.id() {
					continue
				}
				workload := o.kind() == "Deployment" || o.kind() == "StatefulSet"
				for _, c := range listAt(spec, "initContainers") {
					if workload && (get(c, "name") != "fluent-bit" || get(c, "restartPolicy") != "Always") {
						t.Errorf("%s has init container %v", o.id(), get(c, "name"))
					}
				}
				for _, c := range containers(spec) {
					for _, a := range append(listAt(c, "command"), listAt(c, "args")...) {
						if a == "migrate" {
							t.Errorf("%s/%s runs migrate besides the migration Job", o.id(), c["name"])
						}
					}
				}
			}
			// The pods wait for the schema: readiness is /readyz, which
			// checks the schema version.
			for _, w := range []struct{ deploy, ctr string }{{apiName, "api"}, {ingesterName, "ingester"}} {
				if got := str(container(t, find(t, objs, "Deployment", w.deploy), w.ctr), "readinessProbe.httpGet.path"); got != "/readyz" {
					t.Errorf("%s readiness probe %q, want /readyz", w.deploy, got)
				}
			}
		})
	}

	t.Run("values.yaml says so", func(t *testing.T) {
		m := valuesComment(t, "ingester", "migrations")
		for _, want := range []string{
			"pre-install,pre-upgrade hook",
			"ordinary resource, one per revision (<base>-migrate-r<N>)",
			"not before them",
			"retried (backoffLimit",
			"no init container does",
			"the ingester never migrates by itself",
		} {
			if !strings.Contains(m, want) {
				t.Errorf("the ingester.migrations comment lacks %q:\n%s", want, m)
			}
		}
		if p := valuesComment(t, "postgres"); !strings.Contains(p, "ordinary Job per revision here, not a hook") {
			t.Errorf("the postgres comment does not say how its schema is made:\n%s", p)
		}
		root, err := repoRoot()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(root, "charts", "rickmorty", "values.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		all := plainComment(string(raw))
		if n, denials := strings.Count(all, "init container"), strings.Count(all, "no init container"); n != denials {
			t.Errorf("values.yaml mentions an init container %d times beyond saying there is none", n-denials)
		}
	})

	t.Run("NOTES.txt says so", func(t *testing.T) {
		dev, err := helmNotes("--set", "postgres.enabled=true")
		if err != nil {
			t.Fatal(err)
		}
		flat := strings.Join(strings.Fields(dev), " ")
		for _, want := range []string{
			"The Job rickmorty-migrate-r1 (an ordinary Job, one per revision) runs alongside the pods",
			"Upgrades run the migrations in an ordinary Job per revision, alongside the new pods (not before them",
			"kubectl -n rickmorty logs -f job/rickmorty-migrate-r1",
		} {
			if !strings.Contains(flat, want) {
				t.Errorf("dev Postgres NOTES lack %q:\n%s", want, dev)
			}
		}
		if strings.Contains(flat, "migrations first") {
			t.Errorf("dev Postgres NOTES say the migrations run first; the Job runs alongside the pods:\n%s", dev)
		}
		def, err := helmNotes()
		if err != nil {
			t.Fatal(err)
		}
		if flat := strings.Join(strings.Fields(def), " "); !strings.Contains(flat, "Upgrades run the migrations first, in a pre-upgrade hook Job") {
			t.Errorf("default NOTES do not name the pre-upgrade hook:\n%s", def)
		}
		off, err := helmNotes("--set", "postgres.enabled=true", "--set", "ingester.migrations.enabled=false")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(off, "nothing creates the schema") {
			t.Errorf("NOTES with a dev Postgres and no migrations do not warn:\n%s", off)
		}
	})
}
