# shellcheck shell=bash
# What scripts/e2e.sh (the system as local processes) and
# scripts/e2e-containers.sh (the system as containers) share: the work
# directory and the teardown, free ports and HTTP probes (scripts/lib/net.sh), the throwaway Postgres
# cluster the suite may stop and restart, PgBouncer in front of it, the
# readiness waits and the suite itself. Sourced, after `cd` to the
# repository root; the front-end defines:
#
#   component_alive NAME   fails (with a message) when component NAME died
#
# and registers its own teardown with `on_teardown FUNCTION`.
#
# Variables set here are read by the front-ends, and functions are called
# through traps and wait_until: shellcheck cannot see either.
# shellcheck disable=SC2034,SC2154,SC2317

set -euo pipefail
ROOT=$PWD
SERVE=false
if [ "${1:-}" = "--serve" ]; then SERVE=true; fi

say() { printf '\033[1me2e:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rickmorty-e2e.XXXXXX")
chmod 755 "$WORK" # the postgres user must reach its directory below
LOGS=$WORK/logs
mkdir -p "$LOGS"
PIDS=()
TEARDOWN=()
PG_CTL_STOP=""
PG_STOP_FILE=$WORK/ensure-postgres-stop
: >"$PG_STOP_FILE"
export PG_STOP_FILE
status=1

# on_teardown FUNCTION: run FUNCTION (newest first) when the script exits,
# before the processes and the database are stopped.
on_teardown() { TEARDOWN+=("$1"); }

e2e_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$status" = 0 ] || status=$rc
  say "tearing down"
  local i pid
  for ((i = ${#TEARDOWN[@]} - 1; i >= 0; i--)); do "${TEARDOWN[$i]}" || true; done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ -n "$PG_CTL_STOP" ]; then bash -c "$PG_CTL_STOP" >/dev/null 2>&1 || true; fi
  while read -r cmd; do
    [ -n "$cmd" ] && { bash -c "$cmd" >/dev/null 2>&1 || true; }
  done <"$PG_STOP_FILE"
  [ -f "$WORK/pg/postgres.log" ] && cp "$WORK/pg/postgres.log" "$LOGS/" 2>/dev/null
  rm -rf "$WORK/pg"
  if [ "$status" = 0 ]; then
    rm -rf "$WORK"
  else
    local f
    for f in "$LOGS"/*.log; do
      [ -s "$f" ] || continue
      printf '\n\033[1m== %s (last 30 lines)\033[0m\n' "${f#"$LOGS"/}" >&2
      tail -n 30 "$f" >&2
    done
    say "FAILED; the logs are kept in $LOGS"
  fi
  exit "$status"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=scripts/lib/net.sh
. scripts/lib/net.sh

# alive NAME PID: fails with the component's log when the process has exited.
alive() {
  kill -0 "$2" 2>/dev/null || die "$1 exited during start-up; see its log below"
}

# start NAME CMD...: a local process in the background, output to $LOGS/NAME.log.
start() {
  local name=$1
  shift
  "$@" >>"$LOGS/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}

# ------------------------------------------------------------- postgres
# e2e_postgres: a throwaway cluster (initdb into $WORK, its own port, as the
# postgres user when run as root) with a database rickmorty_e2e. Sets PGBIN,
# PGPORT, DATABASE_URL and the scripts that stop, start and restart it.
e2e_postgres() {
  pg_bindir() {
    local d
    if [ -n "${E2E_PG_BIN:-}" ]; then echo "$E2E_PG_BIN"; return 0; fi
    d=$(find /usr/lib/postgresql/*/bin -maxdepth 0 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    return 1
  }
  if ! PGBIN=$(pg_bindir); then
    say "PostgreSQL's server binaries are missing; installing them"
    scripts/ensure-postgres.sh >/dev/null || true
    PGBIN=$(pg_bindir) || die "no initdb found (install the postgresql package, or set E2E_PG_BIN to the directory holding initdb and pg_ctl)"
  fi

  # Postgres refuses to run as root: as root, the cluster belongs to the
  # postgres user (which the Debian package creates).
  if [ "$(id -u)" = 0 ]; then
    getent passwd postgres >/dev/null || die "running as root, but there is no postgres user to run the e2e cluster as"
    PG_USER=postgres
    if command -v runuser >/dev/null 2>&1; then AS_PG="runuser -u postgres --"; else AS_PG="sudo -u postgres"; fi
  else
    PG_USER=$(id -un)
    AS_PG=""
  fi
  local pgdir=$WORK/pg
  mkdir -p "$pgdir"
  chown "$PG_USER" "$pgdir"
  chmod 700 "$pgdir"
  local pgdata=$pgdir/data

  say "creating a throwaway PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') cluster"
  $AS_PG "$PGBIN/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --locale=C >"$LOGS/initdb.log" 2>&1 ||
    die "initdb failed; see $LOGS/initdb.log"
  # Throwaway: durability off for speed. Names sort by code point (C).
  cat >>"$pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pgdir'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  local pg_ctl="$AS_PG $PGBIN/pg_ctl -D $pgdata -l $pgdir/postgres.log -w -t 60" attempt
  PG_CTL_STOP="$pg_ctl -m immediate stop"
  for attempt in 1 2 3; do
    PGPORT=$(free_port)
    echo "port = $PGPORT" >>"$pgdata/postgresql.conf" # the last setting wins
    say "starting it on 127.0.0.1:$PGPORT"
    $pg_ctl start >"$LOGS/pg_ctl.log" 2>&1 && break
    [ "$attempt" = 3 ] && die "the e2e PostgreSQL did not start; see postgres.log below"
    say "it did not start (is the port taken?); trying another port"
  done

  "$PGBIN/psql" "postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable" -XAtqc "CREATE DATABASE rickmorty_e2e" >/dev/null
  DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/rickmorty_e2e?sslmode=disable"

  # The commands the suite runs to disturb the database. Files, not strings,
  # so that no quoting survives into the environment.
  printf '#!/bin/sh\nexec %s -m fast stop\n' "$pg_ctl" >"$WORK/db-stop.sh"
  printf '#!/bin/sh\nexec %s start\n' "$pg_ctl" >"$WORK/db-start.sh"
  printf '#!/bin/sh\nexec %s -m fast restart\n' "$pg_ctl" >"$WORK/db-restart.sh"
}

# ------------------------------------------------------------ pgbouncer
# e2e_pgbouncer: PgBouncer in transaction pooling mode in front of the
# cluster, a local process. Sets READ_URL (through it).
e2e_pgbouncer() {
  scripts/ensure-pgbouncer.sh || die "PgBouncer is missing and could not be installed"
  local pgbouncer dir
  pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  dir=$WORK/pgbouncer
  mkdir -p "$dir"
  BOUNCER_PORT=$(free_port)
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
rickmorty_e2e = host=127.0.0.1 port=$PGPORT dbname=rickmorty_e2e
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 200
server_reset_query =
; the suite restarts the database: log in again soon after it is back
server_login_retry = 1
pidfile =
INI
  echo '"postgres" ""' >"$dir/users.txt"
  chown -R "$PG_USER" "$dir"
  READ_URL="postgres://postgres@127.0.0.1:$BOUNCER_PORT/rickmorty_e2e?sslmode=disable"
  say "starting PgBouncer (transaction pooling) on 127.0.0.1:$BOUNCER_PORT"
  # shellcheck disable=SC2086 # AS_PG is a command prefix
  start pgbouncer $AS_PG "$pgbouncer" "$dir/pgbouncer.ini"
  bouncer_up() { alive pgbouncer "$PID_pgbouncer" && ! port_free "$BOUNCER_PORT"; }
  wait_until 15 "PgBouncer listening" bouncer_up
}

# ------------------------------------------------------- the components
# The settings both front-ends give the components.
#
# Failing upstream pages are retried briefly, so fault tests stay fast.
ingest_env() { # UPSTREAM_URL
  echo "DATABASE_URL=$DATABASE_URL"
  echo "UPSTREAM_URL=$1"
  printf '%s\n' UPSTREAM_RETRIES=2 UPSTREAM_RETRY_WAIT_MIN=10ms UPSTREAM_RETRY_WAIT_MAX=100ms \
    UPSTREAM_MAX_RETRY_AFTER=1s UPSTREAM_TIMEOUT=5s
}
# The ingester serves on a long schedule, so that only the suite's ingests matter.
INGEST_SCHEDULE=${INGEST_SCHEDULE:-@every 1h}
# The replicas allow one CORS origin and send shared-cache directives, both
# told to the suite (E2E_CORS_ORIGIN, E2E_CACHE_CONTROL) to check.
E2E_CORS_ORIGIN=https://app.e2e.example
E2E_CACHE_CONTROL="public, max-age=0, s-maxage=60, stale-if-error=3600"
api_env() { # PORT
  echo "DATABASE_URL=$DATABASE_URL"
  echo "HTTP_ADDR=127.0.0.1:$1"
  printf '%s\n' CACHE_TTL=1h SHUTDOWN_DRAIN_DELAY=0s SHUTDOWN_TIMEOUT=5s RATE_LIMIT_RPS=0 \
    "CORS_ALLOWED_ORIGINS=$E2E_CORS_ORIGIN" CACHE_CONTROL_S_MAXAGE=60s CACHE_CONTROL_STALE_IF_ERROR=1h
}

# component_ready NAME HOST:PORT PATH: NAME is alive and answers 200 there.
component_ready() {
  component_alive "$1"
  http_ok "$2" "$3"
}

# e2e_wait_ready: every component answers, and the ingester's first run (at
# its start) is done, so that it cannot race the suite. Needs FAKE_HP,
# API_HP_1, API_HP_2 and INGESTER_PORT.
e2e_wait_ready() {
  wait_until 30 "the fake upstream answering" component_ready fake "$FAKE_HP" /_fake/stats
  wait_until 30 "API replica 1 ready" component_ready api1 "$API_HP_1" /readyz
  wait_until 30 "API replica 2 ready" component_ready api2 "$API_HP_2" /readyz
  wait_until 30 "the ingester ready" component_ready ingester "127.0.0.1:$INGESTER_PORT" /readyz
  first_run_done() {
    component_alive ingester
    http_get "127.0.0.1:$INGESTER_PORT" /metrics |
      grep -Eq '^rickmorty_ingest_runs_total\{result="(success|failed)"\} [1-9]'
  }
  wait_until 60 "the ingester's first ingest" first_run_done
}

# ----------------------------------------------------------- the suite
# e2e_run_suite [go test flags]: exports E2E_* (from API_URLS,
# REPLICA_READ_API_URLS, INGESTER_PORT, FAKE_HP, $WORK/ingest-once.sh and
# $WORK/ingest-plan.sh) and
# runs the suite, or with --serve prints them and waits for Ctrl-C.
e2e_run_suite() {
  export E2E_API_URLS=$API_URLS
  export E2E_REPLICA_READ_API_URLS=$REPLICA_READ_API_URLS
  export E2E_INGESTER_METRICS_URL="http://127.0.0.1:$INGESTER_PORT/metrics"
  export E2E_FAKE_URL="http://$FAKE_HP"
  export E2E_INGEST_CMD="sh $WORK/ingest-once.sh"
  export E2E_PLAN_CMD="sh $WORK/ingest-plan.sh"
  export E2E_DB_RESTART_CMD="sh $WORK/db-restart.sh"
  export E2E_DB_STOP_CMD="sh $WORK/db-stop.sh"
  export E2E_DB_START_CMD="sh $WORK/db-start.sh"
  export E2E_NAME_ORDER=codepoint
  export E2E_CORS_ORIGIN E2E_CACHE_CONTROL
  unset DATABASE_URL # the suite is black-box: it gets no database URL
  if $SERVE; then
    say "the system is up; run the suite against it with (Ctrl-C here stops it):"
    local v
    for v in $(compgen -e | grep '^E2E_' | sort); do printf '  export %s=%q\n' "$v" "${!v}" >&2; done
    echo "  go test -count=1 -v ./e2e/..." >&2
    say "logs: $LOGS"
    status=0
    while :; do
      sleep 3600 &
      PIDS+=($!)
      wait $! || true
    done
  fi
  env | grep '^E2E_' | sort | sed 's/^/  /' >&2

  say "running the suite"
  local started=$SECONDS
  set +e
  go test -count=1 -v -timeout 10m ./e2e/... "$@" 2>&1 | tee "$LOGS/go-test.log"
  status=${PIPESTATUS[0]}
  set -e
  say "suite finished in $((SECONDS - started))s with status $status"
  exit "$status"
}
