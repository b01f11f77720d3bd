// Command chartdocker prints the `docker run` flags that run one container of
// the Helm chart the way the chart runs it, so that the chart states those
// settings once and scripts/e2e-containers.sh takes them from it:
//
//   - the pod's and the container's securityContext: --user, --group-add
//     (fsGroup, supplementalGroups), --read-only, --security-opt
//     no-new-privileges, --cap-drop/--cap-add, the seccomp profile
//     (RuntimeDefault is the engine's default profile: no flag);
//   - resources.limits: --memory (with --memory-swap equal to it: no swap,
//     as on a node) and --cpus;
//   - the Go runtime variables the chart sets: GOMEMLIMIT (a value) and
//     GOMAXPROCS (from the CPU limit through a resourceFieldRef, rounded up
//     as the kubelet does);
//   - emptyDir volumes mounted by the container: --tmpfs with their
//     sizeLimit.
//
// A setting it cannot translate (another volume type, a Localhost seccomp
// profile, SELinux or AppArmor options, ...) is an error, so a chart change
// cannot silently go missing from the containers.
//
// Usage (one argument per line on stdout):
//
//	go run ./tools/chartdocker -workload Deployment/rickmorty-api -container api [-security-only] [-- helm template flags]
//
// It renders charts/rickmorty with `helm template` ($HELM, else bin/helm,
// else helm on PATH) and the default values, plus any flags after --.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	workload := flag.String("workload", "", "Kind/name of the rendered workload, e.g. Deployment/rickmorty-api or Job/rickmorty-migrate")
	containerName := flag.String("container", "", "container name in its pod template")
	securityOnly := flag.Bool("security-only", false, "only the security settings: no resources, no Go runtime variables")
	chart := flag.String("chart", "charts/rickmorty", "chart directory")
	flag.Parse()
	if *workload == "" || *containerName == "" {
		flag.Usage()
		os.Exit(2)
	}
	manifests, err := render(*chart, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "chartdocker:", err)
		os.Exit(1)
	}
	args, err := flagsFor(manifests, *workload, *containerName, *securityOnly)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chartdocker:", err)
		os.Exit(1)
	}
	for _, a := range args {
		fmt.Println(a)
	}
}

func helmBinary() string {
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if fi, err := os.Stat(filepath.Join("bin", "helm")); err == nil && fi.Mode()&0o111 != 0 {
		return filepath.Join("bin", "helm")
	}
	return "helm"
}

func render(chart string, extra []string) ([]byte, error) {
	args := append([]string{"template", "rickmorty", chart, "--namespace", "rickmorty"}, extra...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(context.Background(), helmBinary(), args...) //nolint:gosec // the developer's own helm and chart
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s (tools/install.sh helm installs the pinned helm)", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// flagsFor finds workload ("Kind/name") among the rendered manifests and
// translates its container's settings.
func flagsFor(manifests []byte, workload, containerName string, securityOnly bool) ([]string, error) {
	kind, name, ok := strings.Cut(workload, "/")
	if !ok {
		return nil, fmt.Errorf("workload %q is not Kind/name", workload)
	}
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s not found in the rendered chart", workload)
		}
		if err != nil {
			return nil, fmt.Errorf("decode manifests: %w", err)
		}
		if doc["kind"] != kind || dig(doc, "metadata", "name") != name {
			continue
		}
		pod, _ := dig(doc, "spec", "template", "spec").(map[string]any)
		if pod == nil {
			return nil, fmt.Errorf("%s has no pod template", workload)
		}
		for _, c := range list(pod["containers"]) {
			if cm, _ := c.(map[string]any); cm != nil && cm["name"] == containerName {
				return translate(pod, cm, securityOnly)
			}
		}
		return nil, fmt.Errorf("%s has no container %q", workload, containerName)
	}
}

// translate turns a pod spec and one of its containers into docker run flags.
func translate(pod, ctr map[string]any, securityOnly bool) ([]string, error) {
	var args []string
	podSC, _ := pod["securityContext"].(map[string]any)
	ctrSC, _ := ctr["securityContext"].(map[string]any)
	if err := known(podSC, "pod securityContext", "runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups", "seccompProfile"); err != nil {
		return nil, err
	}
	if err := known(ctrSC, "container securityContext", "runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation", "capabilities", "seccompProfile", "privileged"); err != nil {
		return nil, err
	}
	setting := func(key string) any { // the container's wins over the pod's
		if v, ok := ctrSC[key]; ok {
			return v
		}
		return podSC[key]
	}

	user, hasUser := setting("runAsUser").(int)
	group, hasGroup := setting("runAsGroup").(int)
	if isTrue(setting("runAsNonRoot")) && (!hasUser || user == 0) {
		return nil, errors.New("runAsNonRoot without a numeric non-root runAsUser: docker cannot check the image's user")
	}
	switch {
	case hasUser && hasGroup:
		args = append(args, "--user", fmt.Sprintf("%d:%d", user, group))
	case hasUser:
		args = append(args, "--user", strconv.Itoa(user))
	}
	var groups []int
	if g, ok := podSC["fsGroup"].(int); ok {
		groups = append(groups, g)
	}
	for _, g := range list(podSC["supplementalGroups"]) {
		if gi, ok := g.(int); ok {
			groups = append(groups, gi)
		}
	}
	for _, g := range groups {
		args = append(args, "--group-add", strconv.Itoa(g))
	}
	if isTrue(ctrSC["privileged"]) {
		args = append(args, "--privileged")
	}
	if isTrue(ctrSC["readOnlyRootFilesystem"]) {
		args = append(args, "--read-only")
	}
	if isFalse(ctrSC["allowPrivilegeEscalation"]) {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	if caps, _ := ctrSC["capabilities"].(map[string]any); caps != nil {
		if err := known(caps, "capabilities", "drop", "add"); err != nil {
			return nil, err
		}
		for _, c := range list(caps["drop"]) {
			args = append(args, "--cap-drop", fmt.Sprint(c))
		}
		for _, c := range list(caps["add"]) {
			args = append(args, "--cap-add", fmt.Sprint(c))
		}
	}
	if sp, _ := setting("seccompProfile").(map[string]any); sp != nil {
		switch sp["type"] {
		case "RuntimeDefault":
			// The engine's default profile applies to every container.
		case "Unconfined":
			args = append(args, "--security-opt", "seccomp=unconfined")
		default:
			return nil, fmt.Errorf("seccompProfile %v: only RuntimeDefault and Unconfined translate to docker run", sp["type"])
		}
	}

	tmpfs, err := emptyDirs(pod, ctr)
	if err != nil {
		return nil, err
	}
	args = append(args, tmpfs...)
	if securityOnly {
		return args, nil
	}

	limits, _ := dig(ctr, "resources", "limits").(map[string]any)
	var cpuLimit float64
	if v, ok := limits["cpu"]; ok {
		cpu, err := quantity(fmt.Sprint(v))
		if err != nil {
			return nil, fmt.Errorf("limits.cpu: %w", err)
		}
		cpuLimit = cpu
		args = append(args, "--cpus", strconv.FormatFloat(cpu, 'f', -1, 64))
	}
	if v, ok := limits["memory"]; ok {
		mem, err := quantity(fmt.Sprint(v))
		if err != nil {
			return nil, fmt.Errorf("limits.memory: %w", err)
		}
		b := strconv.FormatInt(int64(mem), 10) + "b"
		args = append(args, "--memory", b, "--memory-swap", b)
	}
	for _, e := range list(ctr["env"]) {
		em, _ := e.(map[string]any)
		switch em["name"] {
		case "GOMEMLIMIT":
			v, ok := em["value"].(string)
			if !ok {
				return nil, errors.New("GOMEMLIMIT is not a plain value")
			}
			args = append(args, "--env", "GOMEMLIMIT="+v)
		case "GOMAXPROCS":
			n, err := fromCPULimit(em, cpuLimit)
			if err != nil {
				return nil, fmt.Errorf("GOMAXPROCS: %w", err)
			}
			args = append(args, "--env", "GOMAXPROCS="+n)
		}
	}
	return args, nil
}

// fromCPULimit is the value of an env entry that is either a plain value or
// a resourceFieldRef to limits.cpu, which the kubelet rounds up.
func fromCPULimit(env map[string]any, cpuLimit float64) (string, error) {
	if v, ok := env["value"].(string); ok {
		return v, nil
	}
	ref, _ := dig(env, "valueFrom", "resourceFieldRef").(map[string]any)
	if ref == nil || ref["resource"] != "limits.cpu" {
		return "", errors.New("neither a value nor a resourceFieldRef to limits.cpu")
	}
	if cpuLimit == 0 {
		return "", errors.New("a resourceFieldRef to limits.cpu without a CPU limit")
	}
	divisor := 1.0
	if d, ok := ref["divisor"]; ok {
		var err error
		if divisor, err = quantity(fmt.Sprint(d)); err != nil || divisor == 0 {
			return "", fmt.Errorf("divisor %v", d)
		}
	}
	return strconv.FormatInt(int64(math.Ceil(cpuLimit/divisor)), 10), nil
}

// emptyDirs translates the container's mounts of emptyDir volumes to
// --tmpfs; any other mounted volume is an error.
func emptyDirs(pod, ctr map[string]any) ([]string, error) {
	volumes := map[string]map[string]any{}
	for _, v := range list(pod["volumes"]) {
		if vm, _ := v.(map[string]any); vm != nil {
			volumes[fmt.Sprint(vm["name"])] = vm
		}
	}
	var args []string
	for _, m := range list(ctr["volumeMounts"]) {
		mm, _ := m.(map[string]any)
		name, path := fmt.Sprint(mm["name"]), fmt.Sprint(mm["mountPath"])
		raw, isEmptyDir := volumes[name]["emptyDir"]
		if !isEmptyDir {
			return nil, fmt.Errorf("volume %q mounted at %s is not an emptyDir: no docker run translation", name, path)
		}
		ed, _ := raw.(map[string]any)
		opts := "rw,mode=1777"
		if s, ok := ed["sizeLimit"]; ok {
			size, err := quantity(fmt.Sprint(s))
			if err != nil {
				return nil, fmt.Errorf("volume %q sizeLimit: %w", name, err)
			}
			opts += ",size=" + strconv.FormatInt(int64(size), 10)
		}
		args = append(args, "--tmpfs", path+":"+opts)
	}
	return args, nil
}

// quantity parses a Kubernetes quantity: 256Mi, 500m, 1, 0.5, 1G.
func quantity(s string) (float64, error) {
	suffixes := []struct {
		s string
		m float64
	}{
		{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"m", 1e-3},
	}
	mult := 1.0
	for _, sf := range suffixes {
		if strings.HasSuffix(s, sf.s) {
			s, mult = strings.TrimSuffix(s, sf.s), sf.m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("quantity %q", s)
	}
	return n * mult, nil
}

// known fails when m has a key outside keys: a setting this tool does not
// translate.
func known(m map[string]any, what string, keys ...string) error {
	var unknown []string
	for k := range m {
		if !slices.Contains(keys, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s: no docker run translation for %s", what, strings.Join(unknown, ", "))
	}
	return nil
}

func dig(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		cm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = cm[p]
	}
	return cur
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// isTrue and isFalse read a YAML boolean: an absent or non-boolean value is
// neither.
func isTrue(v any) bool {
	b, ok := v.(bool)
	return ok && b
}

func isFalse(v any) bool {
	b, ok := v.(bool)
	return ok && !b
}
