#!/usr/bin/env bash
# `make ci`: the checks of .github/workflows/ci.yml that need no Docker engine,
# in the pipeline's order, with the same pinned tools (tools/versions.env) and
# the same scripts, so the verdict here is the verdict on GitHub.
#
#   scripts/ci/local.sh              # every step; stops at the first failure
#   scripts/ci/local.sh lint test    # only these steps (names below)
#   SKIP="e2e" scripts/ci/local.sh   # every step but these
#
# Steps (ci.yml job in brackets):
#   go-version    one Go release everywhere                       [lint]
#   gofmt         gofmt -s -l on every Go file                    [lint]
#   vet           go vet on every module                          [lint]
#   lint          golangci-lint (.golangci.yml) on every module   [lint]
#   compose       docker-compose.yml is valid (compose config)   [lint]
#   test          unit + Postgres integration tests, -race, coverage [test]
#   vuln          govulncheck, offline database, allowlist        [govulncheck]
#   chart         helm lint/template, kubeconform, chart tests    [chart]
#   ops           promtool rules and tests, ops checks            [ops]
#   actionlint    every workflow                                  [actionlint]
#   images        the Dockerfiles' build replayed without Docker  [images]
#   e2e           the e2e suite against a complete local system   [e2e (kind)]
# While the test step runs, scripts/ci/prebuild.sh builds (in the background,
# at low priority) the tools, schemas and binaries the later steps need; each
# later step waits for it first. A step still checks everything; the test
# step's pkg/charttest run stands for the chart step's (CHARTTEST_DONE=1).
# What only GitHub runs (it needs a Docker engine or the network): the Buildx
# image builds with SBOM and provenance, the Trivy scan, the kind cluster with
# ingress-nginx, helm install/test there, publishing, CodeQL.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
# Build and test with the project's Go (go.mod), whatever the machine's is.
export GOTOOLCHAIN="${GOTOOLCHAIN:-go$(scripts/ci/go-version.sh)}"

all=(go-version gofmt vet lint compose test vuln chart ops actionlint images e2e)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${all[@]}")
for s in "${want[@]}" ${SKIP:-}; do
  case " ${all[*]} " in *" $s "*) ;; *) echo "ci: unknown step '$s' (steps: ${all[*]})" >&2; exit 2 ;; esac
done

# Module directories: go.work's, plus modules kept out of the workspace on
# purpose (pkg/opscheck), which are linted and vetted with GOWORK=off.
extra_modules=()
while read -r mod; do
  dir="$(dirname "${mod#./}")"
  case "$dir" in . | e2e) ;; *) extra_modules+=("$dir") ;; esac
done < <(find . -name go.mod -not -path './.cache/*' -not -path './bin/*' -not -path '*/testdata/*' | sort)

go_files() { git ls-files --cached --others --exclude-standard -- '*.go'; }

step_go-version() { scripts/ci/go-version.sh --check; }
step_gofmt() {
  local out
  out="$(go_files | xargs gofmt -s -l)"
  if [ -n "$out" ]; then
    echo "not gofmt -s formatted (run gofmt -s -w on them):"
    echo "$out"
    return 1
  fi
  echo "gofmt: $(go_files | wc -l) files formatted"
}
step_vet() {
  go vet ./... ./e2e/...
  local d
  for d in ${extra_modules[@]+"${extra_modules[@]}"}; do
    echo "go vet in $d (GOWORK=off)"
    (cd "$d" && GOWORK=off go vet ./...)
  done
}
step_lint() {
  tools/install.sh golangci-lint
  bin/golangci-lint config verify
  bin/golangci-lint run --allow-parallel-runners ./... ./e2e/...
  local d
  for d in ${extra_modules[@]+"${extra_modules[@]}"}; do
    echo "golangci-lint in $d (GOWORK=off)"
    (cd "$d" && GOWORK=off "$root/bin/golangci-lint" run --allow-parallel-runners --config "$root/.golangci.yml" ./...)
  done
}
step_test() { scripts/ci/test.sh; }
step_vuln() { scripts/ci/govulncheck.sh; }
step_chart() { scripts/chart/test.sh; }
step_ops() { need scripts/ops-test.sh && bash scripts/ops-test.sh; }
step_actionlint() { scripts/ci/actionlint.sh; }
step_images() { bash scripts/chart/check-dockerfiles.sh; }
step_compose() {
  if command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f docker-compose.yml --profile observability config -q
  elif command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    docker compose -f docker-compose.yml --profile observability config -q
  else
    echo "compose: neither docker-compose nor docker compose is installed (apt-get install docker-compose)" >&2
    return 1
  fi
}
step_e2e() { need scripts/e2e.sh && bash scripts/e2e.sh; }

need() { [ -f "$1" ] || { echo "$1 does not exist yet"; return 1; }; }

runs() { # STEP: selected and not skipped
  case " ${want[*]} " in *" $1 "*) ;; *) return 1 ;; esac
  case " ${SKIP:-} " in *" $1 "*) return 1 ;; esac
}

# The background builds for the steps after the test step.
prebuild_pid=""
start_prebuild() {
  local later=() s after=false
  for s in "${all[@]}"; do
    if $after && runs "$s"; then later+=("$s"); fi
    [ "$s" != test ] || after=true
  done
  [ ${#later[@]} -gt 0 ] || return 0
  mkdir -p .cache
  echo "ci: building what ${later[*]} need in the background while the tests run (.cache/prebuild.log)"
  if command -v setsid >/dev/null 2>&1; then
    setsid nice -n 10 scripts/ci/prebuild.sh "${later[@]}" >.cache/prebuild.log 2>&1 &
  else
    nice -n 10 scripts/ci/prebuild.sh "${later[@]}" >.cache/prebuild.log 2>&1 &
  fi
  prebuild_pid=$!
}
wait_prebuild() {
  [ -n "$prebuild_pid" ] || return 0
  local t0=$SECONDS
  wait "$prebuild_pid" || true
  prebuild_pid=""
  grep '^prebuild:' .cache/prebuild.log | sed 's/^/  /' || true
  local took
  took="$(sed -n 's/^prebuild: all in \([0-9]*\)s$/\1/p' .cache/prebuild.log)"
  echo "ci: the background builds took ${took:-?}s beside the test step; waited $((SECONDS - t0))s for them here"
  results+=("$(printf '%-11s bg      %4ss  (beside test; then waited %ds)' prebuild "${took:-?}" $((SECONDS - t0)))")
}
stop_prebuild() {
  [ -n "$prebuild_pid" ] || return 0
  kill -- "-$prebuild_pid" 2>/dev/null || kill "$prebuild_pid" 2>/dev/null || true
}
trap stop_prebuild EXIT

results=()
start_all=$SECONDS
failed=""
test_done=false
for s in "${all[@]}"; do
  case " ${want[*]} " in *" $s "*) ;; *) continue ;; esac
  case " ${SKIP:-} " in *" $s "*) results+=("$(printf '%-11s skipped' "$s")"); continue ;; esac
  if [ "$s" = test ]; then
    start_prebuild
  elif $test_done; then
    wait_prebuild
  fi
  printf '\n\033[1m==> ci: %s\033[0m\n' "$s"
  t0=$SECONDS
  # Not `if ( step )`: inside an if condition bash ignores set -e, in the
  # function and everything it calls, so a step would fail only when its
  # last command does (a failing `go vet` followed by a passing one would
  # pass). The subshell turns -e on again outside any condition.
  set +e
  (
    set -e
    "step_$s"
  )
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    results+=("$(printf '%-11s ok      %4ds' "$s" $((SECONDS - t0)))")
    if [ "$s" = test ]; then
      test_done=true
      export CHARTTEST_DONE=1
    fi
  else
    results+=("$(printf '%-11s FAILED  %4ds' "$s" $((SECONDS - t0)))")
    failed=$s
    break
  fi
done

printf '\n\033[1mci summary\033[0m\n'
printf '  %s\n' "${results[@]}"
if [ -n "$failed" ]; then
  printf 'ci: FAILED at step %s after %ds (rerun it alone: scripts/ci/local.sh %s)\n' "$failed" $((SECONDS - start_all)) "$failed"
  exit 1
fi
printf 'ci: passed in %ds\n' $((SECONDS - start_all))
