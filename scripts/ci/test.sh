#!/usr/bin/env bash
# Unit and integration tests with the race detector and a coverage report:
# every package of the root module (the e2e module needs a running system:
# scripts/e2e.sh, or the CI's kind job).
#
#   scripts/ci/test.sh [go test flags]
#
# Postgres: TEST_DATABASE_URL (CI: the service container), else found or
# started by scripts/ensure-postgres.sh; the topology tests (pkg/pgtest) also
# need PgBouncer and the server binaries (scripts/ensure-pgbouncer.sh). The chart tests (pkg/charttest) need
# the pinned helm, installed here. Writes .cache/coverage.out, prints the
# per-package and total coverage, and appends them to the GitHub job summary
# when GITHUB_STEP_SUMMARY is set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mkdir -p .cache
[ -f .cache/.gitignore ] || printf '*\n' >.cache/.gitignore

tools/install.sh helm >/dev/null
# The read-path tests start a primary, a hot standby and PgBouncer of their own.
scripts/ensure-pgbouncer.sh
export HELM="$root/bin/helm"
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL="$(scripts/ensure-postgres.sh)"
fi
export TEST_DATABASE_URL

profile=.cache/coverage.out
log=.cache/test.log
set +e
go test -race -count=1 -timeout 15m -covermode=atomic -coverprofile="$profile" "$@" ./... 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
[ "$status" = 0 ] || exit "$status"

total="$(go tool cover -func="$profile" | awk '$1 == "total:" { print $NF }')"
echo "coverage: $total of statements (profile: $profile; HTML: go tool cover -html=$profile)"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  {
    echo "### Test coverage: $total of statements"
    echo
    echo '| package | coverage |'
    echo '|---|---|'
    awk '$1 == "ok" && $0 ~ /coverage:/ { for (i = 1; i <= NF; i++) if ($i == "coverage:") print "| `" $2 "` | " $(i + 1) " |" }' "$log"
  } >>"$GITHUB_STEP_SUMMARY"
fi
