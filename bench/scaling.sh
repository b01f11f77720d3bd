#!/usr/bin/env bash
# Horizontal-scaling run on loopback, bounded in time and self-cleaning:
#
#   a throwaway Postgres cluster (pg_stat_statements loaded), migrated,
#   filled by one `ingester once` from the fake upstream; PODS API processes
#   (CACHE_TTL=1h) under wrk, which cycles over a set of hot keys (list
#   queries and item ids), one wrk thread per pod. Per scenario (reads on the
#   primary, then DATABASE_READ_URL through PgBouncer in transaction mode),
#   REPEAT times each:
#     unchanged  an ingest that changes nothing, during traffic: the API
#                role's statements (pg_stat_statements) and the pods' own
#                query counters, invalidations, hit ratio. Target 0, 0, 100%.
#     change     a character changed in the fake, then an ingest during
#                traffic: list/get queries per pod (target: at most one per
#                hot key per pod, singleflight) and how long until every pod
#                serves the new ETag.
#   Then the query-mode cost: one uncached API (CACHE_TTL=0) reading with
#   pgx's default statement cache (no DATABASE_READ_URL), through
#   DATABASE_READ_URL to the same database (describe-cache mode, unnamed
#   statements), and through PgBouncer (transaction mode).
#
# Usage: bench/scaling.sh
#   env: PODS=4 DURATION=8 (s per measured wrk run) WARMUP=3 CONC=16 (wrk
#   connections over all pods) REPEAT=2 HOT_LISTS=20 HOT_ITEMS=20
#   PGBOUNCER=1 MODES=1 (0 skips those parts), BIN=dir with prebuilt api,
#   ingester, fakeupstream and bench (bench/api) binaries (default: built).
# Needs Go, wrk, curl, PostgreSQL 15+ server binaries with pg_stat_statements,
# and pgbouncer for the PgBouncer parts. Only 127.0.0.1 is used.
# docs/scaling.md records runs and the capacity model built on them.
set -Eeuo pipefail
trap 'echo "bench/scaling.sh: line $LINENO: $BASH_COMMAND failed" >&2' ERR
cd "$(dirname "$0")/.."

PODS=${PODS:-4}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-3}
CONC=${CONC:-16}
REPEAT=${REPEAT:-2}
HOT_LISTS=${HOT_LISTS:-20}
HOT_ITEMS=${HOT_ITEMS:-20}
PGBOUNCER=${PGBOUNCER:-1}
MODES=${MODES:-1}
BIN=${BIN:-}
INGEST_AT=2 # seconds into a measured wrk run when the ingest starts

say() { printf '\033[1mscaling:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

for tool in wrk curl; do
	command -v $tool >/dev/null || die "$tool is required (apt-get install wrk curl)"
done
[ "$DURATION" -ge $((INGEST_AT + 3)) ] || die "DURATION ($DURATION s) must leave the ingest at +${INGEST_AT}s time to run under traffic"
[ $((CONC % PODS)) = 0 ] || die "CONC ($CONC) must be a multiple of PODS ($PODS): one wrk thread per pod"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rickmorty-scaling.XXXXXX")
chmod 755 "$WORK" # the postgres user must reach its directories below
PIDS=()     # long-lived helpers: the fake upstream, PgBouncer
POD_PIDS=() # API processes, stopped between scenarios
WRK_PID=""
PG_CTL_STOP=""
STARTED=$SECONDS

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	for pid in $WRK_PID "${POD_PIDS[@]}" "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in $WRK_PID "${POD_PIDS[@]}" "${PIDS[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [ -s "$WORK/pgbouncer/pgbouncer.pid" ]; then kill -KILL "$(cat "$WORK/pgbouncer/pgbouncer.pid")" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	if [ -n "$PG_CTL_STOP" ]; then $PG_CTL_STOP >/dev/null 2>&1 || true; fi
	if [ "$rc" != 0 ]; then
		local f
		for f in "$WORK"/logs/*.log "$WORK/pg/postgres.log" "$WORK/pgbouncer/pgbouncer.log"; do
			case $f in */initdb.log | */pgbouncer.out.log) continue ;; esac
			[ -s "$f" ] || continue
			printf '\n== %s (last 15 lines)\n' "${f##*/}" >&2
			tail -n 15 "$f" >&2
		done
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$WORK/logs" "$WORK/bin"
LOGS=$WORK/logs

# free_port, port_free, wait_until: the same helpers as the e2e harness's.
# shellcheck source=scripts/lib/net.sh
. scripts/lib/net.sh

# ------------------------------------------------------------- binaries
if [ -n "$BIN" ]; then
	for b in api ingester fakeupstream bench; do [ -x "$BIN/$b" ] || die "BIN=$BIN has no $b"; done
else
	say "building"
	CGO_ENABLED=0 go build -o "$WORK/bin/" ./cmd/api ./cmd/ingester ./cmd/fakeupstream
	go build -o "$WORK/bin/bench" ./bench/api
	BIN=$WORK/bin
fi

# ------------------------------------------------------------- postgres
# shellcheck disable=SC2012 # Debian's version directories: plain names
PGBIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PGBIN/initdb" ] || die "no initdb found (install postgresql, or set PG_BIN)"
if [ "$(id -u)" = 0 ]; then # Postgres and PgBouncer refuse to run as root
	getent passwd postgres >/dev/null || die "running as root, but there is no postgres user"
	AS_PG="runuser -u postgres --"
	PG_USER=postgres
else
	AS_PG=""
	PG_USER=$(id -un)
fi
PGDIR=$WORK/pg
mkdir -p "$PGDIR"
chown "$PG_USER" "$PGDIR"
chmod 700 "$PGDIR"
say "throwaway PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') cluster"
$AS_PG "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$LOGS/initdb.log" 2>&1 ||
	die "initdb failed: $(tail -n 5 "$LOGS/initdb.log")"
PGPORT=$(free_port)
cat >>"$PGDIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDIR'
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
track_commit_timestamp = on
CONF
PG_CTL="$AS_PG $PGBIN/pg_ctl -D $PGDIR/data -l $PGDIR/postgres.log -w -t 60"
PG_CTL_STOP="$PG_CTL -m immediate stop"
$PG_CTL start >"$LOGS/pg_ctl.log" 2>&1 || die "postgres did not start"
PG_PID=$(head -n 1 "$PGDIR/data/postmaster.pid")

ADMIN_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
DB_URL="postgres://postgres@127.0.0.1:$PGPORT/rickmorty?sslmode=disable"
# The API connects as a SELECT-only role (db/grants), so pg_stat_statements
# tells its statements from the ingester's.
API_ROLE=rickmorty_api
API_DB_URL="postgres://$API_ROLE@127.0.0.1:$PGPORT/rickmorty?sslmode=disable"
psql_db() { "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 "$DB_URL" "$@"; }
"$PGBIN/psql" -XAtq "$ADMIN_URL" -c "CREATE DATABASE rickmorty" -c "CREATE ROLE $API_ROLE LOGIN"
DATABASE_URL=$DB_URL "$BIN/ingester" migrate >"$LOGS/migrate.log" 2>&1 || die "migrate failed"
# What db/grants gives the API role: SELECT on its four tables, read-only sessions.
psql_db -c "GRANT SELECT ON characters, data_version, ingest_runs, schema_migrations TO $API_ROLE" \
	-c "ALTER ROLE $API_ROLE SET default_transaction_read_only = on" >/dev/null
psql_db -c "CREATE EXTENSION pg_stat_statements" >/dev/null

# ------------------------------------------------------ fake + first ingest
FAKE_ADDR=127.0.0.1:0 "$BIN/fakeupstream" >"$WORK/fake.url" 2>"$LOGS/fake.log" &
PIDS+=($!)
wait_until 15 "the fake upstream printing its URL" grep -q '^http' "$WORK/fake.url"
UPSTREAM_URL=$(head -n 1 "$WORK/fake.url")
FAKE_ROOT=$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$UPSTREAM_URL")
{
	echo '#!/bin/sh'
	printf 'exec env DATABASE_URL=%q UPSTREAM_URL=%q LOG_LEVEL=warn %q once\n' "$DB_URL" "$UPSTREAM_URL" "$BIN/ingester"
} >"$WORK/ingest-once.sh"
chmod +x "$WORK/ingest-once.sh"
"$WORK/ingest-once.sh" >>"$LOGS/ingest.log" 2>&1 || die "the first ingest failed"
ROWS=$(psql_db -c "SELECT count(*) FROM characters")
say "ingested $ROWS characters (data version $(psql_db -c "SELECT version FROM data_version"))"

# ------------------------------------------------------------- pgbouncer
PGB_URL=""
PGB_PID=""
start_pgbouncer() {
	local dir=$WORK/pgbouncer port
	mkdir -p "$dir"
	port=$(free_port)
	cat >"$dir/pgbouncer.ini" <<INI
[databases]
rickmorty = host=127.0.0.1 port=$PGPORT dbname=rickmorty
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
server_reset_query =
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
	printf '"%s" ""\n"postgres" ""\n' "$API_ROLE" >"$dir/users.txt"
	chown -R "$PG_USER" "$dir"
	$AS_PG "$PGB" "$dir/pgbouncer.ini" >"$LOGS/pgbouncer.out.log" 2>&1 &
	PIDS+=($!)
	wait_until 15 "pgbouncer listening" port_busy "$port"
	PGB_URL="postgres://$API_ROLE@127.0.0.1:$port/rickmorty?sslmode=disable"
	wait_until 5 "pgbouncer's pid file" test -s "$dir/pgbouncer.pid"
	PGB_PID=$(cat "$dir/pgbouncer.pid")
	"$PGBIN/psql" -XAtq "$PGB_URL" -c "SELECT 1" >/dev/null || die "no query through pgbouncer"
}
port_busy() { ! port_free "$1"; }
PGB=$(command -v pgbouncer || ls /usr/sbin/pgbouncer 2>/dev/null || true)
if [ "$PGBOUNCER$MODES" != 00 ]; then
	if [ -n "$PGB" ]; then start_pgbouncer; else say "pgbouncer not installed: its parts are skipped"; fi
fi

# -------------------------------------------------------------- hot keys
# HOT_LISTS distinct list queries (canonical key order, so each is one
# cache key) and the first HOT_ITEMS ids.
HOT=()
for size in 20 10 50; do
	for page in 1 2 3; do
		for sort in id name created; do
			for order in asc desc; do
				if [ $(((page - 1) * size)) -lt "$ROWS" ] && [ ${#HOT[@]} -lt "$HOT_LISTS" ]; then
					HOT+=("/characters?sort=$sort&order=$order&page=$page&page_size=$size")
				fi
			done
		done
	done
done
[ ${#HOT[@]} = "$HOT_LISTS" ] || die "only ${#HOT[@]} list queries fit $ROWS rows"
while read -r id; do HOT+=("/characters/$id"); done < <(psql_db -c "SELECT id FROM characters ORDER BY id LIMIT $HOT_ITEMS")
HOT_KEYS=${#HOT[@]}
POLL_PATH=${HOT[0]}
CHANGE_ID=$(psql_db -c "SELECT id FROM characters ORDER BY id LIMIT 1")

# ------------------------------------------------------------------ pods
POD_PORTS=()
POD_URLS=""
start_pods() { # extra env for every pod...
	local i port
	POD_PORTS=()
	POD_URLS=""
	for i in $(seq 1 "$PODS"); do
		port=$(free_port)
		env DATABASE_URL="$API_DB_URL" HTTP_ADDR="127.0.0.1:$port" CACHE_TTL=1h RATE_LIMIT_RPS=0 LOG_LEVEL=warn \
			SHUTDOWN_DRAIN_DELAY=0s SHUTDOWN_TIMEOUT=5s "$@" "$BIN/api" >>"$LOGS/api-$i.log" 2>&1 &
		POD_PIDS+=($!)
		POD_PORTS+=("$port")
		POD_URLS+="${POD_URLS:+,}http://127.0.0.1:$port"
	done
	for port in "${POD_PORTS[@]}"; do
		wait_until 30 "API on $port ready" curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"
	done
}
stop_pods() {
	local pid
	for pid in "${POD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${POD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	POD_PIDS=()
}

# wrk: one thread per pod (setup() points each thread at its pod), every
# connection cycling through the hot keys from its own offset.
{
	echo 'local pods = {} -- the ports, filled in by write_lua'
	printf 'local paths = {\n'
	printf '  "%s",\n' "${HOT[@]}"
	printf '}\n'
	cat <<'LUA'
local n = 0
function setup(thread)
  n = n + 1
  thread:set("pod", n)
  thread.addr = wrk.lookup("127.0.0.1", pods[n])[1]
end
local i = 0
function init(args)
  i = (pod or 0) * 7
end
function request()
  i = i + 1
  return wrk.format(nil, paths[(i % #paths) + 1])
end
LUA
} >"$WORK/hot.lua.in"
write_lua() { # the current pods' ports into hot.lua
	local ports
	ports=$(printf '"%s",' "${POD_PORTS[@]}")
	sed "1s/.*/local pods = {$ports}/" "$WORK/hot.lua.in" >"$WORK/hot.lua"
}
run_wrk() { # SECONDS OUTFILE
	wrk -t"$PODS" -c"$CONC" -d"$1s" -s "$WORK/hot.lua" "http://127.0.0.1:${POD_PORTS[0]}/" >"$2" 2>&1
}

# cpu_ticks PID...: utime+stime, in clock ticks, of these processes and of
# their children (a postmaster's backends).
cpu_ticks() { # (cat, unlike awk, goes on past processes that exit meanwhile)
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v want=" $* " '{pid = $1; sub(/^.*\) /, "")
		if (index(want, " " pid " ") || index(want, " " $2 " ")) t += $12 + $13} END {print t + 0}'
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# Per pod, one line: pod hits misses invalidations list get data_version
# reads_primary reads_replica fallbacks cpu_ticks cache_version.
scrape() { # OUTFILE
	local i
	: >"$1"
	for i in "${!POD_PORTS[@]}"; do
		curl -fsS -m 10 "http://127.0.0.1:${POD_PORTS[$i]}/metrics" | awk -v pod=$((i + 1)) -v cpu="$(cpu_ticks "${POD_PIDS[$i]}")" '
			/^rickmorty_cache_hits_total / {h = $2}
			/^rickmorty_cache_misses_total / {m = $2}
			/^rickmorty_cache_invalidations_total / {inv = $2}
			/^rickmorty_db_query_duration_seconds_count\{query="list"\}/ {ql = $2}
			/^rickmorty_db_query_duration_seconds_count\{query="get"\}/ {qg = $2}
			/^rickmorty_db_query_duration_seconds_count\{query="data_version"\}/ {qd = $2}
			/^rickmorty_db_reads_total\{target="primary"\}/ {rp = $2}
			/^rickmorty_db_reads_total\{target="replica"\}/ {rr = $2}
			/^rickmorty_db_replica_fallbacks_total\{/ {fb += $2}
			/^rickmorty_cache_data_version / {v = $2}
			END {printf "%d %d %d %d %d %d %d %d %d %d %d %d\n", pod, h, m, inv, ql, qg, qd, rp, rr, fb, cpu, v}' >>"$1"
	done
}
delta() { # BEFORE AFTER: per pod, counters after minus before, version after
	paste -d' ' "$1" "$2" | awk '{n = NF / 2; printf "%d", $1; for (i = 2; i < n; i++) printf " %d", $(n + i) - $i; printf " %d\n", $NF}'
}
# The API role's statements since the last reset: list get data_version other.
pgss() {
	psql_db -F' ' -c "
SELECT coalesce(sum(calls) FILTER (WHERE query LIKE '%CROSS JOIN (SELECT count(*)%'), 0),
       coalesce(sum(calls) FILTER (WHERE query LIKE '%LEFT JOIN characters c ON c.id%'), 0),
       coalesce(sum(calls) FILTER (WHERE query = 'SELECT version FROM data_version'), 0),
       coalesce(sum(calls) FILTER (WHERE query NOT LIKE '%CROSS JOIN (SELECT count(*)%'
           AND query NOT LIKE '%LEFT JOIN characters c ON c.id%' AND query <> 'SELECT version FROM data_version'), 0)
FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = '$API_ROLE'"
}
pgss_reset() { psql_db -c "SELECT pg_stat_statements_reset()" >/dev/null; }

RESULTS=$WORK/results.txt
DETAILS=$WORK/details.txt
: >"$RESULTS"
: >"$DETAILS"
CHANGES=0

phase() { # SCENARIO REP unchanged|change
	local scenario=$1 rep=$2 kind=$3 tag=$1-$2-$3 load
	load=$(cut -d' ' -f1 /proc/loadavg)
	scrape "$WORK/before"
	pgss_reset
	run_wrk "$DURATION" "$WORK/wrk-$tag.txt" &
	WRK_PID=$!
	sleep "$INGEST_AT"
	if [ "$kind" = change ]; then
		CHANGES=$((CHANGES + 1))
		curl -fs -o /dev/null -X PATCH -H 'Content-Type: application/json' \
			-d "{\"location\":{\"name\":\"Bench Location $CHANGES\"}}" "$FAKE_ROOT/_fake/characters/$CHANGE_ID" ||
			die "could not change character $CHANGE_ID in the fake"
	fi
	"$BIN/bench" converge -urls "$POD_URLS" -path "$POLL_PATH" -interval 2ms -wait 3s -- "$WORK/ingest-once.sh" \
		>"$WORK/conv-$tag.txt" 2>>"$LOGS/ingest.log" || die "the ingest failed (phase $tag)"
	wait "$WRK_PID" || die "wrk failed (phase $tag): $(cat "$WORK/wrk-$tag.txt")"
	WRK_PID=""
	scrape "$WORK/after"
	local d p rps conv dbv commit
	d=$(delta "$WORK/before" "$WORK/after")
	p=$(pgss)
	rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$WORK/wrk-$tag.txt")
	conv=$(grep '^converge ' "$WORK/conv-$tag.txt")
	dbv=$(psql_db -c "SELECT version FROM data_version")
	# When the transaction that wrote the current version committed
	# (track_commit_timestamp), in Unix microseconds.
	commit=$(psql_db -c "SELECT (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)::bigint FROM data_version")
	{
		echo "== $tag: wrk $(awk '/requests in/ {print $1, "requests"} /Non-2xx/ {print "non-2xx:", $NF}' "$WORK/wrk-$tag.txt" | paste -sd' ')"
		echo "   load average at start: $load"
		echo "   pgss (API role) list get data_version other: $p"
		psql_db -c "SELECT '   other: ' || calls || ' x ' || left(regexp_replace(query, '\s+', ' ', 'g'), 80) FROM pg_stat_statements s
			JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = '$API_ROLE' AND query NOT LIKE '%CROSS JOIN (SELECT count(*)%'
			AND query NOT LIKE '%LEFT JOIN characters c ON c.id%' AND query <> 'SELECT version FROM data_version'"
		echo "   per pod: pod hits misses invalidations list get data_version reads_primary reads_replica fallbacks cpu_ticks version"
		awk '{print "     " $0}' <<<"$d"
		sed 's/^/   /' "$WORK/conv-$tag.txt"
		echo "   database data version: $dbv, committed at $commit us"
	} | tee -a "$DETAILS" >&2
	# One row: scenario rep phase load req/s pgss(list get dv) metrics(list
	# get dv) max-per-pod(list+get) invalidations hit% changed ingest
	# converge(from commit, from return) stale
	awk -v scen="$scenario" -v rep="$rep" -v kind="$kind" -v rps="$rps" -v pgss="$p" -v conv="$conv" -v dbv="$dbv" \
		-v commit="$commit" -v ld="$load" -v tick="$TICK_US" '
		{h += $2; m += $3; inv += $4; ql += $5; qg += $6; qd += $7; cpu += $11; lg = $5 + $6; if (lg > mx) mx = lg; if ($12 != dbv) stale++}
		END {
			split(pgss, s, " ")
			match(conv, /max_from_return_ms=[-0-9.]+/); fr = substr(conv, RSTART + 19, RLENGTH - 19)
			match(conv, /changed=[0-9]+\/[0-9]+/); ch = substr(conv, RSTART + 8, RLENGTH - 8)
			match(conv, /ingest_ms=[0-9.]+/); ig = substr(conv, RSTART + 10, RLENGTH - 10)
			match(conv, /last_switch_unix_us=[0-9]+/); sw = substr(conv, RSTART + 20, RLENGTH - 20)
			fc = sw > 0 ? sprintf("%.1f", (sw - commit) / 1000) : "-"
			if (sw == 0) fr = "-"
			printf "%-10s %3s %-9s %5s %7s %6.1f %13s %13s %7d %5d %8.3f%% %7s %7s %8s %8s %5d\n", scen, rep, kind, ld, rps,
				(h + m > 0 ? cpu * tick / (h + m) : 0), s[1] "/" s[2] "/" s[3], ql "/" qg "/" qd, mx, inv,
				(h + m > 0 ? 100 * h / (h + m) : 0), ch, ig, fc, fr, stale
		}' <<<"$d" >>"$RESULTS"
}

scenario() { # NAME extra pod env...
	local name=$1 rep
	shift
	say "scenario $name: $PODS pods, $HOT_KEYS hot keys ($HOT_LISTS lists, $HOT_ITEMS items), wrk -t$PODS -c$CONC"
	start_pods "$@"
	write_lua
	run_wrk "$WARMUP" "$WORK/wrk-warmup-$name.txt"
	for rep in $(seq 1 "$REPEAT"); do
		phase "$name" "$rep" unchanged
		phase "$name" "$rep" change
	done
	stop_pods
}

scenario direct
if [ "$PGBOUNCER" = 1 ] && [ -n "$PGB_URL" ]; then
	scenario pgbouncer DATABASE_READ_URL="$PGB_URL"
fi

# ------------------------------------------------------------ query modes
MODES_OUT=$WORK/modes.txt
: >"$MODES_OUT"
if [ "$MODES" = 1 ]; then
	say "query modes: one uncached API (CACHE_TTL=0, DB_MAX_CONNS=16), wrk -t2 -c16 -d${DURATION}s GET /characters"
	for rep in $(seq 1 "$REPEAT"); do
		for mode in statement describe pgbouncer; do
			case $mode in
			statement) extra=() ;;
			describe) extra=(DATABASE_READ_URL="$API_DB_URL") ;;
			pgbouncer)
				[ -n "$PGB_URL" ] || continue
				extra=(DATABASE_READ_URL="$PGB_URL")
				;;
			esac
			PODS_SAVED=$PODS
			PODS=1
			start_pods CACHE_TTL=0 DB_MAX_CONNS=16 "${extra[@]}"
			PODS=$PODS_SAVED
			url="http://127.0.0.1:${POD_PORTS[0]}/characters"
			curl -fs -o /dev/null "$url"
			load=$(cut -d' ' -f1 /proc/loadavg)
			read -r api0 pg0 pgb0 <<<"$(cpu_ticks "${POD_PIDS[0]}") $(cpu_ticks "$PG_PID") $(cpu_ticks "$PGB_PID")"
			wrk -t2 -c16 -d"${DURATION}s" --latency "$url" >"$WORK/wrk-mode-$mode-$rep.txt"
			read -r api1 pg1 pgb1 <<<"$(cpu_ticks "${POD_PIDS[0]}") $(cpu_ticks "$PG_PID") $(cpu_ticks "$PGB_PID")"
			scrape "$WORK/mode-metrics"
			stop_pods
			awk -v mode="$mode" -v rep="$rep" '
				/^Requests\/sec/ {rps = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2} /Non-2xx/ {bad = $NF}
				END {printf "%s %s %.0f %s %s %d\n", mode, rep, rps, p50, p99, bad}' "$WORK/wrk-mode-$mode-$rep.txt" |
				paste -d' ' - <(awk -v ld="$load" -v cpu="$((api1 - api0)) $((pg1 - pg0)) $((pgb1 - pgb0))" \
					'{print $8, $9, ld, cpu}' "$WORK/mode-metrics") >>"$MODES_OUT"
			say "  $mode #$rep: $(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk-mode-$mode-$rep.txt") req/s"
		done
	done
	# The database side alone: the same SELECT from pgbench, as named
	# prepared statements (-M prepared, like (i)) and as unnamed ones parsed
	# and planned on every execution (-M extended, like (ii) and (iii)).
	"$BIN/bench" pgbench-sql >"$WORK/list.sql"
	for rep in $(seq 1 "$REPEAT"); do
		for mode in prepared extended extended-pgbouncer; do
			url=$DB_URL qmode=${mode%-pgbouncer}
			if [ "$mode" = extended-pgbouncer ]; then
				[ -n "$PGB_URL" ] || continue
				url=${PGB_URL/rickmorty_api@/postgres@}
			fi
			load=$(cut -d' ' -f1 /proc/loadavg)
			"$PGBIN/pgbench" -n -M "$qmode" -c16 -j2 -T"$DURATION" -f "$WORK/list.sql" "$url" >"$WORK/pgbench-$mode-$rep.txt" 2>&1 ||
				die "pgbench $mode failed: $(tail -n 3 "$WORK/pgbench-$mode-$rep.txt")"
			awk -v mode="$mode" -v rep="$rep" -v ld="$load" -F'= ' '/^tps/ {split($2, a, " "); tps = a[1]} /^latency average/ {lat = $2}
				END {printf "%s %s %s %.0f %s\n", mode, rep, ld, tps, lat}' "$WORK/pgbench-$mode-$rep.txt" >>"$WORK/pgbench.txt"
		done
	done
fi

# ---------------------------------------------------------------- summary
echo
echo "== scaling: $PODS pods, $HOT_KEYS hot keys ($HOT_LISTS list queries, $HOT_ITEMS items), $ROWS rows,"
echo "   wrk -t$PODS -c$CONC ${DURATION}s per phase, ingest at +${INGEST_AT}s; $(nproc) cores, loopback, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-10s %3s %-9s %5s %7s %6s %13s %13s %7s %5s %9s %7s %7s %8s %8s %5s\n" scenario rep phase load1 "req/s" "us/req" "pgss l/g/dv" \
	"pods l/g/dv" "max/pod" inval "hit" changed "ingest" "conv@cmt" "conv@ret" stale
cat "$RESULTS"
echo "pgss l/g/dv: the API role's list/get/data_version statements in Postgres (pg_stat_statements), all pods"
echo "pods l/g/dv: the same from the pods' rickmorty_db_query_duration_seconds_count; max/pod: list+get on the busiest pod"
echo "  (target after a change: <= $HOT_KEYS hot keys per pod, + the data_version read per pod; after no change: 0/0/0)"
echo "us/req: API CPU time (all pods, utime+stime) per /characters request served; load1: load average when the phase"
echo "  began; hit: hits/(hits+misses) over the phase; changed: pods whose ETag changed"
echo "ingest: ms \`ingester once\` took; conv@cmt / conv@ret: ms from the ingest's commit / from its return until the"
echo "  last pod served the new ETag (polled every 2 ms per pod; negative: before the ingest returned)"
echo "stale: pods whose rickmorty_cache_data_version differs from the database's after the phase (target 0)"
if [ -s "$MODES_OUT" ]; then
	echo
	echo "== query modes: uncached GET /characters (CACHE_TTL=0), one API, DB_MAX_CONNS=16, wrk -t2 -c16 -d${DURATION}s"
	printf "%-40s %3s %5s %7s %8s %9s %7s %14s %18s\n" mode rep load1 "req/s" p50 p99 "vs (i)" "reads pri/rep" "us/req api/pg/pgb"
	awk -v tick="$TICK_US" '
		$1 == "statement" {base[$2] = $3}
		{
			name = $1 == "statement" ? "(i) primary pool, statement cache" : $1 == "describe" ? "(ii) DATABASE_READ_URL direct, describe" : "(iii) DATABASE_READ_URL via PgBouncer"
			n = $7 + $8
			printf "%-40s %3s %5s %7s %8s %9s %6.0f%% %14s %18s\n", name, $2, $9, $3, $4, $5, 100 * $3 / base[$2], $7 "/" $8,
				sprintf("%.0f/%.0f/%.0f", $10 * tick / n, $11 * tick / n, $12 * tick / n)
			if ($6 > 0) printf "   (%d non-2xx responses)\n", $6
		}' "$MODES_OUT"
fi
if [ -s "$WORK/pgbench.txt" ]; then
	echo
	echo "== the same SELECT from pgbench -c16 -j2 -T$DURATION (no HTTP, no API)"
	printf "%-40s %3s %5s %9s %12s %8s\n" "pgbench query mode" rep load1 tps "latency" "vs prep."
	awk '$1 == "prepared" {base[$2] = $4}
		{printf "%-40s %3s %5s %9s %12s %7.0f%%\n", "-M " $1, $2, $3, $4, $5 " " $6, 100 * $4 / base[$2]}' "$WORK/pgbench.txt"
fi
echo
echo "total: $((SECONDS - STARTED))s"
