# shellcheck shell=bash
# Helpers for the scripts that use a Docker engine (sourced, not run).
#
#   docker ...      the Docker client that can build with BuildKit (below)
#   engine_answers  true when an engine answers on DOCKER_HOST (or the
#                   default socket)
#   engine_socket   the socket of the engine scripts/docker/with-engine.sh
#                   starts (a socket of its own, see there)
#   loud LINE...    a message framed to stand out in a long log (stderr):
#                   for what falls back or fails for want of an engine
#
# The client: BuildKit builds (DOCKER_BUILDKIT=1, cache mounts) need either a
# client with the buildx plugin or one older than 23.0, whose `docker build`
# talks to the engine's built-in BuildKit itself. Debian's docker.io (20.10)
# is the latter; a newer client on PATH without buildx (e.g. a static
# /usr/local/bin/docker) refuses to build, so it is skipped when another
# client is there. DOCKER_CLI overrides the choice.

DOCKER_ENGINE_SOCKET=${DOCKER_ENGINE_SOCKET:-/run/rickmorty-docker/docker.sock}

engine_socket() { echo "$DOCKER_ENGINE_SOCKET"; }

loud() {
  {
    echo
    echo "!! ============================================================"
    printf '!! %s\n' "$@"
    echo "!! ============================================================"
    echo
  } >&2
}

# pick_docker_cli prints the client to use, or nothing when there is none.
pick_docker_cli() {
  if [ -n "${DOCKER_CLI:-}" ]; then echo "$DOCKER_CLI"; return 0; fi
  local c v first=""
  while read -r c; do
    [ -n "$c" ] || continue
    [ -n "$first" ] || first=$c
    if "$c" buildx version >/dev/null 2>&1; then echo "$c"; return 0; fi
    v=$("$c" version --format '{{.Client.Version}}' 2>/dev/null || true)
    case "$v" in 1[0-9].* | 2[0-2].*) echo "$c"; return 0 ;; esac
  done < <(type -ap docker | awk '!seen[$0]++')
  [ -z "$first" ] || echo "$first"
}

DOCKER_CLI=$(pick_docker_cli)
export DOCKER_CLI

docker() {
  [ -n "$DOCKER_CLI" ] || { echo "docker: no Docker client installed (apt-get install docker.io)" >&2; return 127; }
  command "$DOCKER_CLI" "$@"
}

# engine_answers: an engine answers where the client looks (DOCKER_HOST, else
# the default socket), within a few seconds.
engine_answers() {
  [ -n "$DOCKER_CLI" ] || return 1
  timeout 10 "$DOCKER_CLI" version --format '{{.Server.Version}}' >/dev/null 2>&1
}
