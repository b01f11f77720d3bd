#!/usr/bin/env bash
# Tests the Helm chart charts/rickmorty, offline:
#   1. installs the pinned helm and kubeconform into ./bin (tools/install.sh;
#      skipped when already there)
#   2. builds the Kubernetes JSON schemas of K8S_VERSION from the
#      k8s.io/kubernetes module's OpenAPI spec (tools/k8sschema; cached in
#      .cache/k8s-schemas)
#   3. builds strict JSON schemas of the CloudNativePG Cluster and Pooler from
#      the CRDs of the github.com/cloudnative-pg/cloudnative-pg module at
#      CNPG_VERSION (tools/k8sschema -crd; cached in .cache/crd-schemas)
#   4. checks that the chart's copies of ops/ are current (sync-ops.sh --check)
#      and that Chart.lock matches Chart.yaml
#   5. helm lint --strict and helm template with the default values and with
#      every charts/rickmorty/ci/*.yaml, plus the manual re-ingest and plan Jobs
#   6. kubeconform -strict on every rendered manifest (unknown fields are
#      errors; ServiceMonitor and PrometheusRule against the schemas in
#      tools/k8sschema/crds/, Cluster and Pooler against those of step 3),
#      and proof that those CRD schemas reject what the API server would
#   7. the Go tests in pkg/charttest (unless CHARTTEST_DONE=1: scripts/ci/local.sh
#      sets it when its test step has just run them, with the race detector)
# Versions: tools/versions.env. Usage: bash scripts/chart/test.sh [--prepare]
# --prepare does steps 1-3 only (tools and schemas) and exits: what
# scripts/ci/prebuild.sh builds ahead of time.
set -euo pipefail
prepare=false
if [ "${1:-}" = "--prepare" ]; then prepare=true; fi

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

step "CloudNativePG $CNPG_VERSION CRD schemas (Cluster, Pooler)"
crd_schemas="$cache/crd-schemas/cnpg-$CNPG_VERSION"
crd_stamp="$crd_schemas/.stamp"
want_crd_stamp="$CNPG_VERSION $(cat tools/k8sschema/*.go | sha256sum | cut -c1-16)"
if [ -f "$crd_stamp" ] && [ "$(cat "$crd_stamp")" = "$want_crd_stamp" ]; then
  echo "cached in ${crd_schemas#"$root"/}"
else
  # Only the module's config/crd/bases is read; the Go module proxy serves
  # exact versions, so the schemas follow CNPG_VERSION and nothing else.
  dir="$(cd "$(mktemp -d)" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/cloudnative-pg/cloudnative-pg@$CNPG_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  bases="$dir/config/crd/bases"
  for f in postgresql.cnpg.io_clusters.yaml postgresql.cnpg.io_poolers.yaml; do
    [ -f "$bases/$f" ] || { echo "no config/crd/bases/$f in github.com/cloudnative-pg/cloudnative-pg@$CNPG_VERSION" >&2; exit 1; }
  done
  rm -rf "$crd_schemas"
  GOWORK=off go run ./tools/k8sschema -out "$crd_schemas" \
    -crd "$bases/postgresql.cnpg.io_clusters.yaml" -crd "$bases/postgresql.cnpg.io_poolers.yaml"
  echo "$want_crd_stamp" >"$crd_stamp"
fi

if $prepare; then
  echo "chart: tools and schemas ready in $((SECONDS - start))s"
  exit 0
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
# The plan Job, as NOTES.txt and the runbook show it, and its runs variant.
helm template rickmorty "$chart" --namespace rickmorty --kube-version "$K8S_VERSION" \
  --set ingester.plan.enabled=true --show-only templates/plan-job.yaml >"$out/plan-job.yaml"
helm template rickmorty "$chart" --namespace rickmorty --kube-version "$K8S_VERSION" \
  --set ingester.plan.enabled=true --set ingester.plan.command=runs --set ingester.plan.json=true --set ingester.plan.limit=50 \
  --show-only templates/plan-job.yaml >"$out/plan-job-runs.yaml"
echo "ok: plan-job"

step "kubeconform -strict (Kubernetes $K8S_VERSION, CloudNativePG $CNPG_VERSION)"
conform() {
  kubeconform -strict -output text \
    -kubernetes-version "$k8s" \
    -schema-location "$schemas/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$root/tools/k8sschema/crds/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$crd_schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    "$@"
}
conform -summary "$out"/*.yaml
for kind in Cluster Pooler; do
  grep -q "^kind: $kind\$" "$out/cloudnativepg-values.yaml" ||
    { echo "the cloudnativepg-values rendering has no $kind to validate" >&2; exit 1; }
done

# The CRD schemas must reject what the API server would: each case below is
# the valid Cluster/Pooler with one mistake, and must fail (while the valid
# pair passes, so the failures come from the mistakes).
neg="$scratch/crd-cases"
mkdir -p "$neg"
valid() {
  cat <<YAML
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: db
spec:
  instances: 3
  storage:
    size: 1Gi
  managed:
    roles:
      - name: reader
        login: true
        connectionLimit: 10
        passwordSecret:
          name: db-reader
---
apiVersion: postgresql.cnpg.io/v1
kind: Pooler
metadata:
  name: db-pooler-ro
spec:
  cluster:
    name: db
  type: ro
  instances: 2
  pgbouncer:
    poolMode: transaction
    parameters:
      max_client_conn: "100"
  template:
    spec:
      containers:
        - name: pgbouncer
          resources:
            limits:
              memory: 128Mi
YAML
}
valid >"$neg/valid.yaml"
conform "$neg/valid.yaml" >"$neg/valid.out" 2>&1 || { cat "$neg/valid.out" >&2; echo "the valid Cluster and Pooler were rejected" >&2; exit 1; }
bad_cases=(
  "unknown field spec.instancez|s/^  instances: 3$/  instances: 3\n  instancez: 3/|at '/spec': additional properties 'instancez' not allowed"
  "instances below the minimum|s/^  instances: 3$/  instances: 0/|at '/spec/instances': minimum"
  "instances of the wrong type|s/^  instances: 3$/  instances: three/|at '/spec/instances': got string, want integer"
  "unknown field in a managed role|s/^        login: true$/        logon: true/|additional properties 'logon' not allowed"
  "pool mode outside the enum|s/^    poolMode: transaction$/    poolMode: statement/|at '/spec/pgbouncer/poolMode'"
  "pooler type outside the enum|s/^  type: ro$/  type: replica/|at '/spec/type'"
  "pgbouncer parameter not a string|s/^      max_client_conn: \"100\"$/      max_client_conn: 100/|at '/spec/pgbouncer/parameters/max_client_conn': got number, want string"
  "container without a name in the pooler template|s/^        - name: pgbouncer$/        - image: pgbouncer/|missing property 'name'"
  "required pgbouncer missing|/^  pgbouncer:$/,/^      max_client_conn/d|missing property 'pgbouncer'"
)
for c in "${bad_cases[@]}"; do
  IFS='|' read -r what edit expect <<<"$c"
  valid | sed "$edit" >"$neg/bad.yaml"
  if conform "$neg/bad.yaml" >"$neg/bad.out" 2>&1; then
    cat "$neg/bad.out" >&2
    echo "kubeconform accepted a manifest with $what" >&2
    exit 1
  fi
  if ! grep -qF "$expect" "$neg/bad.out"; then
    cat "$neg/bad.out" >&2
    echo "kubeconform rejected the manifest with $what, but not with \"$expect\"" >&2
    exit 1
  fi
  echo "ok: rejects $what ($expect)"
done

step "Go chart tests (pkg/charttest)"
if [ "${CHARTTEST_DONE:-}" = 1 ]; then
  # scripts/ci/local.sh's test step ran this package a moment ago, on the
  # same tree, with the race detector.
  echo "already run by the test step of this scripts/ci/local.sh run (CHARTTEST_DONE=1)"
else
  go test -count=1 ./pkg/charttest/
fi

printf '\nchart tests passed in %ds\n' "$((SECONDS - start))"
