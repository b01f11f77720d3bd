#!/usr/bin/env bash
# Tests the Helm chart charts/rickmorty, offline:
#   1. installs the pinned helm and kubeconform into ./bin (tools/install.sh;
#      skipped when already there)
#   2. builds the Kubernetes JSON schemas of K8S_VERSION from the
#      k8s.io/kubernetes module's OpenAPI spec (tools/k8sschema; cached in
#      .cache/k8s-schemas)
#   3. checks that the chart's copies of ops/ are current (sync-ops.sh --check)
#      and that Chart.lock matches Chart.yaml
#   4. helm lint --strict and helm template with the default values and with
#      every charts/rickmorty/ci/*.yaml, plus the manual re-ingest Job
#   5. kubeconform -strict on every rendered manifest (unknown fields are
#      errors; ServiceMonitor and PrometheusRule against the schemas in
#      tools/k8sschema/crds/)
#   6. the Go tests in pkg/charttest
# Versions: tools/versions.env. Usage: bash scripts/chart/test.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=tools/versions.env
source tools/versions.env

chart=charts/rickmorty
cache="$root/.cache"
mkdir -p "$cache"
# .cache holds only generated files: keep it out of git without a root entry.
[ -f "$cache/.gitignore" ] || printf '*\n' >"$cache/.gitignore"
export PATH="$root/bin:$PATH"
export HELM="$root/bin/helm"
# Helm must not need (or touch) the user's repositories, cache or cluster.
export HELM_CACHE_HOME="$cache/helm/cache" HELM_CONFIG_HOME="$cache/helm/config" HELM_DATA_HOME="$cache/helm/data"
export KUBECONFIG=/dev/null
k8s="${K8S_VERSION#v}"

start=$SECONDS
step() { printf '\n==> %s\n' "$*"; }

step "tools (tools/versions.env: helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION, Kubernetes $K8S_VERSION)"
tools/install.sh helm kubeconform

step "Kubernetes $K8S_VERSION JSON schemas"
schemas="$cache/k8s-schemas"
stamp="$schemas/v$k8s-standalone-strict/.stamp"
want_stamp="$K8S_VERSION $(cat tools/k8sschema/*.go | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
  echo "cached in ${schemas#"$root"/}"
else
  # The module is served by the Go module proxy (and then cached by Go);
  # only its api/openapi-spec/swagger.json is read.
  dir="$(cd "$(mktemp -d)" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  swagger="$dir/api/openapi-spec/swagger.json"
  [ -f "$swagger" ] || { echo "no $swagger in k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
  rm -rf "$schemas/v$k8s-standalone-strict"
  GOWORK=off go run ./tools/k8sschema -swagger "$swagger" -out "$schemas" -version "$K8S_VERSION"
  echo "$want_stamp" >"$stamp"
fi

step "ops/ copies in the chart"
scripts/chart/sync-ops.sh --check

step "Chart.lock matches Chart.yaml"
# Recompute the lock's digest on a scratch copy (helm dependency update
# would drop packaged archives into charts/) and compare.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp -r "$chart" "$scratch/"
helm dependency update "$scratch/rickmorty" >/dev/null
want="$(grep '^digest:' "$scratch/rickmorty/Chart.lock")"
have="$(grep '^digest:' "$chart/Chart.lock")"
if [ "$want" != "$have" ]; then
  echo "Chart.lock is stale ($have, want $want): run helm dependency update on a copy of $chart and keep only Chart.lock" >&2
  exit 1
fi
helm dependency list "$chart" | awk 'NR > 1 && NF && $NF != "unpacked" && $NF != "ok" { print; bad = 1 } END { exit bad }' ||
  { echo "a subchart is missing from $chart/charts/" >&2; exit 1; }
echo "ok: subcharts vendored, lock current"

step "helm lint and helm template"
out="$cache/chart-render"
rm -rf "$out"
mkdir -p "$out"
cases=("defaults:")
for f in "$chart"/ci/*.yaml; do
  cases+=("$(basename "$f" .yaml):$f")
done
for c in "${cases[@]}"; do
  name="${c%%:*}" file="${c#*:}"
  args=()
  [ -z "$file" ] || args=(-f "$file")
  helm lint --strict --quiet "$chart" ${args[@]+"${args[@]}"} --kube-version "$K8S_VERSION" >"$out/$name.lint" 2>&1 ||
    { cat "$out/$name.lint" >&2; echo "helm lint failed for $name" >&2; exit 1; }
  helm template rickmorty "$chart" --namespace rickmorty ${args[@]+"${args[@]}"} --kube-version "$K8S_VERSION" >"$out/$name.yaml"
  echo "ok: $name ($(grep -c '^kind:' "$out/$name.yaml") manifests)"
done
# The manual re-ingest Job, rendered the way NOTES.txt tells operators to.
helm template rickmorty "$chart" --namespace rickmorty --kube-version "$K8S_VERSION" \
  --set ingester.reingest.enabled=true --set ingester.reingest.force=true \
  --show-only templates/reingest-job.yaml >"$out/reingest-job.yaml"
echo "ok: reingest-job"

step "kubeconform -strict (Kubernetes $K8S_VERSION)"
kubeconform -strict -summary -output text \
  -kubernetes-version "$k8s" \
  -schema-location "$schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  -schema-location "$root/tools/k8sschema/crds/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
  "$out"/*.yaml

step "Go chart tests (pkg/charttest)"
go test -count=1 ./pkg/charttest/

printf '\nchart tests passed in %ds\n' "$((SECONDS - start))"
