#!/usr/bin/env bash
# Runs the black-box e2e suite (e2e/) against a complete local system and
# tears it down again, whatever happens:
#
#   - a throwaway Postgres cluster (initdb into a temporary directory, its own
#     port), which the suite may stop, start and restart;
#   - the fake upstream, the ingester (serve, scheduled hourly so that only
#     the suite's ingests matter) and two API replicas with a long cache TTL,
#     as local processes (scripts/e2e-containers.sh runs them as containers);
#   - PgBouncer in transaction pooling mode in front of that cluster, through
#     which replica 2 makes its reads (DATABASE_READ_URL); its LISTEN stays
#     on DATABASE_URL, the cluster itself;
#   - go test ./e2e/... with E2E_* describing all of that.
#
# Exits with the suite's status. Logs go to a temporary directory, printed
# (the tail) and kept on failure. Extra arguments go to go test, e.g.
#   scripts/e2e.sh -run TestDatabaseRestart
# With --serve it starts the same system, prints the E2E_* variables to run
# the suite by hand (go test ./e2e/...) and waits for Ctrl-C.
# INGEST_SCHEDULE overrides the ingester's schedule (default @every 1h).
# Needs Go, PostgreSQL's server binaries and PgBouncer (installed through
# scripts/ensure-postgres.sh and scripts/ensure-pgbouncer.sh when missing);
# no Docker, no curl. What it shares with the container run is in
# scripts/lib/e2e.sh.
# PID_<name> and functions are used through indirection (component_alive).
# shellcheck disable=SC2034,SC2317
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/e2e.sh
. scripts/lib/e2e.sh
if $SERVE; then shift; fi

component_alive() { # NAME: its process still runs
  local pid_var="PID_$1"
  alive "$1" "${!pid_var}"
}

say "building the binaries"
make -s build
for b in api ingester fakeupstream; do [ -x "bin/$b" ] || die "bin/$b was not built"; done

e2e_postgres
export DATABASE_URL
say "applying migrations"
bin/ingester migrate >"$LOGS/migrate.log" 2>&1 || die "migrate failed; see $LOGS/migrate.log"
e2e_pgbouncer

say "starting the fake upstream"
FAKE_ADDR=127.0.0.1:0 bin/fakeupstream >"$WORK/fake.url" 2>>"$LOGS/fake.log" &
PIDS+=($!)
PID_fake=$!
wait_until 15 "the fake upstream printing its URL" grep -q '^http' "$WORK/fake.url"
UPSTREAM_URL=$(head -n 1 "$WORK/fake.url")
FAKE_HP=${UPSTREAM_URL#http://}
FAKE_HP=${FAKE_HP%%/*}

mapfile -t INGEST_ENV < <(ingest_env "$UPSTREAM_URL")
# One ingest, and one plan, as `make reingest` and `make plan` run them;
# the suite appends flags (--force; --json, --limit N).
for cmd in once plan; do
  {
    echo '#!/bin/sh'
    case $cmd in
      once) echo '# One ingest: exit 0 ok, 1 failed, 3 locked, 4 refused by the mass-delete guard.' ;;
      plan) echo '# What an ingest would change, writing nothing: exit 0 accepted, 4 refused, 1 failed.' ;;
    esac
    printf 'exec env'
    printf ' %q' "${INGEST_ENV[@]}" LOG_LEVEL=warn "$ROOT/bin/ingester" "$cmd"
    # shellcheck disable=SC2016 # "$@" is for the generated script
    echo ' "$@"'
  } >"$WORK/ingest-$cmd.sh"
done

INGESTER_PORT=$(free_port)
say "starting the ingester (metrics on 127.0.0.1:$INGESTER_PORT)"
start ingester env "${INGEST_ENV[@]}" INGEST_SCHEDULE="$INGEST_SCHEDULE" \
  METRICS_ADDR="127.0.0.1:$INGESTER_PORT" bin/ingester serve

API_URLS=""
REPLICA_READ_API_URLS=""
for i in 1 2; do
  port=$(free_port)
  mapfile -t env_api < <(api_env "$port")
  if [ "$i" = 2 ]; then
    env_api+=(DATABASE_READ_URL="$READ_URL")
    say "starting API replica $i on 127.0.0.1:$port (reads through PgBouncer)"
    REPLICA_READ_API_URLS="http://127.0.0.1:$port"
  else
    say "starting API replica $i on 127.0.0.1:$port"
  fi
  start "api$i" env "${env_api[@]}" bin/api
  API_URLS+="${API_URLS:+,}http://127.0.0.1:$port"
  eval "API_HP_$i=127.0.0.1:$port"
done

e2e_wait_ready
e2e_run_suite "$@"
