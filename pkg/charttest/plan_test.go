package charttest

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestPlanJobTemplate(t *testing.T) {
	show := []string{"--show-only", "templates/plan-job.yaml", "--set", "ingester.plan.enabled=true"}
	if _, err := helmTemplate("--show-only", "templates/plan-job.yaml"); err == nil {
		t.Error("the plan Job renders without ingester.plan.enabled; it must never be part of a release")
	}
	for _, tc := range []struct {
		set          []string
		args         []any
		generateName string
		urlKey       string
	}{
		{nil, []any{"plan"}, "rickmorty-plan-", "api-database-url"},
		{[]string{"ingester.plan.limit=0", "ingester.plan.json=true"}, []any{"plan", "--json", "--limit", "0"}, "rickmorty-plan-", "api-database-url"},
		{[]string{"ingester.plan.command=runs", "ingester.plan.limit=100", "ingester.plan.databaseRole=ingester"}, []any{"runs", "--limit", "100"}, "rickmorty-runs-", "ingester-database-url"},
	} {
		args := slices.Clone(show)
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		objs := render(t, args...)
		if len(objs) != 1 || objs[0].kind() != "Job" {
			t.Fatalf("%v: rendered %d objects, want one Job", tc.set, len(objs))
		}
		job := objs[0]
		if job.name() != "" || str(job, "metadata.generateName") != tc.generateName {
			t.Errorf("%v: name %q generateName %q, want only generateName %s", tc.set, job.name(), str(job, "metadata.generateName"), tc.generateName)
		}
		if str(job, "metadata.namespace") != namespace || len(annotations(job)) != 0 {
			t.Errorf("%v: namespace %q, annotations %v: want the release's namespace and no hook", tc.set, str(job, "metadata.namespace"), annotations(job))
		}
		c := container(t, job, "ingester")
		if got := listAt(c, "args"); !reflect.DeepEqual(got, tc.args) {
			t.Errorf("%v: args = %v, want %v", tc.set, got, tc.args)
		}
		if got, want := secretRef(env(c)["DATABASE_URL"]), dbSecret+"/"+tc.urlKey; got != want {
			t.Errorf("%v: DATABASE_URL from %s, want %s", tc.set, got, want)
		}
		labels := podLabels(job)
		if labels["app.kubernetes.io/component"] != "plan" || labels["app.kubernetes.io/managed-by"] != "kubectl" ||
			stringMap(mapAt(job, "metadata.labels"))["app.kubernetes.io/managed-by"] != "kubectl" {
			t.Errorf("%v: labels %v: want component plan, managed by kubectl", tc.set, labels)
		}
		for _, l := range standardLabels {
			if labels[l] == "" {
				t.Errorf("plan pod label %s is missing", l)
			}
		}
		codes := listAt(get(job, "spec.podFailurePolicy.rules").([]any)[0], "onExitCodes.values")
		if !reflect.DeepEqual(codes, []any{2, 4}) {
			t.Errorf("%v: FailJob exit codes %v, want [2 4] (usage; the guard would refuse: the plan's answer)", tc.set, codes)
		}
		if sa := str(job, "spec.template.spec.serviceAccountName"); sa != ingesterName {
			t.Errorf("serviceAccountName = %q, want %s", sa, ingesterName)
		}

		// The plan pod may reach the database and the upstream: the ingester's
		// and the dev Postgres' policies select it.
		full := render(t, append(values(t, "full-values.yaml"), "--set", "ingester.plan.enabled=true")...)
		for _, np := range []string{ingesterName, "rickmorty-postgres"} {
			p := find(t, full, "NetworkPolicy", np)
			sel := mapAt(p, "spec.podSelector")
			if np == "rickmorty-postgres" {
				sel = listAt(p, "spec.ingress")[0].(map[string]any)["from"].([]any)[0].(map[string]any)["podSelector"].(map[string]any)
			}
			if !matches(sel, labels) {
				t.Errorf("NetworkPolicy %s does not admit the plan pod (labels %v)", np, labels)
			}
		}
	}
	for _, bad := range [][]string{
		{"ingester.plan.command=once"},
		{"ingester.plan.databaseRole=admin"},
		{"ingester.plan.command=runs", "ingester.plan.limit=0"},
		{"ingester.plan.limit=-1"},
	} {
		args := slices.Clone(show)
		for _, s := range bad {
			args = append(args, "--set", s)
		}
		if _, err := helmTemplate(args...); err == nil {
			t.Errorf("--set %v renders; want it refused", bad)
		}
	}
}

func TestNotesShowThePlanLoop(t *testing.T) {
	notes, err := helmNotes()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--set ingester.plan.enabled=true --show-only templates/plan-job.yaml | kubectl create -f -",
		"app.kubernetes.io/component=plan",
		"guard=ok|refused",
		"--set ingester.reingest.force=true",
		"Exit 4 means the mass-delete guard refused the sync",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES lack %q:\n%s", want, notes)
		}
	}
}
