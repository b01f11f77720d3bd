#!/usr/bin/env bash
# Runs a command with a Docker engine available, and stops only the engine it
# started:
#
#   scripts/docker/with-engine.sh CMD [ARG...]
#
# 1. An engine that answers already is used and left as it is: DOCKER_HOST,
#    else the default socket, else the socket of an engine this script
#    started for another run (below).
# 2. Otherwise, as root, it starts dockerd, installing Debian's docker.io
#    first when dockerd is missing. That engine listens on a socket of its
#    own, /run/rickmorty-docker/docker.sock (DOCKER_ENGINE_SOCKET), not on
#    the default one: programs that look for an engine there (every
#    testcontainers user on the machine) keep seeing none. Ports it publishes
#    without an address are bound to 127.0.0.1 (--ip). Its images stay in
#    the default data root (/var/lib/docker): the stand-in base images and
#    the built images are kept from one run to the next. CMD gets DOCKER_HOST
#    pointing at it. When CMD ends, the engine is stopped, after waiting (up
#    to DOCKER_ENGINE_STOP_WAIT seconds, default 600) for other runs of this
#    script that are still using it.
# 3. Where no engine can run (not root, no dockerd and no apt-get, dockerd
#    refusing to start), it says so loudly and runs CMD without one; the
#    scripts then fall back to what needs no engine. With DOCKER_REQUIRED=1
#    (.ci/run sets it) that is a failure instead.
#
# CMD sees DOCKER_ENGINE=up or DOCKER_ENGINE=none, DOCKER_CLI (the client
# that can build with BuildKit, see scripts/docker/lib.sh) and, with this
# script's engine, DOCKER_HOST and TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1.
# Exits with CMD's status.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The caller's choice of client, if any (lib.sh fills DOCKER_CLI in).
user_cli=${DOCKER_CLI:-}
# shellcheck source=scripts/docker/lib.sh
. "$root/scripts/docker/lib.sh"

say() { echo "with-engine: $*" >&2; }

[ $# -gt 0 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

run_dir=$(dirname "$DOCKER_ENGINE_SOCKET")
lock=${TMPDIR:-/tmp}/rickmorty-docker-engine.lock
# fd 9, shared, for as long as this run uses the engine; the run that
# started the engine turns it exclusive before stopping it.
exec 9>>"$lock"
flock -s 9

started_pid=""
why=""

# find_engine: an engine answers; exports DOCKER_HOST when it is ours.
find_engine() {
  engine_answers && return 0
  [ -z "${DOCKER_HOST:-}" ] || return 1 # an explicit DOCKER_HOST is not replaced
  if [ -S "$DOCKER_ENGINE_SOCKET" ]; then
    export DOCKER_HOST="unix://$DOCKER_ENGINE_SOCKET"
    engine_answers && return 0
    unset DOCKER_HOST
  fi
  return 1
}

start_engine() {
  if [ -n "${DOCKER_HOST:-}" ]; then
    why="DOCKER_HOST=$DOCKER_HOST does not answer (unset it to let this script start an engine)"
    return 1
  fi
  if [ "$(id -u)" != 0 ]; then
    why="no engine answers and dockerd needs root to start (run as root, or start an engine and set DOCKER_HOST)"
    return 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
      why="dockerd is not installed and there is no apt-get to install docker.io"
      return 1
    fi
    say "installing Debian's docker.io"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >&2; then
      why="apt-get install docker.io failed"
      return 1
    fi
    # Choose again: the client chosen before the install may be one that
    # cannot build with BuildKit (e.g. a newer static client without buildx),
    # which lib.sh skips now that docker.io's is there.
    DOCKER_CLI=$user_cli
    DOCKER_CLI=$(pick_docker_cli)
    export DOCKER_CLI
    say "client: $DOCKER_CLI $("$DOCKER_CLI" version --format '{{.Client.Version}}' 2>/dev/null | head -n 1)"
    # The package may have started its own service on the default socket.
    if engine_answers; then return 0; fi
  fi
  mkdir -p "$run_dir"
  chmod 700 "$run_dir"
  local log=$run_dir/dockerd.log
  say "starting dockerd on $DOCKER_ENGINE_SOCKET (log: $log)"
  local t0=$SECONDS
  # setsid: a Ctrl-C at the terminal reaches the command, not the engine,
  # which is stopped below once the command has cleaned up.
  setsid dockerd --host "unix://$DOCKER_ENGINE_SOCKET" --pidfile "$run_dir/dockerd.pid" \
    --exec-root "$run_dir/exec" --ip 127.0.0.1 >>"$log" 2>&1 </dev/null 9>&- &
  started_pid=$!
  export DOCKER_HOST="unix://$DOCKER_ENGINE_SOCKET"
  for _ in $(seq 1 120); do
    if engine_answers; then
      say "dockerd $(docker version --format '{{.Server.Version}}') is up after $((SECONDS - t0))s (pid $started_pid)"
      return 0
    fi
    kill -0 "$started_pid" 2>/dev/null || break
    sleep 0.5
  done
  why="dockerd did not come up; the end of $log:"$'\n'"$(tail -n 15 "$log" 2>/dev/null)"
  stop_engine now
  unset DOCKER_HOST
  return 1
}

# stop_engine [now]: stops the dockerd this run started, once no other run
# uses it (now: without waiting, for one that never came up).
stop_engine() {
  [ -n "$started_pid" ] || return 0
  local pid=$started_pid
  started_pid=""
  if kill -0 "$pid" 2>/dev/null; then
    if [ "${1:-}" != now ] && ! flock -x -w "${DOCKER_ENGINE_STOP_WAIT:-600}" 9; then
      say "another run still uses the engine; dockerd (pid $pid) is left running"
      return 0
    fi
    # Containers that are ending (a test binary's Postgres stops when the
    # binary exits, then the engine removes it and its anonymous volume):
    # stopping the engine under them would leave the volume behind.
    local i n
    for i in $(seq 1 40); do
      n=$(docker ps -aq --filter status=running --filter status=removing --filter status=restarting 2>/dev/null | wc -l)
      [ "$n" -gt 0 ] || break
      [ "$i" != 1 ] || say "waiting (up to 20s) for $n container(s) to end before stopping the engine"
      sleep 0.5
    done
    say "stopping the dockerd this run started (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "dockerd did not stop within 60s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

status=1
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "$status" != running ] || status=$rc
  stop_engine
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One run at a time looks for or starts the engine (fd 8).
exec 8>>"$lock.start"
flock -x 8
if find_engine; then
  export DOCKER_ENGINE=up
elif start_engine; then
  export DOCKER_ENGINE=up
else
  export DOCKER_ENGINE=none
fi
flock -u 8
exec 8>&-
# The engine of this script publishes on this host's 127.0.0.1: that is where
# testcontainers must look for the ports (it would take the bridge's gateway
# on a machine that looks like a container, i.e. has /.dockerenv).
if [ "${DOCKER_HOST:-}" = "unix://$DOCKER_ENGINE_SOCKET" ]; then
  export TESTCONTAINERS_HOST_OVERRIDE=${TESTCONTAINERS_HOST_OVERRIDE:-127.0.0.1}
fi

if [ "$DOCKER_ENGINE" = none ]; then
  if [ "${DOCKER_REQUIRED:-}" = 1 ]; then
    loud "NO DOCKER ENGINE, and DOCKER_REQUIRED=1: failing." "$why"
    status=1
    exit 1
  fi
  loud "NO DOCKER ENGINE: what needs one falls back to what does not" \
    "(images: scripts/chart/check-dockerfiles.sh; Postgres tests: TEST_DATABASE_URL)." \
    "$why"
fi

status=running
set +e
"$@"
status=$?
set -e
exit "$status"
