#!/usr/bin/env bash
# Builds ahead of time what later steps of scripts/ci/local.sh need, so that
# it is ready when they start instead of being built one step after another.
# scripts/ci/local.sh runs it in the background, at low priority, while its
# test step (the Go tests with the race detector, minutes of mostly waiting
# on Postgres and timers) runs:
#
#   scripts/ci/prebuild.sh STEP...
#
#   lint        golangci-lint
#   vuln        govulncheck
#   chart       kubeconform; the Kubernetes and CloudNativePG JSON schemas
#               (scripts/chart/test.sh --prepare); helm is the test step's
#   ops         promtool; the binaries (make build); pkg/opscheck's tests compiled
#   actionlint  actionlint
#   e2e         the binaries (make build); the e2e suite compiled
#
# It only builds and downloads into the places the steps use (bin/, .cache/,
# the Go build cache); the steps still do every check in full, and build
# whatever is missing themselves. Prints what it did and how long each took.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
command -v go >/dev/null 2>&1 || export PATH="/usr/local/go/bin:$PATH"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-go$(scripts/ci/go-version.sh)}"

want=" $* "
has() { case "$want" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
timed() { # WHAT CMD...
  local what=$1 t0=$SECONDS
  shift
  if "$@"; then
    echo "prebuild: $what in $((SECONDS - t0))s"
  else
    echo "prebuild: $what FAILED after $((SECONDS - t0))s (the step will build it itself and say why)"
  fi
}

tools=()
has lint && tools+=(golangci-lint)
has vuln && tools+=(govulncheck)
has chart && tools+=(kubeconform)
has ops && tools+=(promtool)
has actionlint && tools+=(actionlint)
# One tool at a time: the test step runs beside this, on the same cores.
for t in ${tools[@]+"${tools[@]}"}; do
  timed "$t" tools/install.sh "$t"
done
if has chart; then
  timed "chart schemas" bash scripts/chart/test.sh --prepare
fi
if has ops || has e2e; then
  timed "make build" make -s build
fi
if has ops; then
  timed "pkg/opscheck tests compiled" bash -c 'cd pkg/opscheck && GOWORK=off go test -c -o /dev/null .'
fi
if has e2e; then
  timed "e2e suite compiled" go test -c -o /dev/null ./e2e
fi
echo "prebuild: all in ${SECONDS}s"
