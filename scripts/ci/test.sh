#!/usr/bin/env bash
# Unit and integration tests with the race detector and a coverage report:
# every package of the root module (the e2e module needs a running system:
# scripts/e2e.sh, or the CI's kind job).
#
#   scripts/ci/test.sh [go test flags]
#
# Postgres, chosen by PGTEST_DB:
#   server (the default)  TEST_DATABASE_URL (CI: the service container), else
#                         found or started by scripts/ensure-postgres.sh;
#   container             pkg/pgtest's testcontainers path: TEST_DATABASE_URL
#                         is unset for the tests, and each test binary starts
#                         a Postgres container from PGTEST_IMAGE (default: the
#                         stand-in localhost/rickmorty/postgres:15, built by
#                         scripts/docker/base-images.sh when missing). Without
#                         an engine answering, this script runs itself through
#                         scripts/docker/with-engine.sh; where no engine can
#                         run it says so loudly and uses the server, unless
#                         DOCKER_REQUIRED=1 (.ci/run), which fails instead.
# The topology tests (pkg/pgtest) also need PgBouncer and the server
# binaries (scripts/ensure-pgbouncer.sh), whichever the mode; the browser
# tests Chromium (scripts/ensure-chromium.sh; their screenshots go to
# .cache/artifacts, or $ARTIFACTS_DIR). The chart tests (pkg/charttest) need
# the pinned helm, installed here while the other packages' tests build and
# run (a first build of helm takes minutes), and run once it is there. Writes
# .cache/coverage.out, prints the per-package and total coverage, and appends
# them to the GitHub job summary when GITHUB_STEP_SUMMARY is set.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

PGTEST_DB=${PGTEST_DB:-server}
case $PGTEST_DB in
  server) ;;
  container)
    if [ -n "${PGTEST_NO_DOCKER:-}" ]; then
      echo "test: PGTEST_DB=container and PGTEST_NO_DOCKER is set: pick one" >&2
      exit 2
    fi
    # shellcheck source=scripts/docker/lib.sh
    . scripts/docker/lib.sh
    if ! engine_answers && [ -z "${DOCKER_ENGINE:-}" ]; then
      # Not yet through with-engine.sh (which sets DOCKER_ENGINE): find or start one.
      exec scripts/docker/with-engine.sh "$root/scripts/ci/test.sh" "$@"
    fi
    if engine_answers; then
      if [ -n "${TEST_DATABASE_URL:-}" ]; then
        echo "test: PGTEST_DB=container: TEST_DATABASE_URL is unset for the Go tests (it would win over the container)"
        unset TEST_DATABASE_URL
      fi
      if [ -z "${PGTEST_IMAGE:-}" ]; then
        PGTEST_IMAGE=$(scripts/docker/base-images.sh --names | sed -n 's/^PGTEST_IMAGE=//p')
      fi
      if ! docker image inspect "$PGTEST_IMAGE" >/dev/null 2>&1 && [[ "$PGTEST_IMAGE" == localhost/rickmorty/* ]]; then
        echo "test: $PGTEST_IMAGE is missing: building the stand-in bases (scripts/docker/base-images.sh)"
        scripts/docker/base-images.sh >/dev/null
      fi
      export PGTEST_IMAGE
      echo "test: Postgres tests through testcontainers: one container per test binary from $PGTEST_IMAGE (DOCKER_HOST=${DOCKER_HOST:-the default socket})"
    elif [ "${DOCKER_REQUIRED:-}" = 1 ]; then
      loud "PGTEST_DB=container, DOCKER_REQUIRED=1 and no Docker engine answers: failing."
      exit 1
    else
      loud "PGTEST_DB=container but NO DOCKER ENGINE answers:" \
        "the Postgres tests use a server instead (TEST_DATABASE_URL, scripts/ensure-postgres.sh)."
      PGTEST_DB=server
    fi
    ;;
  *)
    echo "test: PGTEST_DB='$PGTEST_DB': want server or container" >&2
    exit 2
    ;;
esac

mkdir -p .cache
[ -f .cache/.gitignore ] || printf '*\n' >.cache/.gitignore

# helm, for pkg/charttest and the TestChart… tests of other packages (the
# settings' drift checks; configtest.Helm enforces the name). When it has to
# be built (a first run), that happens in the background, at low priority,
# while the other tests build and run, and those run once it is there;
# otherwise every test runs at once.
helm_pid=""
if tools/install.sh --check helm; then
  tools/install.sh helm >/dev/null
else
  echo "test: building helm in the background (.cache/helm-install.log); pkg/charttest runs after the other packages"
  nice -n 10 tools/install.sh helm >.cache/helm-install.log 2>&1 &
  helm_pid=$!
fi
# The read-path tests start a primary, a hot standby and PgBouncer of their own.
scripts/ensure-pgbouncer.sh
# The browser tests (cmd/api: /docs, CORS) drive a headless Chromium, installed
# when missing; SKIP_BROWSER_TESTS=1 skips them instead.
if [ "${SKIP_BROWSER_TESTS:-}" != 1 ]; then
  CHROMIUM="$(scripts/ensure-chromium.sh)"
  export CHROMIUM
fi
export HELM="$root/bin/helm"
if [ "$PGTEST_DB" = server ]; then
  if [ -z "${TEST_DATABASE_URL:-}" ]; then
    TEST_DATABASE_URL="$(scripts/ensure-postgres.sh)"
  fi
  export TEST_DATABASE_URL
fi

profile=.cache/coverage.out
log=.cache/test.log
chart_pkg=github.com/rickmorty/rickmorty/pkg/charttest
pkgs=(./...)
later=()
if [ -n "$helm_pid" ]; then
  mapfile -t pkgs < <(go list ./... | grep -vx "$chart_pkg")
  later=(-skip '^TestChart')
fi
flags=(-race -count=1 -timeout 15m -covermode=atomic)
set +e
go test "${flags[@]}" ${later[@]+"${later[@]}"} -coverprofile="$profile" "$@" "${pkgs[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ -n "$helm_pid" ]; then
  if ! wait "$helm_pid"; then
    cat .cache/helm-install.log >&2
    echo "test: installing helm failed; pkg/charttest cannot run" >&2
    exit 1
  fi
  [ "$status" = 0 ] || exit "$status"
  # pkg/charttest holds tests only (no statements to cover), and the other
  # TestChart… tests cover little: their profile is not merged.
  mapfile -t helm_pkgs < <(git grep -l 'configtest.Helm\|configtest.CheckChart' -- '*_test.go' | xargs -n1 dirname | sort -u | sed 's|^|./|')
  set +e
  go test "${flags[@]}" "$@" "$chart_pkg" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  if [ "$status" = 0 ]; then
    go test "${flags[@]}" -run '^TestChart' "$@" "${helm_pkgs[@]}" 2>&1 | tee -a "$log"
    status=${PIPESTATUS[0]}
  fi
  set -e
fi
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
