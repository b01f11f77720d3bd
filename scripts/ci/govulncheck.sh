#!/usr/bin/env bash
# The vulnerability gate: govulncheck over every module of go.work, compared
# with the reviewed exceptions in scripts/ci/vuln-allowlist.txt
# (docs/security-exceptions.md explains each one).
#
#   scripts/ci/govulncheck.sh
#
# Fails when the code reaches a vulnerability that has no reviewed exception,
# and when an exception is no longer needed (stale). Vulnerabilities in
# imported packages or required modules that the code does not reach are
# listed but do not fail (govulncheck's own rule).
#
# Database:
#   - online (GITHUB_ACTIONS=true or CI_ONLINE=1): govulncheck's default,
#     the live Go vulnerability database;
#   - otherwise, offline: a database built from the golang.org/x/vulndb
#     module at VULNDB_VERSION (tools/versions.env), which the Go module
#     proxy serves. Its data/osv folder holds the OSV entries that the live
#     database is generated from; tools/vulndb indexes them into the layout
#     that `govulncheck -db file://...` reads. Built once per version, cached
#     in .cache/vulndb/<version>. Bump VULNDB_VERSION to pick up new entries:
#     `go list -m golang.org/x/vulndb@master` (outside the project's modules,
#     GOWORK=off) prints the newest pseudo-version.
# GOVULNCHECK_DB=file:///path (or https://...) overrides either choice.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=tools/versions.env
source tools/versions.env

cache="$root/.cache"
mkdir -p "$cache"
[ -f "$cache/.gitignore" ] || printf '*\n' >"$cache/.gitignore"

tools/install.sh govulncheck >/dev/null

online=false
if [ "${GITHUB_ACTIONS:-}" = true ] || [ "${CI_ONLINE:-}" = 1 ]; then online=true; fi

# The snapshot time of the pinned vulndb pseudo-version (vX.0.0-YYYYMMDDhhmmss-hash).
ts="$(sed -n 's/^v0\.0\.0-\([0-9]\{4\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)-.*/\1-\2-\3T\4:\5:\6Z/p' <<<"$VULNDB_VERSION")"

db_args=()
if [ -n "${GOVULNCHECK_DB:-}" ]; then
  db_args=(-db "$GOVULNCHECK_DB")
  echo "govulncheck: database $GOVULNCHECK_DB (GOVULNCHECK_DB)"
elif $online; then
  echo "govulncheck: online, the live Go vulnerability database"
else
  db="$cache/vulndb/$VULNDB_VERSION"
  stamp="$db/.stamp"
  want_stamp="$VULNDB_VERSION $(sha256sum tools/vulndb/main.go | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
    echo "govulncheck: offline database golang.org/x/vulndb@$VULNDB_VERSION (cached in ${db#"$root"/})"
  else
    echo "govulncheck: building the offline database from golang.org/x/vulndb@$VULNDB_VERSION"
    # Outside the project's modules, so go.mod/go.work are neither read nor changed.
    dir="$(cd "$(mktemp -d)" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    [ -d "$dir/data/osv" ] || { echo "govulncheck: no data/osv in golang.org/x/vulndb@$VULNDB_VERSION" >&2; exit 1; }
    GOWORK=off go run ./tools/vulndb build -osv "$dir/data/osv" -out "$db" ${ts:+-modified "$ts"}
    echo "$want_stamp" >"$stamp"
  fi
  db_args=(-db "file://$db")
  # A snapshot ages: say so once it is more than 30 days old.
  if [ -n "$ts" ] && then_s="$(date -u -d "$ts" +%s 2>/dev/null)"; then
    age_days=$(( ($(date -u +%s) - then_s) / 86400 ))
    if [ "$age_days" -gt 30 ]; then
      echo "govulncheck: warning: the offline database is $age_days days old; bump VULNDB_VERSION in tools/versions.env" >&2
    fi
  fi
fi

# Every module of the workspace: ./... from the root stops at nested modules.
patterns=()
while read -r dir; do
  case "$dir" in
    . | ./) patterns+=("./...") ;;
    *) patterns+=("./${dir#./}/...") ;;
  esac
done < <(go work edit -json | sed -n 's/^[[:space:]]*"DiskPath": "\(.*\)".*/\1/p')
[ ${#patterns[@]} -gt 0 ] || patterns=("./...")

out="$cache/govulncheck.json"
echo "govulncheck: scanning ${patterns[*]} with $(go env GOVERSION)"
if ! "$root/bin/govulncheck" "${db_args[@]}" -format json "${patterns[@]}" >"$out"; then
  echo "govulncheck: the scan itself failed (see above)" >&2
  exit 1
fi
GOWORK=off go run ./tools/vulndb check -allowlist scripts/ci/vuln-allowlist.txt <"$out"
