# shellcheck shell=bash
# Local network helpers of the scripts that start the system (sourced):
# free ports on 127.0.0.1 and HTTP probes without curl. The caller defines
# die MESSAGE.

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Ports are picked below the kernel's ephemeral range, which outgoing
# connections use: a port nobody listens on may still be taken there.
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if [ "${EPHEMERAL_LOW:-0}" -gt 21000 ] 2>/dev/null; then PORT_BASE=20000 PORT_SPAN=$((EPHEMERAL_LOW - 20000)); else PORT_BASE=10000 PORT_SPAN=9000; fi
USED_PORTS=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((PORT_BASE + RANDOM % PORT_SPAN))
    case $USED_PORTS in *" $p "*) continue ;; esac
    if port_free "$p"; then USED_PORTS+="$p "; echo "$p"; return 0; fi
  done
  die "no free TCP port found on 127.0.0.1"
}

# http_get HOST:PORT PATH: prints the status line and body (HTTP/1.0, no curl).
http_get() {
  local hp=$1 path=$2
  (
    exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hp" >&3
    timeout 5 cat <&3
  ) 2>/dev/null
}
http_ok() { http_get "$1" "$2" | head -n 1 | grep -q '^HTTP/1\.[01] 200'; }

wait_until() { # SECONDS WHAT CMD...
  local secs=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "$what: not within ${secs}s"
    sleep 0.2
  done
}
