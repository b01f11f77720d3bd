#!/usr/bin/env bash
# Builds the stand-in base images, for a machine whose Docker engine cannot
# pull (no registry): what a registry would have given, made from what this
# machine reaches (Debian's archive and the Go module proxy). Once per
# machine: each image carries a label with the hash of its recipe
# (docker/standins/, the Go release) and is rebuilt only when that changes.
#
#   localhost/rickmorty/debian:bookworm    debootstrap --variant=minbase, up to date
#   localhost/rickmorty/golang:<go>        stand-in for golang:<go> (GO_IMAGE)
#   localhost/rickmorty/static:nonroot     stand-in for gcr.io/distroless/static-debian13:nonroot (RUNTIME_IMAGE)
#   localhost/rickmorty/postgres:15        Debian's PostgreSQL (PGTEST_IMAGE, compose's POSTGRES_IMAGE)
#
# The localhost/ names are never found in a registry, so nothing tries to
# pull them from Docker Hub. How they differ from the real bases:
# docs/deploy.md "Images".
#
#   scripts/docker/base-images.sh            build what is missing, print the names
#   scripts/docker/base-images.sh --names    only print the names (NAME=image lines)
#
# Needs a Docker engine (scripts/docker/with-engine.sh), root (debootstrap,
# installed from Debian when missing) and the go command. Progress and
# timings go to stderr; the NAME=image lines to stdout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=scripts/docker/lib.sh
. scripts/docker/lib.sh
# shellcheck source=docker/standins/debian.conf
. docker/standins/debian.conf

say() { echo "base-images: $*" >&2; }
die() { say "$*"; exit 1; }

GO_VERSION=$(scripts/ci/go-version.sh)
PG_MAJOR=15 # bookworm's PostgreSQL
prefix=${STANDIN_PREFIX:-localhost/rickmorty}
debian_image=$prefix/debian:$SUITE
go_image=$prefix/golang:$GO_VERSION
static_image=$prefix/static:nonroot
postgres_image=$prefix/postgres:$PG_MAJOR

names() {
  echo "GO_IMAGE=$go_image"
  echo "RUNTIME_IMAGE=$static_image"
  echo "PGTEST_IMAGE=$postgres_image"
  echo "POSTGRES_IMAGE=$postgres_image"
}
if [ "${1:-}" = --names ]; then names; exit 0; fi

engine_answers || die "no Docker engine answers (run this through scripts/docker/with-engine.sh)"

label=org.rickmorty.standin.recipe
S=docker/standins
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# have IMAGE RECIPE: the image exists and was built from that recipe.
have() {
  [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null)" = "$2" ]
}

build() { # IMAGE RECIPE DOCKERFILE CONTEXT [BUILD ARG...]
  local image=$1 recipe=$2 file=$3 context=$4
  shift 4
  local args=() a
  for a in "$@"; do args+=(--build-arg "$a"); done
  DOCKER_BUILDKIT=1 docker build --progress=plain -f "$file" "${args[@]}" \
    --label "$label=$recipe" \
    --label "org.opencontainers.image.description=rickmorty stand-in base image, built locally by scripts/docker/base-images.sh" \
    -t "$image" "$context" >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    die "building $image failed"
  }
}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/rickmorty-base-images.XXXXXX")
raw="" # the imported root file system, while the Debian stand-in is built from it
cleanup() {
  # A failed build leaves no untagged root file system behind in the engine.
  [ -z "$raw" ] || docker rmi "$raw" >/dev/null 2>&1 || true
  # debootstrap mounts /proc and /sys in the target: never delete through them.
  if [ -d "$work/rootfs" ]; then
    awk -v r="$work/rootfs" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
  fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

total=$SECONDS
debian_recipe=$(hash_of $S/debian.conf $S/debian.Dockerfile)
if have "$debian_image" "$debian_recipe"; then
  say "$debian_image: present"
else
  t0=$SECONDS
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >&2 ||
      die "could not install debootstrap"
  fi
  say "$debian_image: debootstrap --variant=minbase $SUITE (+$INCLUDE) from $MIRROR"
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    die "debootstrap failed"
  }
  printf '%s\n' "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main" >"$work/rootfs/etc/apt/sources.list"
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/cache/apt/archives/"*.deb
  raw=$prefix/debian-rootfs:$SUITE
  tar -C "$work/rootfs" --numeric-owner -c . | docker import - "$raw" >/dev/null
  rm -rf --one-file-system "$work/rootfs"
  build "$debian_image" "$debian_recipe" $S/debian.Dockerfile $S "ROOTFS_IMAGE=$raw"
  docker rmi "$raw" >/dev/null
  raw=""
  say "$debian_image: built in $((SECONDS - t0))s"
fi

# The Go release: the golang.org/toolchain module that GOTOOLCHAIN=go<version>
# downloads holds the whole distribution (already in the module cache when
# make has run; the module proxy otherwise).
goarch=$(go env GOARCH)
toolchain_json=$(cd "$work" && GOFLAGS='' go mod download -json "golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$goarch")
goroot=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$toolchain_json")
gosum=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p' <<<"$toolchain_json")
[ -x "$goroot/bin/go" ] || die "no Go distribution in the golang.org/toolchain module (go mod download said: $toolchain_json)"
# The machine's own CAs, which the Go image trusts so that its builds reach
# the module proxy as the host does (the runtime stand-in has Debian's only).
local_ca=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
go_recipe=$(hash_of $S/golang.Dockerfile <(echo "$debian_recipe $GO_VERSION $gosum $local_ca"))
if have "$go_image" "$go_recipe"; then
  say "$go_image: present"
else
  t0=$SECONDS
  say "$go_image: Go $GO_VERSION from $goroot"
  build "$go_image" "$go_recipe" $S/golang.Dockerfile "$goroot" "DEBIAN_IMAGE=$debian_image" "GO_VERSION=$GO_VERSION" "LOCAL_CA_CERTS=$local_ca"
  say "$go_image: built in $((SECONDS - t0))s"
fi

static_recipe=$(hash_of $S/static.Dockerfile <(echo "$debian_recipe"))
if have "$static_image" "$static_recipe"; then
  say "$static_image: present"
else
  t0=$SECONDS
  build "$static_image" "$static_recipe" $S/static.Dockerfile $S "DEBIAN_IMAGE=$debian_image"
  say "$static_image: built in $((SECONDS - t0))s"
fi

postgres_recipe=$(hash_of $S/postgres.Dockerfile $S/postgres-entrypoint.sh <(echo "$debian_recipe $PG_MAJOR"))
if have "$postgres_image" "$postgres_recipe"; then
  say "$postgres_image: present"
else
  t0=$SECONDS
  build "$postgres_image" "$postgres_recipe" $S/postgres.Dockerfile $S "DEBIAN_IMAGE=$debian_image" "PG_MAJOR=$PG_MAJOR"
  say "$postgres_image: built in $((SECONDS - t0))s"
fi

say "ready in $((SECONDS - total))s:"
docker image ls --filter "reference=$prefix/*" --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' >&2
names
