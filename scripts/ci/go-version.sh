#!/usr/bin/env bash
# The project's Go release, in one place: go.mod's `toolchain` directive when
# it has one, else its `go` directive.
#
#   scripts/ci/go-version.sh           # prints it, e.g. 1.26.8
#   scripts/ci/go-version.sh --check   # fails unless everything agrees
#
# --check verifies that every copy of that version agrees with it:
#   - ARG GO_VERSION in Dockerfile.* (CI passes --build-arg GO_VERSION from
#     here anyway; the default must match for local `docker build`);
#   - the `go` directive of go.work and of every other go.mod in the tree;
#   - the Go that runs the checks (`go env GOVERSION`): set
#     GOTOOLCHAIN=go<version> when the machine's Go is another release
#     (scripts/ci/local.sh does).
# The workflows install this version (setup-go with the value printed here),
# so CI, the images and `make` build with the same Go.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

directive() { awk -v d="$1" '$1 == d { v = $2; sub(/^go/, "", v); print v; exit }' "$2"; }

go_line="$(directive go go.mod)"
toolchain="$(directive toolchain go.mod)"
version="${toolchain:-$go_line}"
[ -n "$version" ] || { echo "go-version: no go directive in go.mod" >&2; exit 1; }

if [ "${1:-}" != "--check" ]; then
  echo "$version"
  exit 0
fi

bad=0
fail() { echo "go-version: $*" >&2; bad=1; }

for f in Dockerfile*; do
  [ -f "$f" ] || continue
  arg="$(sed -n 's/^ARG[[:space:]]\{1,\}GO_VERSION=\([^[:space:]]*\).*/\1/p' "$f" | head -n 1)"
  if [ -z "$arg" ]; then
    grep -q '^FROM.*golang' "$f" && fail "$f builds with golang but has no ARG GO_VERSION=<version>"
  elif [ "$arg" != "$version" ]; then
    fail "$f: ARG GO_VERSION=$arg, go.mod says $version"
  fi
done

while read -r mod; do
  [ "$mod" = ./go.mod ] && continue
  v="$(directive go "$mod")"
  [ "$v" = "$go_line" ] || fail "${mod#./}: go ${v:-(none)}, go.mod says go $go_line"
done < <(find . -name go.mod -not -path './.cache/*' -not -path './bin/*' -not -path '*/testdata/*' | sort)
if [ -f go.work ]; then
  v="$(directive go go.work)"
  [ "$v" = "$go_line" ] || fail "go.work: go ${v:-(none)}, go.mod says go $go_line"
fi

running="$(go env GOVERSION)"
if [ "$running" != "go$version" ]; then
  fail "the go command is $running, the project builds with go$version: export GOTOOLCHAIN=go$version"
fi

if [ "$bad" = 0 ]; then
  echo "go-version: go$version everywhere (go.mod, go.work, every module, Dockerfiles, the go command)"
fi
exit "$bad"
