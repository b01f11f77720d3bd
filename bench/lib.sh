# shellcheck shell=bash
# shellcheck disable=SC2034 # LAST_PID, RPS, P50 and P99 are read by the scripts that source this
# Shared by bench/api.sh and bench/filters.sh (sourced): a throwaway
# database with the real schema, the binaries, API processes and wrk runs,
# all cleaned up on exit. Expects ADMIN_URL, CONC, DURATION; sets DB, DB_URL,
# WORK and PIDS.
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

require() { # tool...
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install wrk postgresql-client)" >&2; exit 1; }
	done
}

build() {
	echo "== building"
	go build -o "$WORK/api" ./cmd/api
	go build -o "$WORK/bench" ./bench/api
}

# create_schema: the database as golang-migrate would leave it: every up
# migration in order, the last one's number recorded.
create_schema() {
	psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB"
	local migrations=(db/migrations/*.up.sql) f last
	for f in "${migrations[@]}"; do psql -q -v ON_ERROR_STOP=1 "$DB_URL" -f "$f"; done
	last=${migrations[-1]##*/}
	psql -q "$DB_URL" -c "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (${last%%_*}, false);"
}

# seed ROWS: that many characters shaped like the upstream's, one data
# version, one successful run.
seed() {
	echo "== seeding $1 characters into $DB"
	psql -q -v ON_ERROR_STOP=1 "$DB_URL" -c "
INSERT INTO characters (id, name, status, species, type, gender, origin_name, origin_url, location_name,
	location_url, image, episode, url, created)
SELECT i, (ARRAY['Rick Sanchez','Morty Smith','Summer Smith','Beth Smith','Jerry Smith','Abadango Cluster Princess'])[1 + i % 6] || ' ' || i,
	'Alive', 'Human', '', (ARRAY['Male','Female','Genderless','unknown'])[1 + i % 4],
	(ARRAY['Earth (C-137)','Earth (Replacement Dimension)','Earth (Evil Rick''s Target Dimension)','Earth (K-83)'])[1 + i % 4] || ' ' || (i % 1000),
	'https://rickandmortyapi.com/api/location/1',
	(ARRAY['Citadel of Ricks','Earth (Replacement Dimension)','Anatomy Park','Interdimensional Cable'])[1 + i % 4] || ' ' || (i % 997),
	'https://rickandmortyapi.com/api/location/3',
	'https://rickandmortyapi.com/api/character/avatar/' || i || '.jpeg',
	ARRAY['https://rickandmortyapi.com/api/episode/1','https://rickandmortyapi.com/api/episode/2'],
	'https://rickandmortyapi.com/api/character/' || i, timestamptz '2017-11-04 18:48:46.25Z' + i * interval '1 minute'
FROM generate_series(1, $1) i;
UPDATE data_version SET version = 1;
INSERT INTO ingest_runs (finished_at, result, data_version) VALUES (now(), 'success', 1);"
	psql -q "$DB_URL" -c "VACUUM ANALYZE"
}

start_api() { # port, extra env...
	local port=$1
	shift
	env DATABASE_URL="$DB_URL" HTTP_ADDR="127.0.0.1:$port" DB_MAX_CONNS="$CONC" SHUTDOWN_DRAIN_DELAY=0s "$@" \
		"$WORK/api" >"$WORK/api-$port.log" 2>&1 &
	PIDS+=($!)
	LAST_PID=$!
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "api on $port did not become ready:" >&2
	cat "$WORK/api-$port.log" >&2
	exit 1
}

# wait_http URL: until it answers.
wait_http() {
	for _ in $(seq 50); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "$1 did not answer" >&2
	exit 1
}

declare -A RPS P50 P99
run_wrk() { # name url [wrk args...]
	local name=$1 url=$2
	shift 2
	echo "== wrk $name: wrk -t2 -c$CONC -d$DURATION --latency $* $url"
	wrk -t2 -c"$CONC" -d"$DURATION" --latency "$@" "$url" | tee "$WORK/wrk-$name.txt"
	if grep -q "Non-2xx or 3xx responses" "$WORK/wrk-$name.txt"; then
		echo "bench: $name got error answers" >&2
		exit 1
	fi
	RPS[$name]=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk-$name.txt")
	P50[$name]=$(awk '$1=="50%" {print $2}' "$WORK/wrk-$name.txt")
	P99[$name]=$(awk '$1=="99%" {print $2}' "$WORK/wrk-$name.txt")
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100 * a / b}'; }
