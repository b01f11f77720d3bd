#!/usr/bin/env bash
# `make images`: builds rickmorty-api and rickmorty-ingester from the
# unchanged Dockerfile.api and Dockerfile.ingester with BuildKit (cache
# mounts included), version and commit stamped, then checks what was built
# (scripts/docker/check-images.sh).
#
#   scripts/docker/images.sh [api|ingester ...]
#
# Variables (make passes them through):
#   GO_IMAGE, RUNTIME_IMAGE  the bases; default: the local stand-ins, built
#                            first when missing (scripts/docker/base-images.sh).
#                            Where a registry is reachable, the real ones:
#                            GO_IMAGE=golang:<go> RUNTIME_IMAGE=gcr.io/distroless/static-debian13:nonroot
#   VERSION, COMMIT          the stamp (default: git describe, git rev-parse)
#   IMAGE_TAG                the tag (default dev): rickmorty-<c>:<tag>
#
# Where no engine runs, it says so and replays the build without one
# (scripts/chart/check-dockerfiles.sh), unless DOCKER_REQUIRED=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=scripts/docker/lib.sh
. scripts/docker/lib.sh

say() { printf '\033[1mimages:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(api ingester)

if ! engine_answers; then
  [ "${DOCKER_REQUIRED:-}" != 1 ] || die "no Docker engine answers and DOCKER_REQUIRED=1 (run through scripts/docker/with-engine.sh)"
  say "NO DOCKER ENGINE: the images are not built; replaying the Dockerfiles' build stage instead (scripts/chart/check-dockerfiles.sh)"
  dockerfiles=()
  for c in "${components[@]}"; do dockerfiles+=("Dockerfile.$c"); done
  exec bash scripts/chart/check-dockerfiles.sh "${dockerfiles[@]}"
fi

go_version=$(scripts/ci/go-version.sh)
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
IMAGE_TAG=${IMAGE_TAG:-dev}

if [ -z "${GO_IMAGE:-}" ] || [ -z "${RUNTIME_IMAGE:-}" ]; then
  t0=$SECONDS
  standins=$(scripts/docker/base-images.sh)
  : "${GO_IMAGE:=$(sed -n 's/^GO_IMAGE=//p' <<<"$standins")}"
  : "${RUNTIME_IMAGE:=$(sed -n 's/^RUNTIME_IMAGE=//p' <<<"$standins")}"
  say "stand-in bases ready in $((SECONDS - t0))s"
fi

for c in "${components[@]}"; do
  [ -f "Dockerfile.$c" ] || die "no Dockerfile.$c"
  image=rickmorty-$c:$IMAGE_TAG
  say "building $image (GO_IMAGE=$GO_IMAGE RUNTIME_IMAGE=$RUNTIME_IMAGE VERSION=$VERSION COMMIT=$COMMIT)"
  t0=$SECONDS
  DOCKER_BUILDKIT=1 docker build --progress="${BUILDKIT_PROGRESS:-plain}" -f "Dockerfile.$c" \
    --build-arg GO_VERSION="$go_version" \
    --build-arg GO_IMAGE="$GO_IMAGE" \
    --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" \
    --build-arg VERSION="$VERSION" \
    --build-arg COMMIT="$COMMIT" \
    -t "$image" .
  say "built $image in $((SECONDS - t0))s"
  # The image the tag named before (another commit's), now untagged: removed,
  # so that rebuilds do not pile up in the engine.
  docker image prune -f --filter "label=org.opencontainers.image.title=rickmorty-$c" >/dev/null
done

images=()
for c in "${components[@]}"; do images+=("rickmorty-$c:$IMAGE_TAG"); done
VERSION=$VERSION COMMIT=$COMMIT GO_VERSION=$go_version scripts/docker/check-images.sh "${images[@]}"
