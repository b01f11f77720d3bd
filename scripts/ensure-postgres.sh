#!/usr/bin/env bash
# Makes sure a Postgres server answers and prints a URL for a user that may
# create databases. Tries, in order: $DATABASE_URL_ADMIN, the local server on
# 127.0.0.1:5432 (trust, then password "postgres"), starting the installed
# Debian cluster, installing the Debian package, a postgres container when a
# Docker engine runs. Progress goes to stderr; the URL alone goes to stdout.
# When it starts a server and $PG_STOP_FILE is set, it appends the command
# that stops that server to the file (make demo uses it on Ctrl-C).
set -euo pipefail

say() { echo "ensure-postgres: $*" >&2; }

answers() { psql "$1" -XAtqc 'SELECT 1' >/dev/null 2>&1; }

try_urls() {
  local u
  for u in ${DATABASE_URL_ADMIN:-} \
    "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" \
    "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"; do
    if answers "$u"; then echo "$u"; return 0; fi
  done
  return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if ! command -v psql >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    say "installing PostgreSQL from Debian packages"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql postgresql-client >&2
  fi
fi

if url=$(try_urls); then echo "$url"; exit 0; fi

if command -v pg_ctlcluster >/dev/null 2>&1; then
  for v in $(ls /etc/postgresql 2>/dev/null); do
    say "starting PostgreSQL $v cluster"
    if as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 && [ -n "${PG_STOP_FILE:-}" ]; then
      echo "pg_ctlcluster --skip-systemctl-redirect $v main stop" >>"$PG_STOP_FILE"
    fi
  done
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  if url=$(try_urls); then echo "$url"; exit 0; fi
  # A fresh Debian cluster refuses passwordless TCP logins: give the
  # postgres user the well-known development password over the socket.
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    say "setting a development password for the postgres user"
    as_root su postgres -c "psql -XAtqc \"ALTER USER postgres PASSWORD 'postgres'\"" >&2 || true
    if url=$(try_urls); then echo "$url"; exit 0; fi
  fi
fi

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  say "starting a postgres:17-alpine container on 127.0.0.1:5432"
  docker run -d --rm --name rickmorty-postgres -p 127.0.0.1:5432:5432 \
    -e POSTGRES_PASSWORD=postgres postgres:17-alpine >&2
  [ -n "${PG_STOP_FILE:-}" ] && echo "docker stop rickmorty-postgres" >>"$PG_STOP_FILE"
  for _ in $(seq 1 60); do
    if url=$(try_urls); then echo "$url"; exit 0; fi
    sleep 1
  done
fi

say "no Postgres answers on 127.0.0.1:5432 and none could be started."
say "Start one (e.g. apt-get install postgresql, or docker run -p 5432:5432 -e POSTGRES_PASSWORD=postgres postgres:17)"
say "or set DATABASE_URL_ADMIN to a URL of a user that may create databases."
exit 1
