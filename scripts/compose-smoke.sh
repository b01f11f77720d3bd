#!/usr/bin/env bash
# `make compose-smoke`: docker-compose.yml's core stack up with the local
# images, a smoke test through it, and `down -v`, whatever happens.
#
#   - Postgres from POSTGRES_IMAGE (default: the stand-in built from Debian's
#     packages, scripts/docker/base-images.sh), the one-shot migrate and
#     api-role services, the ingester and the API from rickmorty-*:dev
#     (make images; nothing is built or pulled: --no-build), and the fake
#     upstream (scripts/compose-smoke.yml) for the ingester to crawl;
#   - its own project name and free host ports on 127.0.0.1 (API_PORT,
#     INGESTER_PORT), so a running `docker compose up` is not disturbed;
#   - checks: the API becomes ready and serves the 124 characters the
#     ingester stored, sorted pages and an item; /healthcheck is ok; the
#     ingester's metrics count a successful run; `docker-compose run --rm
#     ingester once` (the documented manual re-ingest) succeeds; the
#     application containers run as 65532.
#
# The observability profile (Prometheus, Grafana) is only validated
# (`compose config`, the compose step of scripts/ci/local.sh): Debian
# packages no Grafana to build a stand-in from.
#
# Needs a Docker engine and docker-compose (Debian's, installed when
# missing); where no engine runs it says so and exits 0, or 1 with
# DOCKER_REQUIRED=1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/docker/lib.sh
. scripts/docker/lib.sh

say() { printf '\033[1mcompose-smoke:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
# shellcheck source=scripts/lib/net.sh
. scripts/lib/net.sh

if ! engine_answers; then
  [ "${DOCKER_REQUIRED:-}" != 1 ] || die "no Docker engine answers and DOCKER_REQUIRED=1"
  say "NO DOCKER ENGINE: the stack is not started (the compose step still validates the file)"
  exit 0
fi
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "docker-compose is missing (apt-get install docker-compose)"
  fi
  say "installing Debian's docker-compose"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose; } >&2
fi

for image in rickmorty-api:dev rickmorty-ingester:dev; do
  docker image inspect "$image" >/dev/null 2>&1 || die "$image is not in the Docker engine: make images builds it"
done
if [ -z "${POSTGRES_IMAGE:-}" ]; then
  POSTGRES_IMAGE=$(scripts/docker/base-images.sh | sed -n 's/^POSTGRES_IMAGE=//p')
fi
say "building the fake upstream"
make -s build
[ -x bin/fakeupstream ] || die "bin/fakeupstream was not built"

export POSTGRES_IMAGE
export UPSTREAM_URL=http://fakeupstream:8081/api
export INGEST_SCHEDULE="@every 1h"
API_PORT=$(free_port)
INGESTER_PORT=$(free_port)
export API_PORT INGESTER_PORT
project=rickmorty-smoke-$$
compose() { docker-compose -p "$project" -f docker-compose.yml -f scripts/compose-smoke.yml "$@"; }

status=1
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$status" = 0 ] || status=$rc
  if [ "$status" != 0 ]; then
    say "FAILED; the services' last log lines:"
    compose logs --no-color --tail 30 >&2 2>&1 || true
  fi
  say "docker-compose down -v"
  compose down -v --remove-orphans >&2 2>&1 || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$SECONDS
say "up (project $project, POSTGRES_IMAGE=$POSTGRES_IMAGE, API on 127.0.0.1:$API_PORT, ingester on 127.0.0.1:$INGESTER_PORT)"
compose up -d --no-build >&2
API=127.0.0.1:$API_PORT
ING=127.0.0.1:$INGESTER_PORT
wait_until 120 "the API ready" http_ok "$API" /readyz
say "the API is ready after $((SECONDS - t0))s"

body() { http_get "$1" "$2" | sed '1,/^\r\{0,1\}$/d'; }
stored() { body "$API" '/characters?page_size=1' | grep -q '"total_count":124,'; }
wait_until 120 "the ingester's first ingest served by the API (124 characters)" stored
say "ok: the API serves the 124 characters the ingester stored ($((SECONDS - t0))s after up)"

check() { # WHAT CMD...
  local what=$1
  shift
  if "$@"; then say "ok: $what"; else die "$what: failed"; fi
}
page=$(body "$API" '/characters?sort=name&order=desc&page_size=5')
check "a sorted page of 5" test "$(grep -o '"id":' <<<"$page" | wc -l)" = 5
check "GET /characters/1" http_ok "$API" /characters/1
check "/healthcheck ok" grep -q '"status":"ok"' < <(body "$API" /healthcheck)
check "the ingester counts a successful run" grep -Eq '^rickmorty_ingest_runs_total\{result="success"\} [1-9]' < <(http_get "$ING" /metrics)
once=$(compose run --rm --no-deps ingester once 2>&1 | tail -n 1)
check "docker-compose run --rm ingester once: $once" grep -q '^ingest ok' <<<"$once"
for s in api ingester; do
  id=$(compose ps -q "$s")
  check "$s runs as $(docker inspect -f '{{.Config.User}}' "$id")" test "$(docker inspect -f '{{.Config.User}}' "$id")" = 65532:65532
done

status=0
say "passed in $((SECONDS - t0))s"
