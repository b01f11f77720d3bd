#!/usr/bin/env bash
# Checks the operations files:
#   1. promtool (pinned in tools/versions.env, installed into ./bin by
#      tools/install.sh, which skips it when bin/promtool already is that version)
#      checks ops/alerts/rules.yaml and runs its unit tests ops/alerts/tests/*.yaml,
#      and the unit tests of the dashboard's target-health and kube-state-metrics
#      queries, ops/grafana/tests/*.yaml (down, unready and restarting pods, with
#      and without kube-state-metrics);
#   2. go test in pkg/opscheck (a module of its own, run with GOWORK=off):
#      the dashboard JSON is valid and every panel has a query, the dashboard's
#      promtool tests use its queries verbatim and cover every query of up or
#      kube_* series, panels needing kube-state-metrics say so and fall back, every alert has
#      for/severity/summary/runbook_url with an existing docs/runbook.md section
#      and firing + quiet promtool cases, and every metric the dashboard and the
#      rules use is exported by the real binaries (`make build` into bin/, which
#      the e2e step then reuses, run here against a fresh database on
#      TEST_DATABASE_URL, found or started by scripts/ensure-postgres.sh when unset).
#
#   bash scripts/ops-test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

# shellcheck source=tools/versions.env
source tools/versions.env

echo "== promtool $PROMTOOL_VERSION"
tools/install.sh promtool
# Module v0.X.Y is Prometheus 3.X.Y; tools/install.sh stamps that version.
r="${PROMTOOL_VERSION#v0.}"; mm="${r%%.*}"; want="${mm:0:1}.${mm:1}.${r#*.}"
have="$(bin/promtool --version 2>&1 | head -1)"
case "$have" in
  *"version $want "*) echo "$have" ;;
  *) echo "ops-test: bin/promtool reports '$have', want version $want (delete bin/promtool and rerun)" >&2; exit 1 ;;
esac

echo "== promtool check rules"
bin/promtool check rules ops/alerts/rules.yaml
echo "== promtool test rules"
bin/promtool test rules ops/alerts/tests/*.yaml
echo "== promtool test rules (dashboard queries)"
bin/promtool test rules ops/grafana/tests/*.yaml

echo "== pkg/opscheck"
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL="$(scripts/ensure-postgres.sh)"
  export TEST_DATABASE_URL
fi
make -s build
(
  cd pkg/opscheck
  export GOWORK=off OPSCHECK_REQUIRE_LIVE=1
  unformatted="$(gofmt -l .)"
  if [ -n "$unformatted" ]; then echo "not gofmt-formatted: $unformatted" >&2; exit 1; fi
  go vet ./...
  # -v: the binaries' logs are printed only when a test fails.
  go test -count=1 -timeout 10m -v ./...
)
