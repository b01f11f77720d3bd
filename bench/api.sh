#!/usr/bin/env bash
# Load run for the API on loopback, all in one go, bounded in time:
#   cached GET /characters vs a minimal Echo handler writing the same bytes,
#   uncached (CACHE_TTL=0) vs pgbench running the same SELECT,
#   resident memory after 100k distinct query strings.
# Usage: bench/api.sh   (env: ADMIN_URL, DURATION=10s, CONC=16, ROWS=100)
# Needs wrk, pgbench and psql. Results go to stdout; docs/benchmarks-api.md
# records a run.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DURATION=${DURATION:-10s}
CONC=${CONC:-16}
ROWS=${ROWS:-100}
DB=rm_bench_$$
# Loopback only: TLS would cost the API and pgbench alike; both use this URL.
DB_URL="${ADMIN_URL%/*}/$DB?sslmode=${SSLMODE:-disable}"
WORK=$(mktemp -d)
PIDS=()

cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

for tool in wrk pgbench psql; do
	command -v $tool >/dev/null || { echo "bench/api.sh: $tool is required (apt-get install wrk postgresql-client)" >&2; exit 1; }
done

echo "== building"
go build -o "$WORK/api" ./cmd/api
go build -o "$WORK/bench" ./bench/api

echo "== seeding $ROWS characters into $DB"
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB"
# The schema as golang-migrate would leave it: every up migration in order,
# the last one's number recorded.
MIGRATIONS=(db/migrations/*.up.sql)
for f in "${MIGRATIONS[@]}"; do psql -q -v ON_ERROR_STOP=1 "$DB_URL" -f "$f"; done
LAST=${MIGRATIONS[-1]##*/}
psql -q "$DB_URL" -c "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (${LAST%%_*}, false);"
psql -q "$DB_URL" -c "
INSERT INTO characters (id, name, status, species, type, gender, origin_name, origin_url, location_name,
	location_url, image, episode, url, created)
SELECT i, (ARRAY['Rick Sanchez','Morty Smith','Summer Smith','Beth Smith','Jerry Smith','Abadango Cluster Princess'])[1 + i % 6] || ' ' || i,
	'Alive', 'Human', '', (ARRAY['Male','Female'])[1 + i % 2], 'Earth (C-137)', 'https://rickandmortyapi.com/api/location/1',
	'Citadel of Ricks', 'https://rickandmortyapi.com/api/location/3',
	'https://rickandmortyapi.com/api/character/avatar/' || i || '.jpeg',
	ARRAY['https://rickandmortyapi.com/api/episode/1','https://rickandmortyapi.com/api/episode/2'],
	'https://rickandmortyapi.com/api/character/' || i, timestamptz '2017-11-04 18:48:46.25Z' + i * interval '1 hour'
FROM generate_series(1, $ROWS) i;
UPDATE data_version SET version = 1;
INSERT INTO ingest_runs (finished_at, result, data_version) VALUES (now(), 'success', 1);
ANALYZE;"

start_api() { # port, extra env...
	local port=$1; shift
	env DATABASE_URL="$DB_URL" HTTP_ADDR="127.0.0.1:$port" DB_MAX_CONNS="$CONC" SHUTDOWN_DRAIN_DELAY=0s "$@" \
		"$WORK/api" >"$WORK/api-$port.log" 2>&1 &
	PIDS+=($!)
	LAST_PID=$!
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "api on $port did not become ready:" >&2; cat "$WORK/api-$port.log" >&2; exit 1
}

start_api 18180 CACHE_TTL=5m
CACHED_PID=$LAST_PID
start_api 18182 CACHE_TTL=0
curl -fs http://127.0.0.1:18180/characters >"$WORK/page.json"
echo "body: $(wc -c <"$WORK/page.json") bytes (GET /characters: 20 of $ROWS rows)"
"$WORK/bench" ceiling -addr 127.0.0.1:18181 -body "$WORK/page.json" &
PIDS+=($!)
for _ in $(seq 50); do curl -fs http://127.0.0.1:18181/characters >/dev/null 2>&1 && break; sleep 0.1; done
cmp -s "$WORK/page.json" <(curl -fs http://127.0.0.1:18181/characters) || { echo "ceiling body differs" >&2; exit 1; }

declare -A RPS P50 P99
run_wrk() { # name url
	echo "== wrk $1: wrk -t2 -c$CONC -d$DURATION --latency $2"
	wrk -t2 -c"$CONC" -d"$DURATION" --latency "$2" | tee "$WORK/wrk-$1.txt"
	RPS[$1]=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk-$1.txt")
	P50[$1]=$(awk '$1=="50%" {print $2}' "$WORK/wrk-$1.txt")
	P99[$1]=$(awk '$1=="99%" {print $2}' "$WORK/wrk-$1.txt")
}

"$WORK/bench" floor -addr 127.0.0.1:18184 -db "$DB_URL" -conns 16 >/dev/null &
PIDS+=($!)
for _ in $(seq 50); do curl -fs http://127.0.0.1:18184/characters >/dev/null 2>&1 && break; sleep 0.1; done

curl -fs http://127.0.0.1:18182/characters >/dev/null
run_wrk ceiling http://127.0.0.1:18181/characters
run_wrk cached http://127.0.0.1:18180/characters
run_wrk uncached http://127.0.0.1:18182/characters
run_wrk floor http://127.0.0.1:18184/characters

"$WORK/bench" pgbench-sql >"$WORK/list.sql"
echo "== pgbench: pgbench -n -M prepared -c$CONC -j2 -T${DURATION%s} -f list.sql (the SELECT the API runs)"
cat "$WORK/list.sql"
pgbench -n -M prepared -c"$CONC" -j2 -T"${DURATION%s}" -f "$WORK/list.sql" "$DB_URL" | tee "$WORK/pgbench.txt"
PGB_TPS=$(awk -F'= ' '/^tps/ {split($2, a, " "); print a[1]; exit}' "$WORK/pgbench.txt")
PGB_LAT=$(awk -F'= ' '/^latency average/ {print $2}' "$WORK/pgbench.txt")

echo "== memory: 100k distinct query strings against a fresh cached API (CACHE_MAX_ENTRIES=10000)"
kill "$CACHED_PID"; wait "$CACHED_PID" 2>/dev/null || true
start_api 18183 CACHE_TTL=5m CACHE_MAX_ENTRIES=10000
MEM_PID=$LAST_PID
"$WORK/bench" distinct -base http://127.0.0.1:18183 -n 100000 -c "$CONC" -pid "$MEM_PID" | tee "$WORK/distinct.txt"
ENTRIES=$(curl -fs http://127.0.0.1:18183/metrics | awk '/^rickmorty_cache_entries / {print $2}')
EVICT=$(curl -fs http://127.0.0.1:18183/metrics | awk '/^rickmorty_cache_evictions_total / {print $2}')
CBYTES=$(curl -fs http://127.0.0.1:18183/metrics | awk '/^rickmorty_cache_bytes / {printf "%.1f MiB", $2 / 1048576}')
RSS_AFTER=$(grep VmRSS "$WORK/distinct.txt")

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100 * a / b}'; }
echo
echo "== summary (concurrency $CONC, $DURATION each, $(nproc) cores, loopback)"
printf "%-32s %12s %10s %10s\n" "target" "req/s" "p50" "p99"
printf "%-32s %12s %10s %10s\n" "ceiling (Echo, same bytes)" "${RPS[ceiling]}" "${P50[ceiling]}" "${P99[ceiling]}"
printf "%-32s %12s %10s %10s\n" "api cached GET /characters" "${RPS[cached]}" "${P50[cached]}" "${P99[cached]}"
printf "%-32s %12s %10s %10s\n" "api uncached (CACHE_TTL=0)" "${RPS[uncached]}" "${P50[uncached]}" "${P99[uncached]}"
printf "%-32s %12s %10s %10s\n" "floor (net/http+pgx, raw bytes)" "${RPS[floor]}" "${P50[floor]}" "${P99[floor]}"
printf "%-32s %12s %10s %10s\n" "pgbench same SELECT" "$PGB_TPS" "avg $PGB_LAT" ""
echo "cached / ceiling:   $(pct "${RPS[cached]}" "${RPS[ceiling]}") (target >= 70%)"
echo "uncached / pgbench: $(pct "${RPS[uncached]}" "$PGB_TPS") (target >= 50%)"
echo "floor / pgbench:    $(pct "${RPS[floor]}" "$PGB_TPS") (what any uncached Go HTTP service reaches here)"
echo "uncached / floor:   $(pct "${RPS[uncached]}" "${RPS[floor]}")"
echo "memory: $RSS_AFTER; cache entries $ENTRIES ($CBYTES), evictions $EVICT (target < 100 MiB)"
