#!/usr/bin/env bash
# `make e2e-containers`: the black-box e2e suite (e2e/) against the system
# running as containers of the built images, each run the way the Helm chart
# runs it, and everything removed afterwards, whatever happens:
#
#   - the migrate command, the ingester (serve, hourly) and two API replicas
#     from rickmorty-ingester:$IMAGE_TAG and rickmorty-api:$IMAGE_TAG (make
#     images builds them), and the fake upstream (its static binary, mounted
#     read-only into the API image's file system, the runtime base);
#   - each with the chart's settings as docker run flags, taken from the
#     rendered chart by tools/chartdocker: --read-only, --user 65532:65532,
#     --cap-drop ALL, --security-opt no-new-privileges, the memory and CPU
#     limits, GOMEMLIMIT and GOMAXPROCS as the chart sets them, /tmp as a
#     tmpfs of the emptyDir's size (the fake upstream: the security settings
#     only);
#   - on the host network, listening on 127.0.0.1 only;
#   - against the throwaway Postgres cluster and PgBouncer that
#     scripts/e2e.sh uses (local processes: the suite stops and restarts the
#     database, and replica 2 reads through PgBouncer);
#   - every container labelled org.rickmorty.e2e=<run> and removed by that
#     label at the end (its log kept with the others on failure).
#
#   scripts/e2e-containers.sh [--serve] [go test flags]
#
# Needs a Docker engine (make runs it through scripts/docker/with-engine.sh);
# where none runs it says so and exits 0 (the e2e step runs the same suite
# against processes), or 1 with DOCKER_REQUIRED=1.
# shellcheck disable=SC2034,SC2317 # PID_/API_HP_ variables and functions used through indirection
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/docker/lib.sh
. scripts/docker/lib.sh
if ! engine_answers; then
  if [ "${DOCKER_REQUIRED:-}" = 1 ]; then
    echo "e2e-containers: no Docker engine answers and DOCKER_REQUIRED=1" >&2
    exit 1
  fi
  echo "e2e-containers: NO DOCKER ENGINE: the containers are not run (make e2e runs the suite against local processes)" >&2
  exit 0
fi
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
if $SERVE; then shift; fi

IMAGE_TAG=${IMAGE_TAG:-dev}
API_IMAGE=rickmorty-api:$IMAGE_TAG
INGESTER_IMAGE=rickmorty-ingester:$IMAGE_TAG
RUN_ID=e2e-$$-$RANDOM
LABEL=org.rickmorty.e2e=$RUN_ID

for image in "$API_IMAGE" "$INGESTER_IMAGE"; do
  docker image inspect "$image" >/dev/null 2>&1 || die "$image is not in the Docker engine: make images builds it"
done

remove_containers() {
  local id name
  for id in $(docker ps -aq --filter "label=$LABEL"); do
    name=$(docker inspect -f '{{index .Config.Labels "org.rickmorty.e2e.component"}}' "$id" 2>/dev/null || echo "$id")
    docker logs "$id" >>"$LOGS/$name.log" 2>&1 || true
    docker rm -f "$id" >/dev/null 2>&1 || true
  done
  say "removed the containers labelled $LABEL"
}
on_teardown remove_containers

component_alive() { # NAME: its container still runs
  [ "$(docker inspect -f '{{.State.Running}}' "$RUN_ID-$1" 2>/dev/null)" = true ] ||
    die "$1 exited during start-up; see its log below"
}

# The chart's settings, one docker run argument per line.
chart_flags() { # WORKLOAD CONTAINER [-security-only]
  "$WORK/chartdocker" -workload "$1" -container "$2" ${3:+"$3"}
}
tools/install.sh helm >/dev/null
export HELM=$PWD/bin/helm
go build -o "$WORK/chartdocker" ./tools/chartdocker
mapfile -t API_FLAGS < <(chart_flags Deployment/rickmorty-api api)
mapfile -t INGESTER_FLAGS < <(chart_flags Deployment/rickmorty-ingester ingester)
mapfile -t MIGRATE_FLAGS < <(chart_flags Job/rickmorty-migrate ingester)
mapfile -t SECURITY_FLAGS < <(chart_flags Deployment/rickmorty-api api -security-only)
if [ ${#API_FLAGS[@]} -eq 0 ] || [ ${#INGESTER_FLAGS[@]} -eq 0 ] || [ ${#MIGRATE_FLAGS[@]} -eq 0 ] || [ ${#SECURITY_FLAGS[@]} -eq 0 ]; then
  die "tools/chartdocker gave no docker run flags (its error is above)"
fi
say "the chart's settings for the API: ${API_FLAGS[*]}"
say "the chart's settings for the ingester: ${INGESTER_FLAGS[*]}"

# env_flags VAR=value...: as --env arguments.
env_flags() {
  local kv
  for kv in "$@"; do printf '%s\n' --env "$kv"; done
}

# run_container NAME [docker run flags...] -- IMAGE [ARGS...]: detached, on
# the host network, labelled for the teardown.
run_container() {
  local name=$1
  shift
  docker run -d --name "$RUN_ID-$name" --label "$LABEL" --label "org.rickmorty.e2e.component=$name" \
    --network host "$@" >/dev/null
}

say "building the fake upstream"
make -s build
[ -x bin/fakeupstream ] || die "bin/fakeupstream was not built"

e2e_postgres
say "applying migrations (ingester migrate, as the chart's migration Job)"
docker run --rm --label "$LABEL" --network host "${MIGRATE_FLAGS[@]}" \
  --env "DATABASE_URL=$DATABASE_URL" "$INGESTER_IMAGE" migrate >"$LOGS/migrate.log" 2>&1 ||
  die "migrate failed; see $LOGS/migrate.log"
e2e_pgbouncer

FAKE_PORT=$(free_port)
FAKE_HP=127.0.0.1:$FAKE_PORT
UPSTREAM_URL=http://$FAKE_HP/api
say "starting the fake upstream on $FAKE_HP"
run_container fake "${SECURITY_FLAGS[@]}" \
  --volume "$ROOT/bin/fakeupstream:/usr/local/bin/fakeupstream:ro" --entrypoint /usr/local/bin/fakeupstream \
  --env "FAKE_ADDR=$FAKE_HP" "$API_IMAGE"

mapfile -t INGEST_ENV < <(ingest_env "$UPSTREAM_URL")
mapfile -t INGEST_ENV_FLAGS < <(env_flags "${INGEST_ENV[@]}")
# One ingest, and one plan, each in a container of the ingester image; the
# suite appends flags (--force; --json, --limit N).
for cmd in once plan; do
  {
    echo '#!/bin/sh'
    echo "# ingester $cmd in a container of the ingester image: exit 0 ok, 1 failed, 3 locked, 4 refused by the guard."
    printf 'exec'
    printf ' %q' "$DOCKER_CLI" run --rm --label "$LABEL" --label "org.rickmorty.e2e.component=$cmd" \
      --network host "${MIGRATE_FLAGS[@]}" "${INGEST_ENV_FLAGS[@]}" --env LOG_LEVEL=warn "$INGESTER_IMAGE" "$cmd"
    # shellcheck disable=SC2016 # "$@" is for the generated script
    echo ' "$@"'
  } >"$WORK/ingest-$cmd.sh"
done

INGESTER_PORT=$(free_port)
say "starting the ingester (metrics on 127.0.0.1:$INGESTER_PORT)"
run_container ingester "${INGESTER_FLAGS[@]}" "${INGEST_ENV_FLAGS[@]}" \
  --env "INGEST_SCHEDULE=$INGEST_SCHEDULE" --env "METRICS_ADDR=127.0.0.1:$INGESTER_PORT" \
  "$INGESTER_IMAGE" serve

API_URLS=""
REPLICA_READ_API_URLS=""
for i in 1 2; do
  port=$(free_port)
  mapfile -t env_api < <(api_env "$port")
  if [ "$i" = 2 ]; then
    env_api+=("DATABASE_READ_URL=$READ_URL")
    say "starting API replica $i on 127.0.0.1:$port (reads through PgBouncer)"
    REPLICA_READ_API_URLS="http://127.0.0.1:$port"
  else
    say "starting API replica $i on 127.0.0.1:$port"
  fi
  mapfile -t env_api_flags < <(env_flags "${env_api[@]}")
  run_container "api$i" "${API_FLAGS[@]}" "${env_api_flags[@]}" "$API_IMAGE"
  API_URLS+="${API_URLS:+,}http://127.0.0.1:$port"
  eval "API_HP_$i=127.0.0.1:$port"
done

e2e_wait_ready
docker ps --filter "label=$LABEL" --format '  {{.Names}}  {{.Image}}  {{.Status}}' >&2
e2e_run_suite "$@"
