package main

import (
	"slices"
	"strings"
	"testing"
)

const manifests = `
apiVersion: v1
kind: Service
metadata: {name: rickmorty-api}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: rickmorty-api}
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: sidecar
        - name: api
          env:
            - {name: LOG_LEVEL, value: info}
            - name: GOMAXPROCS
              valueFrom: {resourceFieldRef: {containerName: api, resource: limits.cpu, divisor: "1"}}
            - {name: GOMEMLIMIT, value: 230MiB}
          resources:
            limits: {cpu: 500m, memory: 256Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities: {drop: [ALL]}
            seccompProfile: {type: RuntimeDefault}
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
`

func TestFlagsForTheChartsSettings(t *testing.T) {
	got, err := flagsFor([]byte(manifests), "Deployment/rickmorty-api", "api", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--user", "65532:65532", "--group-add", "65532", "--read-only",
		"--security-opt", "no-new-privileges", "--cap-drop", "ALL",
		"--tmpfs", "/tmp:rw,mode=1777,size=67108864",
		"--cpus", "0.5", "--memory", "268435456b", "--memory-swap", "268435456b",
		"--env", "GOMAXPROCS=1", "--env", "GOMEMLIMIT=230MiB",
	}
	if !slices.Equal(got, want) {
		t.Errorf("flags\n got %q\nwant %q", got, want)
	}

	sec, err := flagsFor([]byte(manifests), "Deployment/rickmorty-api", "api", true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sec, want[:11]) {
		t.Errorf("security-only flags\n got %q\nwant %q", sec, want[:11])
	}
}

func TestUntranslatableSettingsAreErrors(t *testing.T) {
	for _, tt := range []struct{ name, from, to, want string }{
		{"another volume type", "emptyDir: {sizeLimit: 64Mi}", "configMap: {name: x}", `volume "tmp" mounted at /tmp is not an emptyDir`},
		{"a Localhost seccomp profile", "seccompProfile: {type: RuntimeDefault}\n          volumeMounts", "seccompProfile: {type: Localhost}\n          volumeMounts", "seccompProfile Localhost"},
		{"an unknown container setting", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: true\n            procMount: Unmasked", "no docker run translation for procMount"},
		{"runAsNonRoot as root", "runAsUser: 65532", "runAsUser: 0", "runAsNonRoot without a numeric non-root runAsUser"},
		{"a missing container", "- name: api", "- name: web", `has no container "api"`},
		{"a missing workload", "name: rickmorty-api}\nspec", "name: other}\nspec", "Deployment/rickmorty-api not found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := strings.Replace(manifests, tt.from, tt.to, 1)
			if m == manifests {
				t.Fatalf("fixture does not contain %q", tt.from)
			}
			_, err := flagsFor([]byte(m), "Deployment/rickmorty-api", "api", false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestQuantity(t *testing.T) {
	for in, want := range map[string]float64{"256Mi": 256 << 20, "500m": 0.5, "1": 1, "1.5": 1.5, "1G": 1e9, "64Ki": 65536} {
		if got, err := quantity(in); err != nil || got != want {
			t.Errorf("quantity(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := quantity("lots"); err == nil {
		t.Error("quantity(lots) did not fail")
	}
}
