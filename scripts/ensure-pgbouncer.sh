#!/usr/bin/env bash
# Makes sure the tools of the database-topology tests are installed: PgBouncer
# (Debian's pgbouncer package) and PostgreSQL's server binaries (initdb,
# pg_ctl, pg_basebackup), which pkg/pgtest uses to start a primary, a hot
# standby and a pooler of its own. Installs nothing that is already there and
# starts nothing: the tests start and stop their own servers. Progress goes to
# stderr.
set -euo pipefail

say() { echo "ensure-pgbouncer: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
have_pgbouncer() { command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; }
have_server() { compgen -G '/usr/lib/postgresql/*/bin/pg_basebackup' >/dev/null || command -v pg_basebackup >/dev/null 2>&1; }

missing=()
have_pgbouncer || missing+=(pgbouncer)
have_server || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

command -v apt-get >/dev/null 2>&1 || { say "missing: ${missing[*]}; install them (no apt-get here)"; exit 1; }
say "installing ${missing[*]} from Debian packages"
as_root apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >&2
# The package may start its own pgbouncer service; the tests need none.
if [[ " ${missing[*]} " == *" pgbouncer "* ]] && command -v service >/dev/null 2>&1; then
  as_root service pgbouncer stop >/dev/null 2>&1 || true
fi
if ! have_pgbouncer || ! have_server; then say "still missing after install: ${missing[*]}"; exit 1; fi
