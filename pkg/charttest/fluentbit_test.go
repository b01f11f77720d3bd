package charttest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sidecarOf returns the native Fluent Bit sidecar of a Deployment, failing
// the test when there is none.
func sidecarOf(t *testing.T, d obj) map[string]any {
	t.Helper()
	for _, c := range listAt(d, "spec.template.spec.initContainers") {
		if get(c, "name") == "fluent-bit" && get(c, "restartPolicy") == "Always" {
			return c.(map[string]any)
		}
	}
	t.Fatalf("%s: no native Fluent Bit sidecar (initContainer with restartPolicy Always)", d.id())
	return nil
}

func volumesOf(d obj) map[string]any {
	vols := map[string]any{}
	for _, v := range listAt(d, "spec.template.spec.volumes") {
		vols[str(v, "name")] = v
	}
	return vols
}

func mountsOf(c map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, m := range listAt(c, "volumeMounts") {
		out[str(m, "name")] = m.(map[string]any)
	}
	return out
}

// TestFluentBitSidecarFileMode: the default mode. The application writes a
// bounded log file on a shared emptyDir and the sidecar tails it as the
// pod's non-root user, without any host access.
func TestFluentBitSidecarFileMode(t *testing.T) {
	objs := render(t, values(t, "full-values.yaml")...)
	for _, w := range []struct{ deploy, container, file string }{
		{apiName, "api", "/var/log/rickmorty/api.log"},
		{ingesterName, "ingester", "/var/log/rickmorty/ingester.log"},
	} {
		d := find(t, objs, "Deployment", w.deploy)
		sidecar, app := sidecarOf(t, d), container(t, d, w.container)
		if got := str(env(sidecar)["LOG_PATH"], "value"); got != w.file {
			t.Errorf("%s: sidecar LOG_PATH = %q, want %s", w.deploy, got, w.file)
		}
		e := env(app)
		if got := str(e["LOG_FILE"], "value"); got != w.file {
			t.Errorf("%s: LOG_FILE = %q, want the file the sidecar tails (%s)", w.deploy, got, w.file)
		}
		if got := str(e["LOG_FILE_MAX_BYTES"], "value"); got != "4194304" {
			t.Errorf("%s: LOG_FILE_MAX_BYTES = %q, want global.fluentBit.file.maxBytes 4194304", w.deploy, got)
		}
		vols := volumesOf(d)
		if str(vols["logs"], "emptyDir.sizeLimit") != "16Mi" || str(vols["fluent-bit-state"], "emptyDir.sizeLimit") == "" {
			t.Errorf("%s: log volumes %v / %v, want bounded emptyDirs", w.deploy, vols["logs"], vols["fluent-bit-state"])
		}
		if _, hostPath := vols["pod-logs"]; hostPath {
			t.Errorf("%s: file mode still mounts the node's /var/log/pods", w.deploy)
		}
		appMount, sideMount := mountsOf(app)["logs"], mountsOf(sidecar)["logs"]
		if str(appMount, "mountPath") != "/var/log/rickmorty" || isBool(appMount["readOnly"], true) {
			t.Errorf("%s: application mounts the log volume as %v, want it writable at /var/log/rickmorty", w.deploy, appMount)
		}
		if str(sideMount, "mountPath") != "/var/log/rickmorty" || !isBool(sideMount["readOnly"], true) {
			t.Errorf("%s: sidecar mounts the log volume as %v, want it read-only at /var/log/rickmorty", w.deploy, sideMount)
		}
		sc := mapAt(sidecar, "securityContext")
		if !isBool(sc["runAsNonRoot"], true) || get(sc, "runAsUser") != 65532 || !isBool(sc["readOnlyRootFilesystem"], true) ||
			!isBool(sc["allowPrivilegeEscalation"], false) || str(sc, "seccompProfile.type") != "RuntimeDefault" ||
			!reflect.DeepEqual(listAt(sc, "capabilities.drop"), []any{"ALL"}) {
			t.Errorf("%s: sidecar securityContext = %v, want non-root 65532, read-only root, no escalation, drop ALL, RuntimeDefault", w.deploy, sc)
		}
	}
	cm := find(t, objs, "ConfigMap", "rickmorty-fluent-bit")
	conf, _ := mapAt(cm, "data")["fluent-bit.conf"].(string)
	for _, want := range []string{"Path              ${LOG_PATH}", "Parser            rickmorty_json", "DB                /fluent-bit/state/tail.db"} {
		if !strings.Contains(conf, want) {
			t.Errorf("file-mode fluent-bit.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "cri") {
		t.Errorf("file-mode fluent-bit.conf parses CRI lines; the file holds plain JSON records:\n%s", conf)
	}
	if parsers, _ := mapAt(cm, "data")["parsers.conf"].(string); !strings.Contains(parsers, "Name         rickmorty_json") {
		t.Errorf("parsers.conf lacks rickmorty_json:\n%s", parsers)
	}

	// Without the sidecar nothing of it is rendered: no file, no volume.
	for _, name := range []string{apiName, ingesterName} {
		d := find(t, render(t), "Deployment", name)
		if _, ok := volumesOf(d)["logs"]; ok || env(container(t, d, strings.TrimPrefix(name, "rickmorty-")))["LOG_FILE"] != nil {
			t.Errorf("%s: LOG_FILE or the log volume without global.fluentBit.enabled", name)
		}
	}
	// The Jobs have no sidecar, hence no log file.
	for _, j := range ofKind(objs, "Job") {
		if env(container(t, j, "ingester"))["LOG_FILE"] != nil {
			t.Errorf("%s sets LOG_FILE but has no sidecar to read it", j.id())
		}
	}

	// The operator's own ConfigMap replaces the chart's.
	alt := render(t, values(t, "alternatives-values.yaml")...)
	if lookup(alt, "ConfigMap", "rm-fluent-bit") != nil {
		t.Error("configMapName set, yet the chart renders its own Fluent Bit ConfigMap")
	}
	if got := str(volumesOf(find(t, alt, "Deployment", "rm-api"))["fluent-bit-config"], "configMap.name"); got != "my-fluent-bit" {
		t.Errorf("fluent-bit-config volume from ConfigMap %q, want my-fluent-bit", got)
	}

	// Bad values fail the render with the reason.
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"--set", "global.fluentBit.enabled=true", "--set", "global.fluentBit.source=volume"}, `use "file"`},
		{[]string{"--set", "global.fluentBit.source=volume"}, `use "file"`},
		{[]string{"--set", "global.fluentBit.enabled=true", "--set", "global.fluentBit.file.sizeLimit=20Mi"}, "below 3 x global.fluentBit.file.maxBytes"},
	} {
		if _, err := tryRender(tc.set...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want a failure saying %q", tc.set, err, tc.want)
		}
	}
	for _, bad := range []string{"global.fluentBit.file.maxBytes=1000", "global.fluentBit.file.maxBytez=1"} {
		if _, err := tryRender("--set", bad); err == nil {
			t.Errorf("--set %s: rendered; want the schema to reject it", bad)
		}
	}
}

// TestFluentBitSidecarPodsModeIsMarkedPrivileged: the hostPath mode still
// works where the namespace allows it, and says loudly that it needs that.
func TestFluentBitSidecarPodsModeIsMarkedPrivileged(t *testing.T) {
	args := values(t, "privileged-fluentbit-pods-values.yaml")
	objs := render(t, args...)
	for _, w := range []struct{ deploy, container string }{{apiName, "api"}, {ingesterName, "ingester"}} {
		d := find(t, objs, "Deployment", w.deploy)
		sidecar := sidecarOf(t, d)
		if !strings.HasPrefix(str(env(sidecar)["LOG_PATH"], "value"), "/var/log/pods/") {
			t.Errorf("%s: LOG_PATH = %v", w.deploy, env(sidecar)["LOG_PATH"])
		}
		if str(volumesOf(d)["pod-logs"], "hostPath.path") != "/var/log/pods" {
			t.Errorf("%s: no hostPath of /var/log/pods: %v", w.deploy, volumesOf(d))
		}
		if env(container(t, d, w.container))["LOG_FILE"] != nil {
			t.Errorf("%s: LOG_FILE set in pods mode, where nothing reads the file", w.deploy)
		}
	}
	notes, err := helmNotes(args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PRIVILEGED NAMESPACE REQUIRED", "pod-security.kubernetes.io/enforce=privileged"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES for source=pods lack %q:\n%s", want, notes)
		}
	}
	if def, err := helmNotes("--set", "global.fluentBit.enabled=true"); err != nil || strings.Contains(def, "PRIVILEGED") {
		t.Errorf("NOTES for the file mode warn about a privileged namespace (%v):\n%s", err, def)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "charts", "rickmorty", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "pods: REQUIRES A PRIVILEGED NAMESPACE") {
		t.Error("values.yaml does not mark the pods mode as requiring a privileged namespace")
	}
}
