// Package charttest holds the tests of the Helm chart in charts/rickmorty.
// They render the chart with `helm template` (the binary in ./bin, installed
// by tools/install.sh, or helm on PATH) for the default values and the files
// in charts/rickmorty/ci/, decode the manifests and assert what the chart
// promises: security contexts, probes, resources, labels, selectors, the
// migration hook and re-ingest Jobs, NetworkPolicies, the Secret wiring,
// and that every pod meets the "restricted" Pod Security Standard (the
// ci/privileged-*.yaml files excepted, which it must reject).
//
// Without helm the tests fail (they never skip); run
// `bash scripts/chart/test.sh`, which installs the pinned tools first.
package charttest
