#!/usr/bin/env bash
# The filtered list at scale: ROWS (1,000,000) characters, the API with its
# cache off (CACHE_TTL=0: every request is a database read), and for each
# filter below a wrk run plus the EXPLAIN (ANALYZE, BUFFERS) of the
# statement it runs. docs/benchmarks-api.md records a run.
# Usage: bench/filters.sh   (env: ADMIN_URL, DURATION=10s, CONC=8, ROWS=1000000)
# Needs wrk and psql.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DURATION=${DURATION:-10s}
CONC=${CONC:-8}
ROWS=${ROWS:-1000000}
# shellcheck source=bench/lib.sh
. bench/lib.sh
require wrk psql curl
build
create_schema
t0=$SECONDS
seed "$ROWS"
echo "seeded and analysed in $((SECONDS - t0))s; table and indexes:"
psql -q "$DB_URL" -c "SELECT relname, pg_size_pretty(pg_relation_size(oid)) FROM pg_class WHERE relname LIKE 'characters%' ORDER BY 1"

# REQUEST_TIMEOUT at its maximum: the broad filters below take seconds.
start_api 18280 CACHE_TTL=0 REQUEST_TIMEOUT=5m

# name: what it shows. Each name's seeded shape: '<one of 6 names> <id>';
# origins and locations '<one of 4> <n>'; genders 1 in 4 each.
QUERIES=(
	"name=Rick%20Sanchez%20123456"        # one row: the trigram index finds it
	"name=princess%2099999"              # a handful of rows
	"name=sanchez%201234&sort=name"       # tens of rows, sorted by name
	"origin=k-83%20777&page_size=100"      # a thousand rows, a page of 100
	"location=anatomy%20park%2042"         # about a thousand rows
	"name=summer&gender=female&page=50"    # 1 in 6 rows match the name: count(*) reads ~170k index entries
	"gender=female"                        # no index on gender (4 values): a scan of the table
	""                                     # no filter: count(*) over every row
)

for q in "${QUERIES[@]}"; do
	name=${q:-unfiltered}
	echo
	echo "== GET /characters?$q"
	curl -fs "http://127.0.0.1:18280/characters?$q" >"$WORK/answer.json"
	head -c 300 "$WORK/answer.json"
	echo
	"$WORK/bench" explain -db "$DB_URL" -query "$q" | tee "$WORK/explain-$name.txt" | grep -E "Index|Seq Scan|Execution Time|Bitmap" | head -12
	run_wrk "$name" "http://127.0.0.1:18280/characters?$q" --timeout 30s >/dev/null
	echo "wrk: ${RPS[$name]} req/s, p50 ${P50[$name]}, p99 ${P99[$name]}"
done

echo
echo "== summary ($ROWS rows, cache off, concurrency $CONC, $DURATION each, $(nproc) cores, loopback)"
printf "%-44s %10s %10s %10s  %s\n" "GET /characters?" "req/s" "p50" "p99" "plan"
for q in "${QUERIES[@]}"; do
	name=${q:-unfiltered}
	plan=$(grep -oE "(Bitmap Index Scan on [a-z_]+|Index Scan using [a-z_]+|Index Only Scan using [a-z_]+|Seq Scan on [a-z_]+)" "$WORK/explain-$name.txt" | sort -u | paste -sd ',' -)
	printf "%-44s %10s %10s %10s  %s\n" "${q:-(no filter)}" "${RPS[$name]}" "${P50[$name]}" "${P99[$name]}" "$plan"
done
