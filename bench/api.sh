#!/usr/bin/env bash
# Load run for the API on loopback, all in one go, bounded in time:
#   cached GET /characters vs a minimal Echo handler writing the same bytes,
#   uncached (CACHE_TTL=0) vs pgbench running the same SELECT,
#   resident memory after 100k distinct query strings.
#   cached compressed GET /characters?page_size=100 (each of ENCODINGS) vs
#   the same handler writing the same compressed bytes, and bytes on the
#   wire per page size and coding,
# Usage: bench/api.sh   (env: ADMIN_URL, DURATION=10s, CONC=16, ROWS=100, ENCODINGS="br zstd gzip")
# Needs wrk, pgbench and psql. Results go to stdout; docs/benchmarks-api.md
# records a run.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DURATION=${DURATION:-10s}
CONC=${CONC:-16}
ROWS=${ROWS:-100}
ENCODINGS=${ENCODINGS:-br zstd gzip}
# shellcheck source=bench/lib.sh
. bench/lib.sh
require wrk pgbench psql curl
build
create_schema
seed "$ROWS"

start_api 18180 CACHE_TTL=5m
CACHED_PID=$LAST_PID
start_api 18182 CACHE_TTL=0
curl -fs http://127.0.0.1:18180/characters >"$WORK/page.json"
echo "body: $(wc -c <"$WORK/page.json") bytes (GET /characters: 20 of $ROWS rows)"
"$WORK/bench" ceiling -addr 127.0.0.1:18181 -body "$WORK/page.json" &
PIDS+=($!)
wait_http http://127.0.0.1:18181/characters
cmp -s "$WORK/page.json" <(curl -fs http://127.0.0.1:18181/characters) || { echo "ceiling body differs" >&2; exit 1; }

"$WORK/bench" floor -addr 127.0.0.1:18184 -db "$DB_URL" -conns 16 >/dev/null &
PIDS+=($!)
wait_http http://127.0.0.1:18184/characters

curl -fs http://127.0.0.1:18182/characters >/dev/null
run_wrk ceiling http://127.0.0.1:18181/characters
run_wrk cached http://127.0.0.1:18180/characters
run_wrk uncached http://127.0.0.1:18182/characters
run_wrk floor http://127.0.0.1:18184/characters

# Compressed answers: the API's cached page of 100 in each coding against a
# bare Echo handler writing the very same compressed bytes.
BIG="http://127.0.0.1:18180/characters?page_size=100"
port=18190
for enc in $ENCODINGS; do
	curl -fs -D "$WORK/h-$enc" -H "Accept-Encoding: $enc" "$BIG" >"$WORK/page100.$enc"
	grep -qi "^content-encoding: $enc" "$WORK/h-$enc" || { echo "the API did not answer $enc" >&2; exit 1; }
	"$WORK/bench" ceiling -addr "127.0.0.1:$port" -body "$WORK/page100.$enc" -encoding "$enc" &
	PIDS+=($!)
	wait_http "http://127.0.0.1:$port/characters"
	run_wrk "ceiling-$enc" "http://127.0.0.1:$port/characters" -H "Accept-Encoding: $enc"
	run_wrk "cached-$enc" "$BIG" -H "Accept-Encoding: $enc"
	port=$((port + 1))
done

# Bytes on the wire (headers + body) per page size and coding.
WIRE="$WORK/wire.txt"
{
	printf "%-10s" "page_size"
	for enc in identity $ENCODINGS; do printf " %16s" "$enc"; done
	echo
	for size in 1 20 50 100; do
		printf "%-10s" "$size"
		for enc in identity $ENCODINGS; do
			printf " %16s" "$(curl -fs -o /dev/null -H "Accept-Encoding: $enc" \
				-w '%{size_header}+%{size_download}' "http://127.0.0.1:18180/characters?page_size=$size")"
		done
		echo
	done
} >"$WIRE"

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

echo
echo "== summary (concurrency $CONC, $DURATION each, $(nproc) cores, loopback)"
printf "%-32s %12s %10s %10s\n" "target" "req/s" "p50" "p99"
printf "%-32s %12s %10s %10s\n" "ceiling (Echo, same bytes)" "${RPS[ceiling]}" "${P50[ceiling]}" "${P99[ceiling]}"
printf "%-32s %12s %10s %10s\n" "api cached GET /characters" "${RPS[cached]}" "${P50[cached]}" "${P99[cached]}"
printf "%-32s %12s %10s %10s\n" "api uncached (CACHE_TTL=0)" "${RPS[uncached]}" "${P50[uncached]}" "${P99[uncached]}"
printf "%-32s %12s %10s %10s\n" "floor (net/http+pgx, raw bytes)" "${RPS[floor]}" "${P50[floor]}" "${P99[floor]}"
printf "%-32s %12s %10s %10s\n" "pgbench same SELECT" "$PGB_TPS" "avg $PGB_LAT" ""
for enc in $ENCODINGS; do
	printf "%-32s %12s %10s %10s\n" "ceiling, page of 100, $enc" "${RPS[ceiling-$enc]}" "${P50[ceiling-$enc]}" "${P99[ceiling-$enc]}"
	printf "%-32s %12s %10s %10s\n" "api cached, page of 100, $enc" "${RPS[cached-$enc]}" "${P50[cached-$enc]}" "${P99[cached-$enc]}"
done
echo "cached / ceiling:   $(pct "${RPS[cached]}" "${RPS[ceiling]}") (target >= 70%)"
for enc in $ENCODINGS; do
	echo "cached $enc / ceiling $enc (page of 100): $(pct "${RPS[cached-$enc]}" "${RPS[ceiling-$enc]}") (target >= 80%)"
done
echo "bytes on the wire (headers+body), GET /characters?page_size=N:"
cat "$WIRE"
echo "uncached / pgbench: $(pct "${RPS[uncached]}" "$PGB_TPS") (target >= 50%)"
echo "floor / pgbench:    $(pct "${RPS[floor]}" "$PGB_TPS") (what any uncached Go HTTP service reaches here)"
echo "uncached / floor:   $(pct "${RPS[uncached]}" "${RPS[floor]}")"
echo "memory: $RSS_AFTER; cache entries $ENTRIES ($CBYTES), evictions $EVICT (target < 100 MiB)"
