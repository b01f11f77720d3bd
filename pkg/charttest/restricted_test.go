package charttest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The Pod Security Standards' "restricted" profile, as the Pod Security
// admission controller enforces it (policy version latest, Kubernetes
// 1.29+) on a namespace labelled pod-security.kubernetes.io/enforce=restricted.
// It includes every "baseline" rule. checkRestricted applies each rule to a
// pod template and names the ones it breaks.

// restrictedVolumeTypes are the only volume sources "restricted" admits.
var restrictedVolumeTypes = []string{
	"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}

// safeSysctls are the sysctls "baseline" (and so "restricted") admits.
var safeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

// seLinuxTypes are the SELinux types "baseline" admits (empty: unset).
var seLinuxTypes = []string{"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}

// appArmorAnnotation prefixes the per-container AppArmor annotation.
const appArmorAnnotation = "container.apparmor.security.beta.kubernetes.io/"

// checkRestricted returns the "restricted" rules that a pod (its spec and
// the annotations of its metadata) breaks, one message each.
func checkRestricted(spec map[string]any, podAnnotations map[string]string) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	psc := mapAt(spec, "securityContext")

	// baseline: host namespaces, HostProcess, hostPath, sysctls, SELinux,
	// AppArmor, seccomp not Unconfined.
	for _, f := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if isBool(get(spec, f), true) {
			bad("%s: true (host namespaces are forbidden)", f)
		}
	}
	if isBool(get(psc, "windowsOptions.hostProcess"), true) {
		bad("securityContext.windowsOptions.hostProcess: true")
	}
	for _, vol := range listAt(spec, "volumes") {
		m, _ := vol.(map[string]any)
		for k := range m {
			if k == "name" {
				continue
			}
			if !slices.Contains(restrictedVolumeTypes, k) {
				bad("volume %q is of type %s (allowed: %s)", str(m, "name"), k, strings.Join(restrictedVolumeTypes, ", "))
			}
		}
	}
	for _, s := range listAt(psc, "sysctls") {
		if name := str(s, "name"); !slices.Contains(safeSysctls, name) {
			bad("securityContext.sysctls: %s is not a safe sysctl", name)
		}
	}
	checkCommon := func(where string, sc map[string]any) {
		if t := str(sc, "seLinuxOptions.type"); !slices.Contains(seLinuxTypes, t) {
			bad("%s.seLinuxOptions.type: %q (custom SELinux types are forbidden)", where, t)
		}
		for _, f := range []string{"user", "role"} {
			if s := str(sc, "seLinuxOptions."+f); s != "" {
				bad("%s.seLinuxOptions.%s: %q (must be unset)", where, f, s)
			}
		}
		if t := str(sc, "appArmorProfile.type"); t != "" && t != "RuntimeDefault" && t != "Localhost" {
			bad("%s.appArmorProfile.type: %s (RuntimeDefault or Localhost only)", where, t)
		}
		if t := str(sc, "seccompProfile.type"); t != "" && t != "RuntimeDefault" && t != "Localhost" {
			bad("%s.seccompProfile.type: %s (RuntimeDefault or Localhost only)", where, t)
		}
		if u, ok := get(sc, "runAsUser").(int); ok && u == 0 {
			bad("%s.runAsUser: 0 (root is forbidden)", where)
		}
	}
	checkCommon("securityContext", psc)
	for k, a := range podAnnotations {
		if strings.HasPrefix(k, appArmorAnnotation) && a != "runtime/default" && !strings.HasPrefix(a, "localhost/") {
			bad("annotation %s: %s (AppArmor must not be unconfined)", k, a)
		}
	}

	podNonRoot := isBool(get(psc, "runAsNonRoot"), true)
	podSeccomp := slices.Contains([]string{"RuntimeDefault", "Localhost"}, str(psc, "seccompProfile.type"))
	for _, key := range []string{"initContainers", "containers", "ephemeralContainers"} {
		for _, c := range listAt(spec, key) {
			cm, _ := c.(map[string]any)
			sc := mapAt(cm, "securityContext")
			where := fmt.Sprintf("%s[%s].securityContext", key, str(cm, "name"))
			checkCommon(where, sc)
			if isBool(get(sc, "privileged"), true) {
				bad("%s.privileged: true", where)
			}
			if isBool(get(sc, "windowsOptions.hostProcess"), true) {
				bad("%s.windowsOptions.hostProcess: true", where)
			}
			if pm := str(sc, "procMount"); pm != "" && pm != "Default" {
				bad("%s.procMount: %s (Default only)", where, pm)
			}
			for _, p := range listAt(cm, "ports") {
				if hp, ok := get(p, "hostPort").(int); ok && hp != 0 {
					bad("%s[%s].ports: hostPort %d (host ports are forbidden)", key, str(cm, "name"), hp)
				}
			}
			if !isBool(get(sc, "allowPrivilegeEscalation"), false) {
				bad("%s.allowPrivilegeEscalation: %v (must be false)", where, get(sc, "allowPrivilegeEscalation"))
			}
			switch nonRoot := get(sc, "runAsNonRoot"); {
			case isBool(nonRoot, true):
			case nonRoot == nil && podNonRoot:
			default:
				bad("%s.runAsNonRoot: %v with pod runAsNonRoot %v (one of them must say true, neither false)", where, nonRoot, get(psc, "runAsNonRoot"))
			}
			if t := str(sc, "seccompProfile.type"); t == "" && !podSeccomp {
				bad("%s.seccompProfile: unset, and the pod sets none (RuntimeDefault or Localhost required)", where)
			}
			if drop := listAt(sc, "capabilities.drop"); !slices.Contains(drop, any("ALL")) {
				bad("%s.capabilities.drop: %v (must include ALL)", where, drop)
			}
			for _, a := range listAt(sc, "capabilities.add") {
				if a != "NET_BIND_SERVICE" {
					bad("%s.capabilities.add: %v (NET_BIND_SERVICE only)", where, a)
				}
			}
		}
	}
	sort.Strings(v)
	return v
}

// restrictedExempt are kinds whose pod template is not a pod of the chart's
// own: an operator builds the pods and merges the template in.
var restrictedExempt = map[string]string{
	"Pooler": "CloudNativePG builds the PgBouncer pods (with its own security context) and merges spec.template into them",
}

// podTemplate returns the pod spec and pod annotations of every kind that
// carries a pod template; ok is false for an object that has containers
// somewhere but is of a kind this test does not know.
func podTemplate(o obj) (spec map[string]any, annotations map[string]string, ok bool) {
	switch o.kind() {
	case "Pod":
		return mapAt(o, "spec"), stringMap(mapAt(o, "metadata.annotations")), true
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job":
		return mapAt(o, "spec.template.spec"), stringMap(mapAt(o, "spec.template.metadata.annotations")), true
	case "CronJob":
		return mapAt(o, "spec.jobTemplate.spec.template.spec"), stringMap(mapAt(o, "spec.jobTemplate.spec.template.metadata.annotations")), true
	}
	return nil, nil, !hasContainers(o)
}

// hasContainers reports whether a "containers" list appears anywhere in v.
func hasContainers(v any) bool {
	switch x := v.(type) {
	case obj:
		return hasContainers(map[string]any(x))
	case map[string]any:
		for k, val := range x {
			if _, isList := val.([]any); k == "containers" && isList {
				return true
			}
			if hasContainers(val) {
				return true
			}
		}
	case []any:
		for _, val := range x {
			if hasContainers(val) {
				return true
			}
		}
	}
	return false
}

// privilegedValuesFile reports whether a ci/ values file deliberately needs
// a namespace that admits privileged pods: its name says so.
func privilegedValuesFile(name string) bool { return strings.HasPrefix(name, "privileged-") }

// restrictedScenarios are the default values, every file of ci/ and the
// manual re-ingest Job as scripts/chart/test.sh renders it.
func restrictedScenarios(t *testing.T) []scenario {
	t.Helper()
	return append(scenarios(t), scenario{name: "reingest-job", args: []string{
		"--set", "ingester.reingest.enabled=true", "--set", "ingester.reingest.force=true",
		"--show-only", "templates/reingest-job.yaml",
	}})
}

// TestEveryPodMeetsTheRestrictedPodSecurityStandard renders every values
// file and checks every pod template against the "restricted" profile, so
// the chart installs into a namespace that enforces it. The files named
// privileged-*.yaml turn on what needs a privileged namespace (the Fluent
// Bit sidecar reading the node's /var/log/pods): the same rules must reject
// them, for the reasons their name gives.
func TestEveryPodMeetsTheRestrictedPodSecurityStandard(t *testing.T) {
	privileged := 0
	for _, sc := range restrictedScenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			pods, rejected := 0, map[string][]string{}
			for _, o := range render(t, sc.args...) {
				spec, annotations, ok := podTemplate(o)
				if !ok {
					if why, exempt := restrictedExempt[o.kind()]; exempt {
						t.Logf("%s not checked: %s", o.id(), why)
						continue
					}
					t.Errorf("%s has containers but is no kind this test knows: teach podTemplate its pod template", o.id())
					continue
				}
				if spec == nil {
					continue
				}
				pods++
				if v := checkRestricted(spec, annotations); len(v) > 0 {
					rejected[o.id()] = v
				}
			}
			if pods == 0 {
				t.Fatal("no pod template rendered")
			}
			if !privilegedValuesFile(sc.name) {
				for id, v := range rejected {
					t.Errorf("%s breaks the restricted Pod Security Standard:\n  %s", id, strings.Join(v, "\n  "))
				}
				return
			}
			privileged++
			if len(rejected) == 0 {
				t.Fatalf("%s is named privileged-*, yet every pod meets the restricted profile: rename it, or the checks miss what it turns on", sc.name)
			}
			for _, id := range []string{"Deployment/" + apiName, "Deployment/" + ingesterName} {
				joined := strings.Join(rejected[id], "\n")
				if !strings.Contains(joined, "of type hostPath") || !strings.Contains(joined, "runAsUser: 0") {
					t.Errorf("%s: rejected for %q; want its hostPath volume and its root container named", id, rejected[id])
				}
			}
		})
	}
	if privileged == 0 {
		t.Error("no ci/privileged-*.yaml: the hostPath mode of the Fluent Bit sidecar must be rendered (and rejected) by this test")
	}
}

// TestRestrictedChecksBite gives checkRestricted a pod that meets the
// profile, then that pod with one rule broken at a time: each must be
// named, so a rule that stopped biting fails here.
func TestRestrictedChecksBite(t *testing.T) {
	good := func() map[string]any {
		return normalize(map[string]any{
			"securityContext": map[string]any{
				"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": map[string]any{"type": "RuntimeDefault"},
				"sysctls": []any{map[string]any{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}},
			},
			"volumes": []any{
				map[string]any{"name": "tmp", "emptyDir": map[string]any{}},
				map[string]any{"name": "cfg", "configMap": map[string]any{"name": "x"}},
			},
			"containers": []any{map[string]any{
				"name":  "app",
				"ports": []any{map[string]any{"containerPort": 8080}},
				"securityContext": map[string]any{
					"allowPrivilegeEscalation": false,
					"capabilities":             map[string]any{"drop": []any{"ALL"}, "add": []any{"NET_BIND_SERVICE"}},
				},
			}},
		}).(map[string]any)
	}
	if v := checkRestricted(good(), nil); len(v) > 0 {
		t.Fatalf("a compliant pod is rejected: %v", v)
	}
	set := func(m map[string]any, path string, val any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = val
	}
	ctr := func(s map[string]any) map[string]any { return listAt(s, "containers")[0].(map[string]any) }
	for _, tc := range []struct {
		name   string
		mutate func(s map[string]any)
		annot  map[string]string
		want   string
	}{
		{"hostNetwork", func(s map[string]any) { s["hostNetwork"] = true }, nil, "hostNetwork"},
		{"hostPID", func(s map[string]any) { s["hostPID"] = true }, nil, "hostPID"},
		{"hostIPC", func(s map[string]any) { s["hostIPC"] = true }, nil, "hostIPC"},
		{"hostProcess", func(s map[string]any) { set(ctr(s), "securityContext.windowsOptions.hostProcess", true) }, nil, "hostProcess"},
		{"hostPath", func(s map[string]any) {
			s["volumes"] = append(listAt(s, "volumes"), map[string]any{"name": "logs", "hostPath": map[string]any{"path": "/var/log"}})
		}, nil, "of type hostPath"},
		{"nfs volume", func(s map[string]any) {
			s["volumes"] = append(listAt(s, "volumes"), map[string]any{"name": "n", "nfs": map[string]any{"server": "x", "path": "/"}})
		}, nil, "of type nfs"},
		{"hostPort", func(s map[string]any) { set(listAt(ctr(s), "ports")[0].(map[string]any), "hostPort", 8080) }, nil, "hostPort 8080"},
		{"privileged", func(s map[string]any) { set(ctr(s), "securityContext.privileged", true) }, nil, "privileged: true"},
		{"escalation unset", func(s map[string]any) { delete(mapAt(ctr(s), "securityContext"), "allowPrivilegeEscalation") }, nil, "allowPrivilegeEscalation"},
		{"escalation true", func(s map[string]any) { set(ctr(s), "securityContext.allowPrivilegeEscalation", true) }, nil, "allowPrivilegeEscalation"},
		{"runAsNonRoot nowhere", func(s map[string]any) { delete(mapAt(s, "securityContext"), "runAsNonRoot") }, nil, "runAsNonRoot"},
		{"container runAsNonRoot false", func(s map[string]any) { set(ctr(s), "securityContext.runAsNonRoot", false) }, nil, "runAsNonRoot"},
		{"pod runAsUser 0", func(s map[string]any) { set(s, "securityContext.runAsUser", 0) }, nil, "runAsUser: 0"},
		{"container runAsUser 0", func(s map[string]any) { set(ctr(s), "securityContext.runAsUser", 0) }, nil, "runAsUser: 0"},
		{"seccomp nowhere", func(s map[string]any) { delete(mapAt(s, "securityContext"), "seccompProfile") }, nil, "seccompProfile: unset"},
		{"seccomp unconfined", func(s map[string]any) { set(ctr(s), "securityContext.seccompProfile.type", "Unconfined") }, nil, "seccompProfile.type: Unconfined"},
		{"capabilities kept", func(s map[string]any) { delete(mapAt(ctr(s), "securityContext"), "capabilities") }, nil, "must include ALL"},
		{"capability added", func(s map[string]any) { set(ctr(s), "securityContext.capabilities.add", []any{"SYS_ADMIN"}) }, nil, "SYS_ADMIN"},
		{"procMount", func(s map[string]any) { set(ctr(s), "securityContext.procMount", "Unmasked") }, nil, "procMount"},
		{"unsafe sysctl", func(s map[string]any) {
			set(s, "securityContext.sysctls", []any{map[string]any{"name": "kernel.msgmax", "value": "1"}})
		}, nil, "kernel.msgmax"},
		{"AppArmor unconfined", func(s map[string]any) { set(ctr(s), "securityContext.appArmorProfile.type", "Unconfined") }, nil, "appArmorProfile"},
		{"AppArmor annotation", func(map[string]any) {}, map[string]string{appArmorAnnotation + "app": "unconfined"}, "AppArmor"},
		{"SELinux type", func(s map[string]any) { set(s, "securityContext.seLinuxOptions.type", "spc_t") }, nil, "spc_t"},
		{"SELinux user", func(s map[string]any) { set(ctr(s), "securityContext.seLinuxOptions.user", "system_u") }, nil, "seLinuxOptions.user"},
		{"init container", func(s map[string]any) {
			s["initContainers"] = []any{map[string]any{"name": "init", "securityContext": map[string]any{"capabilities": map[string]any{"drop": []any{"ALL"}}}}}
		}, nil, "initContainers[init].securityContext.allowPrivilegeEscalation"},
	} {
		s := good()
		tc.mutate(s)
		v := checkRestricted(s, tc.annot)
		if !slices.ContainsFunc(v, func(m string) bool { return strings.Contains(m, tc.want) }) {
			t.Errorf("%s: violations %q; want one naming %q", tc.name, v, tc.want)
		}
	}
	// A kind with containers the test does not know is reported, not skipped.
	if _, _, ok := podTemplate(obj{"kind": "Rollout", "spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{}}}}}); ok {
		t.Error("an unknown kind with containers is accepted")
	}
}
