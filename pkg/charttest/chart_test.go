package charttest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Names of the resources for release "rickmorty" (the base name is the
// release name, as it contains "rickmorty").
const (
	apiName      = "rickmorty-api"
	ingesterName = "rickmorty-ingester"
	migrateName  = "rickmorty-migrate"
	dbSecret     = "rickmorty-database"
)

func TestHelmIsAvailable(t *testing.T) {
	if _, err := helmBinary(); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultsRenderTheWholeSystem(t *testing.T) {
	objs := render(t)
	for _, want := range []struct{ kind, name string }{
		{"Deployment", apiName},
		{"Service", apiName},
		{"ServiceAccount", apiName},
		{"PodDisruptionBudget", apiName},
		{"NetworkPolicy", apiName},
		{"Deployment", ingesterName},
		{"Service", ingesterName},
		{"ServiceAccount", ingesterName},
		{"NetworkPolicy", ingesterName},
		{"Job", migrateName},
		{"Pod", "rickmorty-test-api"},
	} {
		find(t, objs, want.kind, want.name)
	}
	// Optional parts are off by default.
	for _, kind := range []string{"Ingress", "HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule", "StatefulSet", "Secret", "ConfigMap"} {
		if got := ofKind(objs, kind); len(got) > 0 {
			t.Errorf("defaults render %s %s; want none", kind, got[0].name())
		}
	}
	if svc := find(t, objs, "Service", apiName); str(svc, "spec.type") != "ClusterIP" {
		t.Errorf("api Service type = %q, want ClusterIP", str(svc, "spec.type"))
	}
	if n := get(find(t, objs, "Deployment", ingesterName), "spec.replicas"); n != 1 {
		t.Errorf("ingester replicas = %v, want 1", n)
	}
}

func TestSecurityContextOfEveryPod(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			objs := render(t, sc.args...)
			pods := 0
			for _, o := range objs {
				spec := podSpec(o)
				if spec == nil {
					continue
				}
				pods++
				if !isBool(get(spec, "automountServiceAccountToken"), false) {
					t.Errorf("%s: automountServiceAccountToken = %v, want false", o.id(), get(spec, "automountServiceAccountToken"))
				}
				if !isBool(get(spec, "securityContext.runAsNonRoot"), true) {
					t.Errorf("%s: pod runAsNonRoot = %v, want true", o.id(), get(spec, "securityContext.runAsNonRoot"))
				}
				if got := str(spec, "securityContext.seccompProfile.type"); got != "RuntimeDefault" {
					t.Errorf("%s: pod seccompProfile = %q, want RuntimeDefault", o.id(), got)
				}
				for _, c := range containers(spec) {
					id := o.id() + "/" + c["name"].(string)
					if !isBool(get(c, "securityContext.readOnlyRootFilesystem"), true) {
						t.Errorf("%s: readOnlyRootFilesystem = %v, want true", id, get(c, "securityContext.readOnlyRootFilesystem"))
					}
					if !isBool(get(c, "securityContext.allowPrivilegeEscalation"), false) {
						t.Errorf("%s: allowPrivilegeEscalation = %v, want false", id, get(c, "securityContext.allowPrivilegeEscalation"))
					}
					if drop := listAt(c, "securityContext.capabilities.drop"); !slices.Contains(drop, any("ALL")) {
						t.Errorf("%s: capabilities.drop = %v, want [ALL]", id, drop)
					}
					if add := listAt(c, "securityContext.capabilities.add"); len(add) > 0 {
						t.Errorf("%s: capabilities.add = %v, want none", id, add)
					}
					if got := str(c, "securityContext.seccompProfile.type"); got != "RuntimeDefault" {
						t.Errorf("%s: seccompProfile = %q, want RuntimeDefault", id, got)
					}
					// The one documented exception, in the privileged-*
					// files only: Fluent Bit reading the root-only kubelet
					// log files runs as uid 0, without capabilities.
					if privilegedValuesFile(sc.name) && c["name"] == "fluent-bit" && get(c, "securityContext.runAsUser") == 0 {
						continue
					}
					if !isBool(get(c, "securityContext.runAsNonRoot"), true) {
						t.Errorf("%s: runAsNonRoot = %v, want true", id, get(c, "securityContext.runAsNonRoot"))
					}
				}
			}
			if pods == 0 {
				t.Fatal("no pod rendered")
			}
		})
	}
}

func TestResourcesOfEveryContainer(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			for _, o := range render(t, sc.args...) {
				spec := podSpec(o)
				if spec == nil {
					continue
				}
				for _, c := range containers(spec) {
					for _, res := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
						if get(c, "resources."+res) == nil {
							t.Errorf("%s/%s: resources.%s is not set", o.id(), c["name"], res)
						}
					}
				}
			}
		})
	}
}

func TestGoRuntimeFollowsContainerLimits(t *testing.T) {
	objs := render(t)
	for _, w := range []struct{ deploy, container string }{{apiName, "api"}, {ingesterName, "ingester"}} {
		e := env(container(t, find(t, objs, "Deployment", w.deploy), w.container))
		ref := mapAt(e["GOMAXPROCS"], "valueFrom.resourceFieldRef")
		if ref["resource"] != "limits.cpu" || ref["containerName"] != w.container {
			t.Errorf("%s: GOMAXPROCS = %v, want resourceFieldRef limits.cpu of %s", w.deploy, e["GOMAXPROCS"], w.container)
		}
		// 90% of the default 256Mi limit, in whole MiB.
		if got := e["GOMEMLIMIT"]["value"]; got != "230MiB" {
			t.Errorf("%s: GOMEMLIMIT = %v, want 230MiB (90%% of the 256Mi limit)", w.deploy, e["GOMEMLIMIT"])
		}
	}
	// The Jobs run the ingester image with the ingester's limits.
	if got := env(container(t, find(t, objs, "Job", migrateName), "ingester"))["GOMEMLIMIT"]["value"]; got != "230MiB" {
		t.Errorf("migration Job GOMEMLIMIT = %v, want 230MiB", got)
	}
	// An explicit GOMEMLIMIT wins.
	e := env(container(t, find(t, render(t, values(t, "production-values.yaml")...), "Deployment", apiName), "api"))
	if e["GOMEMLIMIT"]["value"] != "350MiB" {
		t.Errorf("api GOMEMLIMIT = %v, want the value 350MiB", e["GOMEMLIMIT"])
	}
	// The percentage of the limit in its usual forms, rounded down to MiB.
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"api.resources.limits.memory=1Gi"}, "921MiB"},
		{[]string{"api.resources.limits.memory=1.5Gi"}, "1382MiB"},
		{[]string{"api.resources.limits.memory=500M"}, "429MiB"},
		{[]string{"api.resources.limits.memory=512000k"}, "439MiB"},
		{[]string{"api.resources.limits.memory=268435456"}, "230MiB"},
		{[]string{"api.resources.limits.memory=1Gi", "api.goMemLimitPercent=75"}, "768MiB"},
		{[]string{"api.resources.limits.memory=1Mi"}, "943718"}, // under 1MiB: bytes
	} {
		var args []string
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		e := env(container(t, find(t, render(t, args...), "Deployment", apiName), "api"))
		if got := e["GOMEMLIMIT"]["value"]; got != tc.want {
			t.Errorf("%v: GOMEMLIMIT = %v, want %s", tc.set, e["GOMEMLIMIT"], tc.want)
		}
	}
	// A limit the chart cannot read fails with a pointer to goMemLimit.
	if _, err := tryRender("--set", "api.resources.limits.memory=1e9"); err == nil || !strings.Contains(err.Error(), "set goMemLimit explicitly") {
		t.Errorf("limits.memory=1e9: err = %v, want a failure naming goMemLimit", err)
	}
	for _, bad := range []string{"api.goMemLimitPercent=0", "api.goMemLimitPercent=101", "ingester.goMemLimitPercent=ninety"} {
		if _, err := tryRender("--set", bad); err == nil {
			t.Errorf("--set %s: rendered; want the schema to reject it", bad)
		}
	}
}

func TestProbes(t *testing.T) {
	objs := render(t)
	type probe struct{ kind, path, port string }
	check := func(c map[string]any, id string, want []probe) {
		for _, p := range want {
			got := mapAt(c, p.kind+".httpGet")
			if got == nil || got["path"] != p.path || got["port"] != p.port {
				t.Errorf("%s: %s = %v, want GET %s on port %s", id, p.kind, c[p.kind], p.path, p.port)
			}
		}
	}
	api := container(t, find(t, objs, "Deployment", apiName), "api")
	check(api, "api", []probe{
		{"startupProbe", "/healthz", "http"},
		{"livenessProbe", "/healthz", "http"},
		{"readinessProbe", "/readyz", "http"},
	})
	ing := container(t, find(t, objs, "Deployment", ingesterName), "ingester")
	check(ing, "ingester", []probe{
		{"livenessProbe", "/healthz", "metrics"},
		{"readinessProbe", "/readyz", "metrics"},
	})
	if ports := listAt(ing, "ports"); len(ports) != 1 || get(ports[0], "name") != "metrics" || get(ports[0], "containerPort") != 9090 {
		t.Errorf("ingester ports = %v, want metrics 9090", ports)
	}
	if e := env(ing); e["METRICS_ADDR"]["value"] != ":9090" || e["INGEST_SCHEDULE"]["value"] != "@every 5m" {
		t.Errorf("ingester METRICS_ADDR/INGEST_SCHEDULE = %v / %v", e["METRICS_ADDR"], e["INGEST_SCHEDULE"])
	}
}

var standardLabels = []string{
	"app.kubernetes.io/name",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
	"app.kubernetes.io/component",
	"app.kubernetes.io/part-of",
	"app.kubernetes.io/managed-by",
	"helm.sh/chart",
}

func TestLabelsOfEveryObject(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			for _, o := range render(t, sc.args...) {
				labels := stringMap(mapAt(o, "metadata.labels"))
				for _, l := range standardLabels {
					if labels[l] == "" {
						t.Errorf("%s: label %s is missing", o.id(), l)
					}
				}
				if labels["app.kubernetes.io/instance"] != release || labels["app.kubernetes.io/part-of"] != "rickmorty" ||
					labels["app.kubernetes.io/managed-by"] != "Helm" || labels["app.kubernetes.io/name"] != "rickmorty" {
					t.Errorf("%s: labels %v", o.id(), labels)
				}
				if pl := podLabels(o); podSpec(o) != nil && o.kind() != "Pod" {
					for _, l := range standardLabels {
						if pl[l] == "" {
							t.Errorf("%s: pod label %s is missing", o.id(), l)
						}
					}
				}
			}
		})
	}
	// The image tag is the version label.
	objs := render(t, values(t, "production-values.yaml")...)
	if v := stringMap(mapAt(find(t, objs, "Deployment", apiName), "metadata.labels"))["app.kubernetes.io/version"]; v != "1.4.2" {
		t.Errorf("version label = %q, want the image tag 1.4.2", v)
	}
}

// TestSelectorsMatchTheirPods checks that every selector picks exactly the
// pods it is meant for.
func TestSelectorsMatchTheirPods(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			objs := render(t, sc.args...)
			var workloads []obj
			for _, o := range objs {
				if podSpec(o) != nil {
					workloads = append(workloads, o)
				}
			}
			selected := func(sel map[string]any) []string {
				var out []string
				for _, w := range workloads {
					if matches(sel, podLabels(w)) {
						out = append(out, w.id())
					}
				}
				sort.Strings(out)
				return out
			}
			for _, o := range objs {
				switch o.kind() {
				case "Deployment", "StatefulSet":
					sel := mapAt(o, "spec.selector")
					if !matches(sel, podLabels(o)) {
						t.Errorf("%s: selector %v does not match its pod labels %v", o.id(), sel, podLabels(o))
					}
					if got := selected(sel); len(got) != 1 {
						t.Errorf("%s: selector matches %v, want only itself", o.id(), got)
					}
				case "Service":
					sel := map[string]any{"matchLabels": mapAt(o, "spec.selector")}
					got := selected(sel)
					var want []string
					for _, w := range workloads {
						if (w.kind() == "Deployment" || w.kind() == "StatefulSet") && w.name() == o.name() {
							want = append(want, w.id())
						}
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s: selects %v, want %v", o.id(), got, want)
					}
					// Every targetPort names a container port of those pods.
					for _, p := range listAt(o, "spec.ports") {
						tp := get(p, "targetPort")
						w := lookup(objs, strings.SplitN(want[0], "/", 2)[0], o.name())
						if !hasPort(w, tp) {
							t.Errorf("%s: targetPort %v is not a port of %s", o.id(), tp, w.id())
						}
					}
				case "PodDisruptionBudget":
					if got := selected(mapAt(o, "spec.selector")); !reflect.DeepEqual(got, []string{"Deployment/" + apiName}) {
						t.Errorf("%s: selects %v, want the api Deployment", o.id(), got)
					}
				case "HorizontalPodAutoscaler":
					if ref := mapAt(o, "spec.scaleTargetRef"); ref["kind"] != "Deployment" || ref["name"] != apiName {
						t.Errorf("%s: scaleTargetRef = %v", o.id(), ref)
					}
				case "ServiceMonitor":
					svc := find(t, objs, "Service", o.name())
					if !matches(mapAt(o, "spec.selector"), stringMap(mapAt(svc, "metadata.labels"))) {
						t.Errorf("%s: selector does not match Service %s", o.id(), svc.name())
					}
					for _, ep := range listAt(o, "spec.endpoints") {
						found := false
						for _, p := range listAt(svc, "spec.ports") {
							found = found || get(p, "name") == get(ep, "port")
						}
						if !found || get(ep, "path") != "/metrics" {
							t.Errorf("%s: endpoint %v is not a /metrics port of %s", o.id(), ep, svc.id())
						}
					}
				case "NetworkPolicy":
					got := selected(mapAt(o, "spec.podSelector"))
					for _, id := range got {
						w := lookup(objs, strings.SplitN(id, "/", 2)[0], strings.SplitN(id, "/", 2)[1])
						comp := podLabels(w)["app.kubernetes.io/component"]
						want := map[string][]string{
							apiName:              {"api"},
							ingesterName:         {"ingester", "migrate", "reingest"},
							"rickmorty-postgres": {"database"},
							// CloudNativePG mode: egress to the Cluster and the Pooler
							"rickmorty-db-clients":           {"api", "ingester", "migrate", "reingest"},
							"rickmorty-db-pooler-ro-clients": {"api"},
						}[o.name()]
						if !slices.Contains(want, comp) {
							t.Errorf("%s: selects %s (component %s)", o.id(), id, comp)
						}
					}
					if len(got) == 0 {
						t.Errorf("%s selects no pod", o.id())
					}
				}
			}
		})
	}
}

func hasPort(w obj, port any) bool {
	for _, c := range containers(podSpec(w)) {
		for _, p := range listAt(c, "ports") {
			if get(p, "name") == port || get(p, "containerPort") == port {
				return true
			}
		}
	}
	return false
}

func TestMigrationHookJob(t *testing.T) {
	t.Run("defaults: hook reading the operator's Secret", func(t *testing.T) {
		job := find(t, render(t), "Job", migrateName)
		a := annotations(job)
		if a["helm.sh/hook"] != "pre-install,pre-upgrade" {
			t.Errorf("helm.sh/hook = %q, want pre-install,pre-upgrade", a["helm.sh/hook"])
		}
		if !strings.Contains(a["helm.sh/hook-delete-policy"], "before-hook-creation") {
			t.Errorf("hook-delete-policy = %q, want before-hook-creation", a["helm.sh/hook-delete-policy"])
		}
		c := container(t, job, "ingester")
		if args := listAt(c, "args"); !reflect.DeepEqual(args, []any{"migrate"}) {
			t.Errorf("args = %v, want [migrate]", args)
		}
		if got := secretRef(env(c)["DATABASE_URL"]); got != dbSecret+"/ingester-database-url" {
			t.Errorf("DATABASE_URL from %s, want %s/ingester-database-url", got, dbSecret)
		}
		if str(job, "spec.template.spec.restartPolicy") != "Never" || get(job, "spec.backoffLimit") == nil {
			t.Errorf("restartPolicy/backoffLimit = %v/%v", get(job, "spec.template.spec.restartPolicy"), get(job, "spec.backoffLimit"))
		}
		if sa := str(job, "spec.template.spec.serviceAccountName"); sa != "" {
			t.Errorf("hook Job uses ServiceAccount %q, which does not exist before install", sa)
		}
		if got := podLabels(job)["app.kubernetes.io/component"]; got != "migrate" {
			t.Errorf("pod component = %q, want migrate", got)
		}
	})

	t.Run("URLs in values: a hook Secret made before the Job", func(t *testing.T) {
		objs := render(t, values(t, "minimal-values.yaml")...)
		job := find(t, objs, "Job", migrateName)
		sec := find(t, objs, "Secret", migrateName)
		if annotations(sec)["helm.sh/hook"] != "pre-install,pre-upgrade" {
			t.Errorf("migrate Secret is not a pre-install,pre-upgrade hook: %v", annotations(sec))
		}
		if w, jw := annotations(sec)["helm.sh/hook-weight"], annotations(job)["helm.sh/hook-weight"]; !(atoi(t, w) < atoi(t, jw)) {
			t.Errorf("Secret hook weight %s not below the Job's %s", w, jw)
		}
		if got := secretRef(env(container(t, job, "ingester"))["DATABASE_URL"]); got != migrateName+"/ingester-database-url" {
			t.Errorf("Job DATABASE_URL from %s, want the hook Secret", got)
		}
		if _, ok := mapAt(sec, "data")["ingester-database-url"]; !ok || len(mapAt(sec, "data")) != 1 {
			t.Errorf("hook Secret data keys = %v, want only ingester-database-url", mapAt(sec, "data"))
		}
		// The release's own Secret holds both URLs for the pods.
		if d := mapAt(find(t, objs, "Secret", dbSecret), "data"); d["api-database-url"] == nil || d["ingester-database-url"] == nil {
			t.Errorf("database Secret keys = %v", d)
		}
	})

	t.Run("dev Postgres: an ordinary Job per revision", func(t *testing.T) {
		objs := render(t, values(t, "full-values.yaml")...)
		job := find(t, objs, "Job", migrateName+"-r1")
		if a := annotations(job); a["helm.sh/hook"] != "" {
			t.Errorf("dev Postgres migrate Job is a hook (%q): it would run before the database exists", a["helm.sh/hook"])
		}
		if lookup(objs, "Secret", migrateName) != nil {
			t.Error("dev Postgres renders a hook Secret")
		}
	})

	t.Run("disabled", func(t *testing.T) {
		if jobs := ofKind(render(t, values(t, "alternatives-values.yaml")...), "Job"); len(jobs) != 0 {
			t.Errorf("migrations.enabled=false renders %v", jobs[0].id())
		}
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if err := yaml.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%q is not an integer", s)
	}
	return n
}

func TestReingestJobTemplate(t *testing.T) {
	show := []string{"--show-only", "templates/reingest-job.yaml", "--set", "ingester.reingest.enabled=true"}
	if _, err := helmTemplate("--show-only", "templates/reingest-job.yaml"); err == nil {
		t.Error("the re-ingest Job renders without ingester.reingest.enabled; it must never be part of a release")
	}
	for _, force := range []bool{false, true} {
		args := append([]string{}, show...)
		want := []any{"once"}
		if force {
			args = append(args, "--set", "ingester.reingest.force=true")
			want = append(want, "--force")
		}
		objs := render(t, args...)
		if len(objs) != 1 || objs[0].kind() != "Job" {
			t.Fatalf("rendered %d objects, want one Job", len(objs))
		}
		job := objs[0]
		if job.name() != "" || str(job, "metadata.generateName") != "rickmorty-reingest-" {
			t.Errorf("name %q generateName %q: want only generateName (a unique name per run)", job.name(), str(job, "metadata.generateName"))
		}
		if str(job, "metadata.namespace") != namespace {
			t.Errorf("namespace = %q, want %q (kubectl create targets it)", str(job, "metadata.namespace"), namespace)
		}
		if ttl := get(job, "spec.ttlSecondsAfterFinished"); ttl != 86400 {
			t.Errorf("ttlSecondsAfterFinished = %v, want 86400", ttl)
		}
		if len(annotations(job)) != 0 && annotations(job)["helm.sh/hook"] != "" {
			t.Errorf("re-ingest Job is a hook: %v", annotations(job))
		}
		c := container(t, job, "ingester")
		if args := listAt(c, "args"); !reflect.DeepEqual(args, want) {
			t.Errorf("args = %v, want %v", args, want)
		}
		if got := secretRef(env(c)["DATABASE_URL"]); got != dbSecret+"/ingester-database-url" {
			t.Errorf("DATABASE_URL from %s", got)
		}
		// Created by kubectl, never part of the release: the Job and its
		// pods say so alike.
		if got, pod := stringMap(mapAt(job, "metadata.labels"))["app.kubernetes.io/managed-by"], podLabels(job)["app.kubernetes.io/managed-by"]; got != "kubectl" || pod != "kubectl" {
			t.Errorf("managed-by: Job %q, pod template %q; want kubectl on both", got, pod)
		}
		for _, l := range standardLabels {
			if podLabels(job)[l] == "" {
				t.Errorf("re-ingest pod label %s is missing", l)
			}
		}
		if sa := str(job, "spec.template.spec.serviceAccountName"); sa != ingesterName {
			t.Errorf("serviceAccountName = %q, want %s", sa, ingesterName)
		}
		codes := listAt(get(job, "spec.podFailurePolicy.rules").([]any)[0], "onExitCodes.values")
		if !slices.Contains(codes, any(3)) || !slices.Contains(codes, any(4)) {
			t.Errorf("podFailurePolicy FailJob exit codes = %v, want 3 (lock held) and 4 (guard refused) among them", codes)
		}
	}
}

func TestDatabaseSecrets(t *testing.T) {
	urls := func(t *testing.T, objs []obj, base string) (api, ing, mig string) {
		t.Helper()
		api = secretRef(env(container(t, find(t, objs, "Deployment", base+"-api"), "api"))["DATABASE_URL"])
		ing = secretRef(env(container(t, find(t, objs, "Deployment", base+"-ingester"), "ingester"))["DATABASE_URL"])
		if j := lookup(objs, "Job", base+"-migrate"); j != nil {
			mig = secretRef(env(container(t, j, "ingester"))["DATABASE_URL"])
		}
		return
	}
	t.Run("existingSecret with custom keys", func(t *testing.T) {
		objs := render(t, values(t, "production-values.yaml")...)
		api, ing, mig := urls(t, objs, "rickmorty")
		if api != "rickmorty-db/api-readonly-url" || ing != "rickmorty-db/ingester-url" || mig != "rickmorty-db/ingester-url" {
			t.Errorf("api %s, ingester %s, migrate %s; want rickmorty-db with the configured keys", api, ing, mig)
		}
		if s := ofKind(objs, "Secret"); len(s) != 0 {
			t.Errorf("existingSecret still renders Secret %s", s[0].name())
		}
	})
	t.Run("separate Secrets per role", func(t *testing.T) {
		objs := render(t, values(t, "alternatives-values.yaml")...)
		api, ing, _ := urls(t, objs, "rm")
		if api != "rickmorty-api-db/url" || ing != "rickmorty-ingester-db/url" {
			t.Errorf("api %s, ingester %s", api, ing)
		}
	})
	t.Run("URLs in values", func(t *testing.T) {
		objs := render(t, values(t, "minimal-values.yaml")...)
		api, ing, _ := urls(t, objs, "rickmorty")
		if api != dbSecret+"/api-database-url" || ing != dbSecret+"/ingester-database-url" {
			t.Errorf("api %s, ingester %s", api, ing)
		}
	})
	t.Run("one URL alone is refused", func(t *testing.T) {
		_, err := tryRender("--set", "global.database.api.url=postgres://ro@db/rickmorty")
		if err == nil || !strings.Contains(err.Error(), "global.database.ingester.url") {
			t.Errorf("err = %v, want a message naming global.database.ingester.url", err)
		}
	})
	t.Run("dev Postgres: read-only role for the API", func(t *testing.T) {
		objs := render(t, values(t, "full-values.yaml")...)
		sec := find(t, objs, "Secret", dbSecret)
		for _, k := range []string{"api-database-url", "ingester-database-url", "postgres-password", "postgres-readonly-password"} {
			if mapAt(sec, "data")[k] == nil {
				t.Errorf("database Secret lacks %s", k)
			}
		}
		sts := find(t, objs, "StatefulSet", "rickmorty-postgres")
		e := env(container(t, sts, "postgres"))
		if secretRef(e["POSTGRES_PASSWORD"]) != dbSecret+"/postgres-password" || secretRef(e["READONLY_PASSWORD"]) != dbSecret+"/postgres-readonly-password" {
			t.Errorf("postgres passwords from %s and %s", secretRef(e["POSTGRES_PASSWORD"]), secretRef(e["READONLY_PASSWORD"]))
		}
		initdb := find(t, objs, "ConfigMap", "rickmorty-postgres-initdb")
		script, _ := mapAt(initdb, "data")["10-readonly-role.sh"].(string)
		for _, grant := range []string{
			`GRANT CONNECT ON DATABASE`,
			`GRANT USAGE ON SCHEMA public`,
			`GRANT SELECT ON ALL TABLES IN SCHEMA public`,
			`ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES`,
		} {
			if !strings.Contains(script, grant) {
				t.Errorf("init script lacks %q", grant)
			}
		}
	})
}

func TestNetworkPolicies(t *testing.T) {
	ports := func(rules []any) (out []string) {
		for _, r := range rules {
			for _, p := range listAt(r, "ports") {
				out = append(out, str(p, "protocol")+"/"+toString(get(p, "port")))
			}
		}
		sort.Strings(out)
		return
	}
	objs := render(t)
	api := find(t, objs, "NetworkPolicy", apiName)
	if got := ports(listAt(api, "spec.egress")); !reflect.DeepEqual(got, []string{"TCP/53", "TCP/5432", "UDP/53"}) {
		t.Errorf("api egress ports = %v, want DNS and Postgres only", got)
	}
	if types := listAt(api, "spec.policyTypes"); !reflect.DeepEqual(types, []any{"Ingress", "Egress"}) {
		t.Errorf("api policyTypes = %v", types)
	}
	ing := find(t, objs, "NetworkPolicy", ingesterName)
	if got := ports(listAt(ing, "spec.egress")); !reflect.DeepEqual(got, []string{"TCP/443", "TCP/53", "TCP/5432", "UDP/53"}) {
		t.Errorf("ingester egress ports = %v, want DNS, Postgres and HTTPS", got)
	}
	for _, r := range listAt(api, "spec.ingress") {
		if listAt(r, "from") == nil {
			t.Errorf("api ingress rule %v has no from: it would admit anyone", r)
		}
	}
	// Without the Ingress: Prometheus and the test pod; with it, also the
	// ingress controller.
	if n := len(listAt(api, "spec.ingress")); n != 2 {
		t.Errorf("api ingress rules without Ingress = %d, want 2 (Prometheus, helm test)", n)
	}
	withIngress := find(t, render(t, values(t, "production-values.yaml")...), "NetworkPolicy", apiName)
	found := false
	for _, r := range listAt(withIngress, "spec.ingress") {
		for _, f := range listAt(r, "from") {
			found = found || stringMap(mapAt(f, "namespaceSelector.matchLabels"))["kubernetes.io/metadata.name"] == "ingress-nginx"
		}
	}
	if !found {
		t.Error("api NetworkPolicy with Ingress does not admit the ingress-nginx namespace")
	}
	// The helm test pod is admitted.
	test := podLabels(find(t, objs, "Pod", "rickmorty-test-api"))
	admitted := false
	for _, r := range listAt(api, "spec.ingress") {
		for _, f := range listAt(r, "from") {
			if sel := mapAt(f, "podSelector"); sel != nil && mapAt(f, "namespaceSelector") == nil && matches(sel, test) {
				admitted = true
			}
		}
	}
	if !admitted {
		t.Error("api NetworkPolicy does not admit the helm test pod")
	}
	// api.networkPolicy.allowedClients: one more rule, on the HTTP port only.
	frontend := map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "frontend"}}}
	labelled := map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"rickmorty-api-client": "true"}}}
	withClients := find(t, render(t, "--set-json", `api.networkPolicy.allowedClients=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"frontend"}}},{"podSelector":{"matchLabels":{"rickmorty-api-client":"true"}}}]`), "NetworkPolicy", apiName)
	rules := listAt(withClients, "spec.ingress")
	if len(rules) != 3 {
		t.Errorf("api ingress rules with allowedClients = %d, want 3", len(rules))
	}
	var clientRule any
	for _, r := range rules {
		if reflect.DeepEqual(normalize(listAt(r, "from")), normalize([]any{frontend, labelled})) {
			clientRule = r
		}
	}
	if clientRule == nil {
		t.Errorf("no api ingress rule from exactly the allowedClients peers: %v", rules)
	} else if got := ports([]any{clientRule}); !reflect.DeepEqual(got, []string{"TCP/8080"}) {
		t.Errorf("allowedClients rule ports = %v, want TCP/8080 only", got)
	}
	if _, err := tryRender("--set", "api.networkPolicy.allowedClients=frontend"); err == nil {
		t.Error("api.networkPolicy.allowedClients=frontend (not a list of peers) rendered; want the schema to reject it")
	}
	// The upstream port follows UPSTREAM_URL; tracing opens the collector.
	alt := render(t, "--set", "global.networkPolicy.enabled=true", "-f", values(t, "alternatives-values.yaml")[1])
	altEgress := listAt(find(t, alt, "NetworkPolicy", "rm-ingester"), "spec.egress")
	if got := ports(altEgress); !slices.Contains(got, "TCP/8081") || slices.Contains(got, "TCP/443") {
		t.Errorf("ingester egress with an http://...:8081 upstream = %v", got)
	}
	for _, r := range altEgress {
		if ports([]any{r})[0] == "TCP/8081" {
			to := listAt(r, "to")
			if len(to) != 1 || stringMap(mapAt(to[0], "namespaceSelector.matchLabels"))["kubernetes.io/metadata.name"] != "rickmorty-e2e" {
				t.Errorf("upstream egress peers = %v, want ingester.networkPolicy.upstreamPeers", to)
			}
		}
	}
	full := render(t, values(t, "full-values.yaml")...)
	if got := ports(listAt(find(t, full, "NetworkPolicy", apiName), "spec.egress")); !slices.Contains(got, "TCP/4317") {
		t.Errorf("api egress with OTel on = %v, want the collector port", got)
	}
	if len(ofKind(render(t, values(t, "alternatives-values.yaml")...), "NetworkPolicy")) != 0 {
		t.Error("global.networkPolicy.enabled=false still renders NetworkPolicies")
	}
}

func toString(v any) string {
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}

func TestIngressAndTrustedProxies(t *testing.T) {
	objs := render(t, values(t, "production-values.yaml")...)
	ing := find(t, objs, "Ingress", apiName)
	if str(ing, "spec.ingressClassName") != "nginx" {
		t.Errorf("ingressClassName = %q", str(ing, "spec.ingressClassName"))
	}
	if host := str(listAt(ing, "spec.rules")[0], "host"); host != "api.rickmorty.example.com" {
		t.Errorf("host = %q", host)
	}
	tls := listAt(ing, "spec.tls")
	if len(tls) != 1 || str(tls[0], "secretName") != "rickmorty-api-tls" || listAt(tls[0], "hosts")[0] != "api.rickmorty.example.com" {
		t.Errorf("tls = %v", tls)
	}
	a := annotations(ing)
	for k, v := range map[string]string{
		"nginx.ingress.kubernetes.io/limit-rps":              "10",
		"nginx.ingress.kubernetes.io/limit-burst-multiplier": "3",
		"nginx.ingress.kubernetes.io/limit-connections":      "10",
		"cert-manager.io/cluster-issuer":                     "letsencrypt",
	} {
		if a[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, a[k], v)
		}
	}
	e := env(container(t, find(t, objs, "Deployment", apiName), "api"))
	if got := e["TRUSTED_PROXIES"]["value"]; got != "10.244.0.0/16" {
		t.Errorf("TRUSTED_PROXIES = %v, want the ingress controller's CIDR", got)
	}
	full := env(container(t, find(t, render(t, values(t, "full-values.yaml")...), "Deployment", apiName), "api"))
	if got := full["TRUSTED_PROXIES"]["value"]; got != "10.244.0.0/16,192.168.0.10" {
		t.Errorf("TRUSTED_PROXIES = %v, want api.trustedProxies", got)
	}
	if got := env(container(t, find(t, render(t), "Deployment", apiName), "api"))["TRUSTED_PROXIES"]["value"]; got != "" {
		t.Errorf("TRUSTED_PROXIES without ingress = %v, want empty", got)
	}
}

func TestAutoscalingAndDisruption(t *testing.T) {
	objs := render(t, values(t, "production-values.yaml")...)
	if r := get(find(t, objs, "Deployment", apiName), "spec.replicas"); r != nil {
		t.Errorf("replicas = %v with the HPA on; want unset", r)
	}
	hpa := find(t, objs, "HorizontalPodAutoscaler", apiName)
	if get(hpa, "spec.minReplicas") != 3 || get(hpa, "spec.maxReplicas") != 12 {
		t.Errorf("min/max = %v/%v", get(hpa, "spec.minReplicas"), get(hpa, "spec.maxReplicas"))
	}
	var metrics []string
	for _, m := range listAt(hpa, "spec.metrics") {
		metrics = append(metrics, str(m, "resource.name")+"="+toString(get(m, "resource.target.averageUtilization")))
	}
	if !reflect.DeepEqual(metrics, []string{"cpu=65", "memory=80"}) {
		t.Errorf("HPA metrics = %v, want cpu and memory targets", metrics)
	}
	if pdb := find(t, objs, "PodDisruptionBudget", apiName); get(pdb, "spec.minAvailable") != 2 || get(pdb, "spec.maxUnavailable") != nil {
		t.Errorf("PDB spec = %v", get(pdb, "spec"))
	}
	d := find(t, render(t), "Deployment", apiName)
	tsc := listAt(d, "spec.template.spec.topologySpreadConstraints")
	if len(tsc) != 2 || !matches(mapAt(tsc[0], "labelSelector"), podLabels(d)) {
		t.Errorf("topologySpreadConstraints = %v", tsc)
	}
}

func TestObservabilityComesFromOps(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	objs := render(t, values(t, "full-values.yaml")...)

	raw, err := os.ReadFile(filepath.Join(root, "ops", "alerts", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var src map[string]any
	if err := yaml.Unmarshal(raw, &src); err != nil {
		t.Fatal(err)
	}
	rule := find(t, objs, "PrometheusRule", "rickmorty-rules")
	if !reflect.DeepEqual(normalize(get(rule, "spec.groups")), normalize(src["groups"])) {
		t.Error("PrometheusRule groups differ from ops/alerts/rules.yaml: run scripts/chart/sync-ops.sh")
	}
	if stringMap(mapAt(rule, "metadata.labels"))["release"] != "prometheus" {
		t.Error("PrometheusRule lacks monitoring.prometheusRule.labels")
	}

	cm := find(t, objs, "ConfigMap", "rickmorty-dashboards")
	if stringMap(mapAt(cm, "metadata.labels"))["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels = %v, want grafana_dashboard: \"1\"", mapAt(cm, "metadata.labels"))
	}
	dashboards, _ := filepath.Glob(filepath.Join(root, "ops", "grafana", "*.json"))
	if len(dashboards) == 0 || len(mapAt(cm, "data")) != len(dashboards) {
		t.Errorf("ConfigMap has %d dashboards, ops/grafana has %d", len(mapAt(cm, "data")), len(dashboards))
	}
	for _, d := range dashboards {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := mapAt(cm, "data")[filepath.Base(d)].(string); got != strings.TrimSpace(string(b)) {
			t.Errorf("dashboard %s differs from ops/grafana/: run scripts/chart/sync-ops.sh", filepath.Base(d))
		}
	}
	for _, name := range []string{apiName, ingesterName} {
		find(t, objs, "ServiceMonitor", name)
	}
}

// normalize turns YAML-decoded values into comparable ones (integers as
// int, nested maps as map[string]any).
func normalize(v any) any {
	b, _ := yaml.Marshal(v)
	var out any
	_ = yaml.Unmarshal(b, &out)
	return out
}

func TestHelmTestPod(t *testing.T) {
	pod := find(t, render(t), "Pod", "rickmorty-test-api")
	if annotations(pod)["helm.sh/hook"] != "test" {
		t.Errorf("hook = %q, want test", annotations(pod)["helm.sh/hook"])
	}
	var urls []string
	for _, c := range containers(podSpec(pod)) {
		args := listAt(c, "args")
		urls = append(urls, args[len(args)-1].(string))
	}
	want := []string{"http://rickmorty-api:80/healthz", "http://rickmorty-api:80/characters?page=1"}
	if !reflect.DeepEqual(urls, want) {
		t.Errorf("test pod GETs %v, want %v", urls, want)
	}
	// Its version label is that of the API it tests (the image tag), like
	// the api's own pods, not the chart's appVersion.
	for _, args := range [][]string{values(t, "production-values.yaml"), {"--set", "api.image.tag=9.9.9"}} {
		objs := render(t, args...)
		apiVersion := podLabels(find(t, objs, "Deployment", apiName))["app.kubernetes.io/version"]
		got := podLabels(find(t, objs, "Pod", "rickmorty-test-api"))["app.kubernetes.io/version"]
		if got != apiVersion || got == "0.1.0" {
			t.Errorf("%v: test pod version label %q, api pods %q; want the api's image tag on both", args, got, apiVersion)
		}
	}
}

// TestNotesSayWhoMayCallTheAPI renders NOTES.txt (helm install
// --dry-run=client) and checks that it names the admitted clients and how
// to add some, and says when nothing restricts them.
func TestNotesSayWhoMayCallTheAPI(t *testing.T) {
	notes := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := helmNotes(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	def := notes(t)
	for _, want := range []string{
		"http://rickmorty-api.rickmorty.svc:80/characters",
		"Prometheus (global.networkPolicy.prometheusPeers)",
		"the `helm test` pod of this release",
		"Every other pod is refused",
		"answers no in-cluster client yet",
		"api.networkPolicy.allowedClients",
	} {
		if !strings.Contains(def, want) {
			t.Errorf("default NOTES lack %q:\n%s", want, def)
		}
	}
	if strings.Contains(def, "ingress controller") {
		t.Error("default NOTES name the ingress controller, which is not admitted without the Ingress")
	}
	with := notes(t, "-f", values(t, "production-values.yaml")[1], "--set-json",
		`api.networkPolicy.allowedClients=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"frontend"}}}]`)
	for _, want := range []string{
		"the ingress controller (api.ingress.controller.peers)",
		`{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"frontend"}}} (api.networkPolicy.allowedClients)`,
	} {
		if !strings.Contains(with, want) {
			t.Errorf("NOTES with the Ingress and allowedClients lack %q:\n%s", want, with)
		}
	}
	if strings.Contains(with, "answers no in-cluster client yet") {
		t.Error("NOTES say no in-cluster client is admitted, yet allowedClients is set")
	}
	off := notes(t, "--set", "global.networkPolicy.enabled=false")
	if !strings.Contains(off, "any pod of the cluster") || strings.Contains(off, "Every other pod is refused") {
		t.Errorf("NOTES without NetworkPolicies:\n%s", off)
	}
}

func TestSchemaRejectsUnknownKeysAndWrongTypes(t *testing.T) {
	for _, set := range []string{
		"api.replicas=3",                  // unknown key (it is replicaCount)
		"global.database.password=x",      // unknown key under global
		"postgres.enable=true",            // unknown key in a disabled subchart's block
		"ingester.config.schedul=@hourly", // typo
		"api.replicaCount=three",          // wrong type
		"global.networkPolicy.enabled=maybe",
		"api.ingress.rateLimit.rps=0", // below the minimum
	} {
		if _, err := tryRender("--set", set); err == nil {
			t.Errorf("--set %s: rendered; want the schema to reject it", set)
		}
	}
}

func TestSchemaChecksTheSchedule(t *testing.T) {
	for _, ok := range []string{
		"@every 5m", "@every 1h30m", "@every 90s", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually",
		"*/10 * * * *", "0 9 * * 1-5", "0 0 1 JAN MON", "0,30 * * * *", "TZ=Europe/Berlin 0 9 * * *",
	} {
		objs, err := tryRender("--set-json", fmt.Sprintf("ingester.config.schedule=%q", ok))
		if err != nil {
			t.Errorf("schedule %q rejected: %v", ok, err)
			continue
		}
		if got := env(container(t, find(t, objs, "Deployment", ingesterName), "ingester"))["INGEST_SCHEDULE"]["value"]; got != ok {
			t.Errorf("INGEST_SCHEDULE = %v, want %q", got, ok)
		}
	}
	for _, bad := range []string{
		"", "bogus", "@every", "@every 5", "@every five minutes", "@often", "* * * *", "* * * * * *", "every 5m", "0 9 * * 1-5; rm -rf /",
	} {
		if _, err := tryRender("--set-json", fmt.Sprintf("ingester.config.schedule=%q", bad)); err == nil {
			t.Errorf("schedule %q accepted; want the schema to reject it", bad)
		}
	}
}

func TestNamesFollowTheRelease(t *testing.T) {
	out, err := helmTemplate("--set", "global.database.existingSecret=db")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if !strings.HasPrefix(o.name(), "rickmorty-") {
			t.Errorf("%s is not prefixed with the base name", o.id())
		}
	}
}
