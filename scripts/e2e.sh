#!/usr/bin/env bash
# Runs the black-box e2e suite (e2e/) against a complete local system and
# tears it down again, whatever happens:
#
#   - a throwaway Postgres cluster (initdb into a temporary directory, its own
#     port), which the suite may stop, start and restart;
#   - the fake upstream, the ingester (serve, scheduled hourly so that only
#     the suite's ingests matter) and two API replicas with a long cache TTL;
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
# no Docker, no curl.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SERVE=false
if [ "${1:-}" = "--serve" ]; then SERVE=true; shift; fi

say() { printf '\033[1me2e:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rickmorty-e2e.XXXXXX")
chmod 755 "$WORK" # the postgres user must reach its directory below
LOGS=$WORK/logs
mkdir -p "$LOGS"
PIDS=()
PG_CTL_STOP=""
PG_STOP_FILE=$WORK/ensure-postgres-stop
: >"$PG_STOP_FILE"
export PG_STOP_FILE
status=1

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$status" = 0 ] || status=$rc
  say "tearing down"
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
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
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Ports are picked below the kernel's ephemeral range, which outgoing
# connections use: a port nobody listens on may still be taken there.
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if [ "${EPHEMERAL_LOW:-0}" -gt 21000 ] 2>/dev/null; then PORT_BASE=20000 PORT_SPAN=$((EPHEMERAL_LOW - 20000)); else PORT_BASE=10000 PORT_SPAN=9000; fi
USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((PORT_BASE + RANDOM % PORT_SPAN))
    case $USED_PORTS in *" $p "*) continue ;; esac
    if port_free "$p"; then USED_PORTS+="$p "; echo "$p"; return 0; fi
  done
  die "no free TCP port found on 127.0.0.1"
}

# http_get HOST:PORT PATH: prints the status line and body (HTTP/1.0, no curl).
http_get() {
  local hp=$1 path=$2
  (
    exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hp" >&3
    timeout 5 cat <&3
  ) 2>/dev/null
}
http_ok() { http_get "$1" "$2" | head -n 1 | grep -q '^HTTP/1\.[01] 200'; }

# alive NAME PID: fails with the component's log when it has exited.
alive() {
  kill -0 "$2" 2>/dev/null || die "$1 exited during start-up; see its log below"
}

wait_until() { # SECONDS WHAT CMD...
  local secs=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "$what: not within ${secs}s"
    sleep 0.2
  done
}

# ---------------------------------------------------------------- binaries
say "building the binaries"
make -s build
for b in api ingester fakeupstream; do [ -x "bin/$b" ] || die "bin/$b was not built"; done

# ---------------------------------------------------------------- postgres
pg_bindir() {
  local d
  if [ -n "${E2E_PG_BIN:-}" ]; then echo "$E2E_PG_BIN"; return 0; fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
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
PGDIR=$WORK/pg
mkdir -p "$PGDIR"
chown "$PG_USER" "$PGDIR"
chmod 700 "$PGDIR"
PGDATA=$PGDIR/data

say "creating a throwaway PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') cluster"
$AS_PG "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C >"$LOGS/initdb.log" 2>&1 ||
  die "initdb failed; see $LOGS/initdb.log"
# Throwaway: durability off for speed. Names sort by code point (C).
cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDIR'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
PG_CTL="$AS_PG $PGBIN/pg_ctl -D $PGDATA -l $PGDIR/postgres.log -w -t 60"
PG_CTL_STOP="$PG_CTL -m immediate stop"
for attempt in 1 2 3; do
  PGPORT=$(free_port)
  echo "port = $PGPORT" >>"$PGDATA/postgresql.conf" # the last setting wins
  say "starting it on 127.0.0.1:$PGPORT"
  $PG_CTL start >"$LOGS/pg_ctl.log" 2>&1 && break
  [ "$attempt" = 3 ] && die "the e2e PostgreSQL did not start; see postgres.log below"
  say "it did not start (is the port taken?); trying another port"
done

ADMIN_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/rickmorty_e2e?sslmode=disable"
"$PGBIN/psql" "$ADMIN_URL" -XAtqc "CREATE DATABASE rickmorty_e2e" >/dev/null
export DATABASE_URL

say "applying migrations"
bin/ingester migrate >"$LOGS/migrate.log" 2>&1 || die "migrate failed; see $LOGS/migrate.log"

# The commands the suite runs to disturb the database. Files, not strings,
# so that no quoting survives into the environment.
cat >"$WORK/db-stop.sh" <<SH
#!/bin/sh
exec $PG_CTL -m fast stop
SH
cat >"$WORK/db-start.sh" <<SH
#!/bin/sh
exec $PG_CTL start
SH
cat >"$WORK/db-restart.sh" <<SH
#!/bin/sh
exec $PG_CTL -m fast restart
SH

# ------------------------------------------------------------- pgbouncer
scripts/ensure-pgbouncer.sh || die "PgBouncer is missing and could not be installed"
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
BOUNCER_DIR=$WORK/pgbouncer
mkdir -p "$BOUNCER_DIR"
BOUNCER_PORT=$(free_port)
cat >"$BOUNCER_DIR/pgbouncer.ini" <<INI
[databases]
rickmorty_e2e = host=127.0.0.1 port=$PGPORT dbname=rickmorty_e2e
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $BOUNCER_DIR/users.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 200
server_reset_query =
; the suite restarts the database: log in again soon after it is back
server_login_retry = 1
pidfile =
INI
echo '"postgres" ""' >"$BOUNCER_DIR/users.txt"
chown -R "$PG_USER" "$BOUNCER_DIR"
READ_URL="postgres://postgres@127.0.0.1:$BOUNCER_PORT/rickmorty_e2e?sslmode=disable"

# ----------------------------------------------------------- the system
start() { # NAME CMD...: background, output to $LOGS/NAME.log
  local name=$1
  shift
  "$@" >>"$LOGS/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}

say "starting PgBouncer (transaction pooling) on 127.0.0.1:$BOUNCER_PORT"
start pgbouncer $AS_PG "$PGBOUNCER" "$BOUNCER_DIR/pgbouncer.ini"

say "starting the fake upstream"
FAKE_ADDR=127.0.0.1:0 bin/fakeupstream >"$WORK/fake.url" 2>>"$LOGS/fake.log" &
PIDS+=($!)
PID_fake=$!
wait_until 15 "the fake upstream printing its URL" grep -q '^http' "$WORK/fake.url"
UPSTREAM_URL=$(head -n 1 "$WORK/fake.url")
FAKE_HP=${UPSTREAM_URL#http://}
FAKE_HP=${FAKE_HP%%/*}

# Failing upstream pages are retried briefly, so fault tests stay fast.
INGEST_ENV=(
  DATABASE_URL="$DATABASE_URL" UPSTREAM_URL="$UPSTREAM_URL"
  UPSTREAM_RETRIES=2 UPSTREAM_RETRY_WAIT_MIN=10ms UPSTREAM_RETRY_WAIT_MAX=100ms
  UPSTREAM_MAX_RETRY_AFTER=1s UPSTREAM_TIMEOUT=5s
)
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
    echo ' "$@"'
  } >"$WORK/ingest-$cmd.sh"
done

INGESTER_PORT=$(free_port)
say "starting the ingester (metrics on 127.0.0.1:$INGESTER_PORT)"
start ingester env "${INGEST_ENV[@]}" INGEST_SCHEDULE="${INGEST_SCHEDULE:-@every 1h}" \
  METRICS_ADDR="127.0.0.1:$INGESTER_PORT" bin/ingester serve

API_URLS=""
for i in 1 2; do
  port=$(free_port)
  read_env=()
  if [ "$i" = 2 ]; then
    read_env=(DATABASE_READ_URL="$READ_URL")
    say "starting API replica $i on 127.0.0.1:$port (reads through PgBouncer)"
    export E2E_REPLICA_READ_API_URLS="http://127.0.0.1:$port"
  else
    say "starting API replica $i on 127.0.0.1:$port"
  fi
  start "api$i" env DATABASE_URL="$DATABASE_URL" "${read_env[@]}" HTTP_ADDR="127.0.0.1:$port" \
    CACHE_TTL=1h SHUTDOWN_DRAIN_DELAY=0s SHUTDOWN_TIMEOUT=5s RATE_LIMIT_RPS=0 bin/api
  API_URLS+="${API_URLS:+,}http://127.0.0.1:$port"
  eval "API_HP_$i=127.0.0.1:$port"
done

ready() { # NAME PID HOST:PORT PATH
  alive "$1" "$2"
  http_ok "$3" "$4"
}
wait_until 30 "the fake upstream answering" ready fake "$PID_fake" "$FAKE_HP" /_fake/stats
bouncer_up() { alive pgbouncer "$PID_pgbouncer" && ! port_free "$BOUNCER_PORT"; }
wait_until 15 "PgBouncer listening" bouncer_up
wait_until 30 "API replica 1 ready" ready api1 "$PID_api1" "$API_HP_1" /readyz
wait_until 30 "API replica 2 ready" ready api2 "$PID_api2" "$API_HP_2" /readyz
wait_until 30 "the ingester ready" ready ingester "$PID_ingester" "127.0.0.1:$INGESTER_PORT" /readyz
# The ingester's first run, at its start, done (so it cannot race the suite).
first_run_done() {
  alive ingester "$PID_ingester"
  http_get "127.0.0.1:$INGESTER_PORT" /metrics |
    grep -Eq '^rickmorty_ingest_runs_total\{result="(success|failed)"\} [1-9]'
}
wait_until 60 "the ingester's first ingest" first_run_done

# ----------------------------------------------------------- the suite
export E2E_API_URLS=$API_URLS
export E2E_INGESTER_METRICS_URL="http://127.0.0.1:$INGESTER_PORT/metrics"
export E2E_FAKE_URL="http://$FAKE_HP"
export E2E_INGEST_CMD="sh $WORK/ingest-once.sh"
export E2E_PLAN_CMD="sh $WORK/ingest-plan.sh"
export E2E_DB_RESTART_CMD="sh $WORK/db-restart.sh"
export E2E_DB_STOP_CMD="sh $WORK/db-stop.sh"
export E2E_DB_START_CMD="sh $WORK/db-start.sh"
export E2E_NAME_ORDER=codepoint
unset DATABASE_URL # the suite is black-box: it gets no database URL
if $SERVE; then
  say "the system is up; run the suite against it with (Ctrl-C here stops it):"
  for v in $(compgen -e | grep '^E2E_' | sort); do printf '  export %s=%q\n' "$v" "${!v}" >&2; done
  echo "  go test -count=1 -v ./e2e/..." >&2
  say "logs: $LOGS"
  status=0
  wait
  exit 0
fi
env | grep '^E2E_' | sort | sed 's/^/  /' >&2

say "running the suite"
started=$SECONDS
set +e
go test -count=1 -v -timeout 10m ./e2e/... "$@" 2>&1 | tee "$LOGS/go-test.log"
status=${PIPESTATUS[0]}
set -e
say "suite finished in $((SECONDS - started))s with status $status"
exit "$status"
