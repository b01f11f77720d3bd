#!/usr/bin/env bash
# Checks built rickmorty images, as the chart will run them:
#   - the user is numeric and non-root (65532:65532), so runAsNonRoot can
#     verify it;
#   - there is no shell (/bin/sh and /bin/bash absent, and running one fails)
#     and no package manager; the entrypoint is exec form: the binary, by
#     absolute path;
#   - the OCI labels (title, description, source, version, revision), with
#     the expected version and commit;
#   - the image is under MAX_IMAGE_BYTES (40 MB);
#   - the binary is static (no program interpreter), built with
#     CGO_ENABLED=0 and -trimpath by go$GO_VERSION, and stamped: the
#     ingester's `version` prints "ingester $VERSION ($COMMIT)", run with the
#     chart's security settings;
#   - the runtime base gives what a static Go binary reads: CA certificates,
#     tzdata, /etc/passwd and /etc/group with nonroot (65532).
#
#   VERSION=... COMMIT=... GO_VERSION=... scripts/docker/check-images.sh rickmorty-api:dev rickmorty-ingester:dev
#
# The component is the image's name without "rickmorty-" and the tag.
# shellcheck disable=SC2015 # ok || fail: ok only prints
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
# shellcheck source=scripts/docker/lib.sh
. scripts/docker/lib.sh

[ $# -gt 0 ] || { echo "usage: VERSION=... COMMIT=... $0 IMAGE..." >&2; exit 2; }
: "${VERSION:?set VERSION to the expected version stamp}"
: "${COMMIT:?set COMMIT to the expected commit stamp}"
GO_VERSION=${GO_VERSION:-$(scripts/ci/go-version.sh)}
MAX_IMAGE_BYTES=${MAX_IMAGE_BYTES:-40000000}

failures=0
fail() { echo "  FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "  ok: $*"; }
tmp=$(mktemp -d)
containers=()
cleanup() {
  local c
  for c in ${containers[@]+"${containers[@]}"}; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# The chart's container security settings as docker run flags (runtime only;
# the memory limit does not matter for these short runs).
secure=(--read-only --user 65532:65532 --cap-drop ALL --security-opt no-new-privileges --network none)

for image in "$@"; do
  echo
  echo "==> $image"
  c=${image%%:*}
  c=${c##*/}
  c=${c#rickmorty-}
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    fail "$image is not in the engine (make images builds it)"
    continue
  fi
  inspect() { docker image inspect -f "$1" "$image"; }

  user=$(inspect '{{.Config.User}}')
  [ "$user" = 65532:65532 ] && ok "user $user (numeric, non-root)" || fail "user is '$user', not 65532:65532"

  entrypoint=$(inspect '{{json .Config.Entrypoint}}')
  [ "$entrypoint" = "[\"/usr/local/bin/$c\"]" ] && ok "exec-form entrypoint $entrypoint" ||
    fail "entrypoint is $entrypoint, not [\"/usr/local/bin/$c\"]"

  label() { inspect "{{index .Config.Labels \"org.opencontainers.image.$1\"}}"; }
  [ "$(label title)" = "rickmorty-$c" ] && ok "label title=rickmorty-$c" || fail "label title is '$(label title)'"
  [ -n "$(label description)" ] && ok "label description=$(label description)" || fail "no description label"
  [[ "$(label source)" == https://* ]] && ok "label source=$(label source)" || fail "label source is '$(label source)'"
  [ "$(label version)" = "$VERSION" ] && ok "label version=$VERSION" || fail "label version is '$(label version)', want $VERSION"
  [ "$(label revision)" = "$COMMIT" ] && ok "label revision=$COMMIT" || fail "label revision is '$(label revision)', want $COMMIT"

  size=$(inspect '{{.Size}}')
  if [ "$size" -lt "$MAX_IMAGE_BYTES" ]; then
    ok "size $((size / 1000)) kB, under $((MAX_IMAGE_BYTES / 1000000)) MB"
  else
    fail "size $((size / 1000)) kB, over $((MAX_IMAGE_BYTES / 1000000)) MB"
  fi

  # The file system, as a listing, and the binary, copied out.
  ctr=$(docker create "$image")
  containers+=("$ctr")
  docker export "$ctr" | tar -t >"$tmp/files"
  for f in bin/sh bin/bash bin/dash bin/busybox usr/bin/sh usr/bin/apt usr/bin/apt-get usr/bin/dpkg sbin/apk; do
    if grep -qx "$f" "$tmp/files"; then fail "/$f is in the image"; fi
  done
  grep -qxE '(usr/)?bin/(ba|da)?sh' "$tmp/files" || ok "no shell (/bin/sh, /bin/bash absent), no package manager"
  if docker run --rm "${secure[@]}" --entrypoint /bin/sh "$image" -c true >/dev/null 2>&1; then
    fail "/bin/sh ran in the image"
  else
    ok "running /bin/sh fails"
  fi
  for f in etc/ssl/certs/ca-certificates.crt usr/share/zoneinfo/Europe/Berlin etc/passwd etc/group; do
    grep -qx "$f" "$tmp/files" || fail "/$f is missing from the runtime base"
  done
  docker cp "$ctr:/etc/passwd" "$tmp/passwd"
  docker cp "$ctr:/etc/group" "$tmp/group"
  grep -q '^nonroot:x:65532:65532:' "$tmp/passwd" && grep -q '^nonroot:x:65532:' "$tmp/group" &&
    ok "runtime base: CA certificates, tzdata, nonroot 65532 in /etc/passwd and /etc/group" ||
    fail "/etc/passwd or /etc/group has no nonroot 65532"

  bin=$tmp/$c
  docker cp "$ctr:/usr/local/bin/$c" "$bin"
  desc=$(file -b "$bin")
  [[ "$desc" == *"statically linked"* ]] && ok "$c: statically linked, $(du -h "$bin" | cut -f1)" || fail "$c is not statically linked: $desc"
  if readelf -l "$bin" 2>/dev/null | grep -q INTERP; then fail "$c has a program interpreter (dynamic)"; fi
  info=$(go version -m "$bin")
  grep -qP '^\tbuild\tCGO_ENABLED=0$' <<<"$info" && ok "$c: build info CGO_ENABLED=0" || fail "$c: build info lacks CGO_ENABLED=0"
  grep -qP '^\tbuild\t-trimpath=true$' <<<"$info" && ok "$c: build info -trimpath=true" || fail "$c: build info lacks -trimpath=true"
  [[ "$(head -n 1 <<<"$info")" == *": go$GO_VERSION" ]] && ok "$c: built by go$GO_VERSION" || fail "$c: built by $(head -n 1 <<<"$info")"
  grep -qaF "$VERSION" "$bin" && grep -qaF "$COMMIT" "$bin" && ok "$c: the binary carries $VERSION and $COMMIT" ||
    fail "$c: the version or commit string is not in the binary"

  case $c in
    ingester)
      v=$(docker run --rm "${secure[@]}" "$image" version 2>&1 || true)
      [ "$v" = "ingester $VERSION ($COMMIT)" ] && ok "ingester version: $v" || fail "ingester version printed '$v'"
      ;;
    api)
      # No database configured: it must start, refuse and name the variable.
      set +e
      out=$(docker run --rm "${secure[@]}" "$image" 2>&1)
      rc=$?
      set -e
      [ "$rc" != 0 ] && [[ "$out" == *DATABASE_URL* ]] && ok "api runs and refuses to start without DATABASE_URL (exit $rc: $out)" ||
        fail "api without DATABASE_URL: exit $rc, output: $out"
      ;;
  esac
done

echo
if [ "$failures" -ne 0 ]; then
  echo "check-images: $failures problem(s)" >&2
  exit 1
fi
echo "check-images: $* ok"
