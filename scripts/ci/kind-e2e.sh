#!/usr/bin/env bash
# The e2e suite against the Helm chart in a kind cluster (needs a Docker
# engine: the CI's "e2e (kind)" job runs it; without Docker use
# scripts/e2e.sh, which runs the same suite against local processes).
#
#   scripts/ci/kind-e2e.sh [go test flags]
#
# 1. a kind cluster (KIND_VERSION; its pinned node image) with port 80 of the
#    node on 127.0.0.1:$INGRESS_PORT, and ingress-nginx (INGRESS_NGINX_VERSION,
#    the controller's manifest for kind);
# 2. the images rickmorty-api:ci and rickmorty-ingester:ci, which must be in
#    the local Docker engine (the CI loads the scanned images it built; else
#    set BUILD_IMAGES=1 to build them here), loaded with `kind load docker-image`;
# 3. the fake upstream (cmd/fakeupstream) on this host, reachable from the
#    cluster through the kind network's gateway: the suite drives it through
#    its /_fake/ controls, so it runs beside the suite, not in the cluster;
# 4. `helm install` of charts/rickmorty with the dev Postgres
#    (postgres.enabled=true), two API replicas behind an ingress, the
#    ingester crawling the fake; `helm test`; a request through the ingress;
# 5. the suite (go test ./e2e/...) with per-replica port-forwards, ingests
#    through `kubectl exec ... ingester once`, database stop/start/restart
#    through the StatefulSet, and E2E_NAME_ORDER=db (the official Postgres
#    image's default collation is not C).
# On failure it prints the cluster's state and logs. The cluster is deleted
# at the end unless KEEP_CLUSTER=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=tools/versions.env
source tools/versions.env

cluster="${KIND_CLUSTER:-rickmorty-e2e}"
ns=rickmorty
release=rickmorty
ingress_port="${INGRESS_PORT:-8088}"
fake_port="${FAKE_PORT:-18081}"
work="$(mktemp -d "${TMPDIR:-/tmp}/kind-e2e.XXXXXX")"
pids=()
status=1

say() { printf '\033[1mkind-e2e:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# shellcheck disable=SC2317 # called from the EXIT trap
diagnose() {
  say "cluster state"
  kubectl get nodes,pods,svc,ingress,jobs,pvc -A -o wide || true
  kubectl -n "$ns" get events --sort-by=.lastTimestamp | tail -n 40 || true
  local p
  for p in $(kubectl -n "$ns" get pods -o name 2>/dev/null); do
    printf '\n== logs of %s\n' "$p" >&2
    kubectl -n "$ns" logs "$p" --all-containers --tail=60 >&2 || true
  done
  for f in "$work"/*.log; do
    [ -s "$f" ] || continue
    printf '\n== %s (last 40 lines)\n' "${f##*/}" >&2
    tail -n 40 "$f" >&2
  done
}

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT
  [ "$status" = 0 ] || status=$rc
  [ "$status" = 0 ] || diagnose
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
  if [ "${KEEP_CLUSTER:-}" != 1 ]; then bin/kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

for c in docker kubectl; do command -v "$c" >/dev/null || die "$c is required"; done
docker info >/dev/null 2>&1 || die "no Docker engine: run scripts/e2e.sh instead"

say "tools: kind $KIND_VERSION, helm $HELM_VERSION, ingress-nginx $INGRESS_NGINX_VERSION"
tools/install.sh kind helm

# --------------------------------------------------------------- cluster
cat >"$work/kind.yaml" <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    labels:
      ingress-ready: "true"
    extraPortMappings:
      - containerPort: 80
        hostPort: $ingress_port
        listenAddress: 127.0.0.1
        protocol: TCP
YAML
say "creating kind cluster $cluster"
bin/kind create cluster --name "$cluster" --config "$work/kind.yaml" --wait 180s
kubectl cluster-info --context "kind-$cluster" >/dev/null

say "installing ingress-nginx $INGRESS_NGINX_VERSION"
kubectl apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-$INGRESS_NGINX_VERSION/deploy/static/provider/kind/deploy.yaml"
# The admission webhook (which validates our Ingress) is ready once its
# certificate jobs completed and the controller is rolled out.
kubectl -n ingress-nginx wait --for=condition=complete job --all --timeout=300s
kubectl -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout=300s

# ---------------------------------------------------------------- images
if [ "${BUILD_IMAGES:-}" = 1 ]; then
  go_version="$(scripts/ci/go-version.sh)"
  for c in api ingester; do
    say "building rickmorty-$c:ci"
    docker build -f "Dockerfile.$c" --build-arg GO_VERSION="$go_version" \
      --build-arg VERSION="$(git describe --tags --always --dirty 2>/dev/null || echo dev)" \
      --build-arg COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" -t "rickmorty-$c:ci" .
  done
fi
for c in api ingester; do
  docker image inspect "rickmorty-$c:ci" >/dev/null 2>&1 || die "image rickmorty-$c:ci is not in the Docker engine (BUILD_IMAGES=1 builds it)"
  say "loading rickmorty-$c:ci into the cluster"
  bin/kind load docker-image "rickmorty-$c:ci" --name "$cluster"
done

# --------------------------------------------------------- fake upstream
# The pods reach this host at the kind network's IPv4 gateway.
gateway="$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | head -n 1)"
[ -n "$gateway" ] || die "no IPv4 gateway on the kind Docker network"
say "starting the fake upstream on 0.0.0.0:$fake_port (the cluster reaches it at $gateway)"
CGO_ENABLED=0 go build -o "$work/fakeupstream" ./cmd/fakeupstream
FAKE_ADDR="0.0.0.0:$fake_port" "$work/fakeupstream" >"$work/fake.url" 2>"$work/fakeupstream.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q '^http' "$work/fake.url" 2>/dev/null && break; sleep 0.1; done
grep -q '^http' "$work/fake.url" || die "the fake upstream did not start"

# ---------------------------------------------------------------- chart
cat >"$work/values.yaml" <<YAML
global:
  image:
    registry: ""
    tag: ci
    pullPolicy: Never
api:
  replicaCount: 2
  config:
    cacheTTL: 1h
  ingress:
    enabled: true
    className: nginx
    host: localhost
    rateLimit:
      enabled: false
ingester:
  config:
    schedule: "@every 1h"
    upstreamURL: http://$gateway:$fake_port/api
    upstreamRetries: 2
  extraEnv:
    - name: UPSTREAM_RETRY_WAIT_MIN
      value: 10ms
    - name: UPSTREAM_RETRY_WAIT_MAX
      value: 100ms
    - name: UPSTREAM_MAX_RETRY_AFTER
      value: 1s
postgres:
  enabled: true
YAML
say "helm install $release (dev Postgres, 2 API replicas, ingress on localhost)"
bin/helm install "$release" charts/rickmorty --namespace "$ns" --create-namespace \
  -f "$work/values.yaml" --wait --wait-for-jobs --timeout 10m
say "helm test"
bin/helm test "$release" --namespace "$ns" --logs --timeout 5m

say "a request through ingress-nginx"
ok=false
for _ in $(seq 1 30); do
  if curl -fsS -o /dev/null -H 'Host: localhost' "http://127.0.0.1:$ingress_port/characters?page_size=1"; then ok=true; break; fi
  sleep 2
done
$ok || die "GET /characters through the ingress failed"

# ------------------------------------------------------------ port-forwards
forward() { # NAME TARGET LOCALPORT:REMOTEPORT
  kubectl -n "$ns" port-forward "$2" "$3" >"$work/port-forward-$1.log" 2>&1 &
  pids+=($!)
}
api_urls=""
port=18080
for pod in $(kubectl -n "$ns" get pods -l app.kubernetes.io/component=api --field-selector=status.phase=Running -o name); do
  forward "api-$port" "$pod" "$port:8080"
  api_urls+="${api_urls:+,}http://127.0.0.1:$port"
  port=$((port + 2))
done
[ -n "$api_urls" ] || die "no API pods found (label app.kubernetes.io/component=api)"
forward ingester "svc/$release-ingester" "19090:9090"

# ---------------------------------------------------------------- suite
cat >"$work/db-stop.sh" <<SH
#!/bin/sh
set -e
kubectl -n $ns scale statefulset/$release-postgres --replicas=0
kubectl -n $ns wait --for=delete pod/$release-postgres-0 --timeout=180s
SH
cat >"$work/db-start.sh" <<SH
#!/bin/sh
set -e
kubectl -n $ns scale statefulset/$release-postgres --replicas=1
kubectl -n $ns rollout status statefulset/$release-postgres --timeout=180s
SH
cat >"$work/db-restart.sh" <<SH
#!/bin/sh
set -e
kubectl -n $ns delete pod $release-postgres-0 --wait=true --timeout=180s
kubectl -n $ns rollout status statefulset/$release-postgres --timeout=180s
SH
chmod +x "$work"/db-*.sh

export E2E_API_URLS="$api_urls"
export E2E_INGESTER_METRICS_URL="http://127.0.0.1:19090/metrics"
export E2E_FAKE_URL="http://127.0.0.1:$fake_port"
export E2E_INGEST_CMD="kubectl -n $ns exec deploy/$release-ingester -c ingester -- /usr/local/bin/ingester once"
export E2E_PLAN_CMD="kubectl -n $ns exec deploy/$release-ingester -c ingester -- /usr/local/bin/ingester plan"
export E2E_DB_STOP_CMD="$work/db-stop.sh"
export E2E_DB_START_CMD="$work/db-start.sh"
export E2E_DB_RESTART_CMD="$work/db-restart.sh"
export E2E_NAME_ORDER=db
export E2E_READY_TIMEOUT=180s
env | grep '^E2E_' | sort >&2

say "running the e2e suite"
set +e
go test -count=1 -v -timeout 30m ./e2e/... "$@"
status=$?
set -e
say "suite finished with status $status"
exit "$status"
