#!/usr/bin/env bash
# Runs the whole system locally: Postgres, migrations, the fake upstream
# (offline, the default) or the real one (--real), the ingester on its
# schedule and the API. Ctrl-C stops what this script started, and only that.
#
#   scripts/demo.sh           offline, with the fake upstream and its data set
#   scripts/demo.sh --real    against UPSTREAM_URL (default: the public API)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=offline
[ "${1:-}" = "--real" ] && mode=real

API_ADDR=${DEMO_API_ADDR:-127.0.0.1:8080}
INGESTER_ADDR=${DEMO_INGESTER_ADDR:-127.0.0.1:9090}
FAKE_ADDR=${DEMO_FAKE_ADDR:-127.0.0.1:8081}
DB_NAME=${DEMO_DB_NAME:-rickmorty}
RUN_DIR=.run
mkdir -p "$RUN_DIR/logs"
: >"$RUN_DIR/pids"
PG_STOP_FILE="$PWD/$RUN_DIR/pg-stop"
: >"$PG_STOP_FILE"
export PG_STOP_FILE

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
die() { say "$*"; exit 1; }

cleanup() {
  trap - INT TERM EXIT
  say "stopping what the demo started"
  while read -r pid name; do
    kill -TERM "$pid" 2>/dev/null && say "  stopped $name (pid $pid)" || true
  done <"$RUN_DIR/pids"
  wait 2>/dev/null || true
  while read -r cmd; do
    [ -n "$cmd" ] && { say "  $cmd"; bash -c "$cmd" >/dev/null 2>&1 || true; }
  done <"$PG_STOP_FILE"
}
trap cleanup INT TERM EXIT

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for a in "$API_ADDR" "$INGESTER_ADDR" $([ $mode = offline ] && echo "$FAKE_ADDR"); do
  port_free "$a" || die "$a is already in use; stop what listens there or set DEMO_API_ADDR / DEMO_INGESTER_ADDR / DEMO_FAKE_ADDR"
done

say "building the binaries"
make -s build

# start NAME CMD...: runs a component in the background, its JSON log lines
# in .run/logs/NAME.log and, prefixed with its name, on this terminal.
start() {
  local name=$1; shift
  # exec: $! is the component itself, so the cleanup signals it directly.
  (exec "$@" > >(tee -a "$RUN_DIR/logs/$name.log" | sed -u "s/^/[$name] /") 2>&1) &
  echo "$! $name" >>"$RUN_DIR/pids"
}

# The database: DATABASE_URL if it answers, else a local or started server.
API_DATABASE_URL=
mask() { echo "$1" | sed -E 's#(://[^:/@]*:)[^@]*@#\1xxxxx@#'; }
command -v psql >/dev/null 2>&1 || scripts/ensure-postgres.sh >/dev/null || die "psql is needed; install postgresql-client"
if [ -n "${DATABASE_URL:-}" ] && ! psql "$DATABASE_URL" -XAtqc 'SELECT 1' >/dev/null 2>&1; then
  # The server may answer while the database does not exist yet: create it.
  target_db=$(echo "$DATABASE_URL" | sed -nE 's#^[a-z]+://[^/]+/([^?]+).*#\1#p')
  server_url=$(echo "$DATABASE_URL" | sed -E 's#^([a-z]+://[^/]+)/[^?]*#\1/postgres#')
  if [ -n "$target_db" ] && psql "$server_url" -XAtqc 'SELECT 1' >/dev/null 2>&1 \
    && psql "$server_url" -XAtqc "CREATE DATABASE \"$target_db\"" >/dev/null 2>&1; then
    say "created database $target_db on DATABASE_URL's server"
  else
    say "DATABASE_URL ($(mask "$DATABASE_URL")) does not answer; falling back to a local server"
    unset DATABASE_URL
  fi
fi
if [ -n "${DATABASE_URL:-}" ]; then
  say "using DATABASE_URL ($(mask "$DATABASE_URL"))"
else
  admin=$(scripts/ensure-postgres.sh) || die "no Postgres: see the message above"
  if [ "$(psql "$admin" -XAtqc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    psql "$admin" -XAtqc "CREATE DATABASE $DB_NAME" >/dev/null
  fi
  DATABASE_URL=$(echo "$admin" | sed -E "s#^([a-z]+://[^/]+)/[^?]*#\1/$DB_NAME#")
  say "using database $DB_NAME on $(echo "$admin" | sed -E 's#^[a-z]+://([^@]*@)?##; s#/.*##')"
fi
export DATABASE_URL

say "applying migrations"
LOG_LEVEL=warn bin/ingester migrate

# The API runs as a SELECT-only role (db/grants/api_readonly.sql) when the
# demo manages the database; with your own DATABASE_URL it uses that.
if [ -n "${admin:-}" ]; then
  psql "$DATABASE_URL" -XAtqc "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rickmorty_api') THEN
        CREATE ROLE rickmorty_api LOGIN PASSWORD 'rickmorty_api';
      END IF; END \$\$" >/dev/null
  # The parts of db/grants/; the last one (closing functions to PUBLIC)
  # needs a superuser, which the local server's postgres user is.
  grants=(api_readonly api_role)
  [ "$(psql "$DATABASE_URL" -XAtqc 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')" = t ] && grants+=(functions)
  for f in "${grants[@]}"; do
    psql "$DATABASE_URL" -Xq -v api_role=rickmorty_api -v dbname="$DB_NAME" \
      -v ingester_role="$(psql "$DATABASE_URL" -XAtqc 'SELECT current_user')" -f "db/grants/$f.sql" >/dev/null
  done
  API_DATABASE_URL=$(echo "$DATABASE_URL" | sed -E 's#^([a-z]+://)[^@/]*@#\1rickmorty_api:rickmorty_api@#')
  say "the API connects as the read-only role rickmorty_api"
fi

if [ $mode = offline ]; then
  start fake env FAKE_ADDR="$FAKE_ADDR" bin/fakeupstream
  UPSTREAM_URL="http://$FAKE_ADDR/api"
else
  UPSTREAM_URL=${UPSTREAM_URL:-https://rickandmortyapi.com/api}
fi
# For `make reingest` while the demo runs (local, development credentials).
printf 'DATABASE_URL=%q\nUPSTREAM_URL=%q\n' "$DATABASE_URL" "$UPSTREAM_URL" >"$RUN_DIR/env"

start ingester env UPSTREAM_URL="$UPSTREAM_URL" METRICS_ADDR="$INGESTER_ADDR" \
  INGEST_SCHEDULE="${INGEST_SCHEDULE:-@every 1m}" bin/ingester serve
start api env DATABASE_URL="${API_DATABASE_URL:-$DATABASE_URL}" HTTP_ADDR="$API_ADDR" SHUTDOWN_DRAIN_DELAY="${SHUTDOWN_DRAIN_DELAY:-0s}" CACHE_TTL="${CACHE_TTL:-5m}" bin/api

wait_for() { # URL SECONDS WHAT
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "$3 did not answer $1 within $2s; see $RUN_DIR/logs/"
    sleep 0.3
  done
}
wait_for "http://$API_ADDR/readyz" 60 "the API"
deadline=$((SECONDS + 30))
until [ "$(curl -fsS "http://$API_ADDR/characters?page_size=1" 2>/dev/null | sed -nE 's/.*"total_count":([0-9]+).*/\1/p')" -gt 0 ] 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { say "the API is up but has no characters yet; the first ingest may still be running (see $RUN_DIR/logs/ingester.log)"; break; }
  sleep 0.3
done

example_id=$(curl -fsS "http://$API_ADDR/characters?page_size=1" 2>/dev/null | sed -nE 's/.*"results":\[\{"id":([0-9]+).*/\1/p')

cat <<MSG

$(say "rickmorty is running ($mode). Ctrl-C stops it.")
  API           http://$API_ADDR/characters
  API docs      http://$API_ADDR/docs  (contract: /openapi.json)
  API health    http://$API_ADDR/healthcheck
  API metrics   http://$API_ADDR/metrics
  ingester      http://$INGESTER_ADDR/metrics
$([ $mode = offline ] && echo "  fake upstream http://$FAKE_ADDR/api/character  (controls: http://$FAKE_ADDR/_fake/)")
  logs          $RUN_DIR/logs/

Try:
  curl -s 'http://$API_ADDR/characters?sort=name&order=desc&page_size=5'
  curl -s 'http://$API_ADDR/characters/$example_id'
  curl -s 'http://$API_ADDR/healthcheck'
Re-ingest now, outside the schedule (in another terminal):
  make plan       # what it would change (writes nothing)
  make reingest
  make runs       # the run history

MSG
wait
