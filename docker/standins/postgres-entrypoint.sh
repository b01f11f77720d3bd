#!/bin/sh
# Entry point of the stand-in Postgres image. It honours the variables of the
# official postgres image that this project uses (the tests through
# testcontainers, docker-compose.yml):
#
#   POSTGRES_USER (default postgres)  the superuser created by initdb
#   POSTGRES_PASSWORD                 its password (required unless
#                                     POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_DB (default: the user)   a database created on first start
#   POSTGRES_INITDB_ARGS              extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD         pg_hba method for TCP (scram-sha-256)
#
# On first start (an empty PGDATA) it runs initdb, starts a server on the
# socket only to create the database, stops it and starts the real one, so
# "database system is ready to accept connections" is logged twice then, as
# with the official image (testcontainers' postgres module waits for that).
# Not supported: /docker-entrypoint-initdb.d, running as root (the image
# runs as the postgres user; a bind-mounted PGDATA must be writable by it).
# Any command other than postgres (or postgres options) is run as it is.
set -eu

case "${1:-postgres}" in
  -*) set -- postgres "$@" ;;
esac
[ "${1:-postgres}" = postgres ] || exec "$@"
[ $# -gt 0 ] || set -- postgres

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    echo "docker-entrypoint: set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments
  initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --auth-local=trust \
    --auth-host="$auth" --encoding=UTF8 ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '\nlisten_addresses = '"'*'"'\n' >>"$PGDATA/postgresql.conf"
  printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  db=${POSTGRES_DB:-$user}
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -X -q --username="$user" --dbname=postgres -v db="$db" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "docker-entrypoint: initialised $PGDATA (user $user, database $db)"
fi

exec "$@"
