#!/usr/bin/env bash
# Checks Dockerfile.api and Dockerfile.ingester without a Docker engine.
#
# For each Dockerfile it reads the instructions and replays the build stage's
# RUN commands with this machine's Go, in a copy of exactly the build context
# that the .dockerignore lets through (tools/dockerctx), with the stage's
# ARG and ENV values (VERSION and COMMIT set to test values, TARGETOS and
# TARGETARCH to this machine's). Only --mount options are dropped and the
# output directory /out is moved into a temporary directory. Then it checks:
#   - GO_VERSION is go.mod's go directive and the Go running here;
#   - the build stage sets CGO_ENABLED=0 and GOWORK=off and builds with
#     -trimpath and the version/commit -ldflags;
#   - the final stage is distroless/static or scratch, runs no command, has
#     a numeric non-root USER and an exec-form ENTRYPOINT (no shell needed);
#   - the binary is statically linked (file, readelf), its build info
#     (go version -m) shows CGO_ENABLED=0, -trimpath=true and the Go version,
#     and it carries the stamped version and commit (the go command leaves
#     -ldflags out of the build info when -trimpath is on, so the strings
#     are looked for in the binary, and `ingester version` is run).
# Usage: bash scripts/chart/check-dockerfiles.sh [Dockerfile...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

dockerfiles=("$@")
[ ${#dockerfiles[@]} -gt 0 ] || dockerfiles=(Dockerfile.api Dockerfile.ingester)

test_version="v0.0.0-check.$(date +%s)"
test_commit="c0ffee1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "  FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "  ok: $*"; }

gomod_go="$(scripts/ci/go-version.sh)" # go.mod's toolchain line, else its go line
local_go="$(go env GOVERSION)"
local_go="${local_go#go}"

echo "==> build context (.dockerignore)"
GOWORK=off go run ./tools/dockerctx -context . -out "$tmp/ctx"

# logical_lines FILE: the instructions, continuation lines joined, comments
# and blank lines dropped.
logical_lines() {
  awk '
    /^[[:space:]]*#/ { next }
    {
      line = $0
      if (sub(/\\[[:space:]]*$/, "", line)) { buf = buf line " "; next }
      line = buf line; buf = ""
      if (line ~ /^[[:space:]]*$/) next
      print line
    }' "$1"
}

# resolve WORD: WORD with the Dockerfile's global ARGs' defaults substituted (FROM
# ${GO_IMAGE}, whose default names ${GO_VERSION}).
resolve() {
  local w=$1 k i
  for i in 1 2 3; do
    for k in "${!global_args[@]}"; do
      w="${w//\$\{$k\}/${global_args[$k]}}"
      w="${w//\$$k/${global_args[$k]}}"
    done
  done
  echo "$w"
}

for df in "${dockerfiles[@]}"; do
  echo
  echo "==> $df"
  [ -f "$df" ] || { fail "$df not found"; continue; }

  declare -A global_args=() stage_env=() stage_args=()
  stage=-1 build_stage="" final_image="" final_user="" final_entrypoint="" final_runs=0
  build_runs=() stage_names=() stage_images=()
  while IFS= read -r line; do
    instr="$(awk '{ print toupper($1) }' <<<"$line")"
    rest="$(sed -E 's/^[[:space:]]*[A-Za-z]+[[:space:]]+//' <<<"$line")"
    case "$instr" in
      FROM)
        stage=$((stage + 1))
        image="$(awk '{ for (i = 1; i <= NF; i++) if ($i !~ /^--/) { print $i; exit } }' <<<"$rest")"
        name="$(awk 'tolower($(NF-1)) == "as" { print $NF }' <<<"$rest")"
        stage_images+=("$image")
        stage_names+=("$name")
        ;;
      ARG)
        key="${rest%%=*}"
        val=""
        [[ "$rest" == *=* ]] && val="${rest#*=}"
        if [ "$stage" -lt 0 ]; then global_args[$key]="$val"; else stage_args["$stage.$key"]="$val"; fi
        ;;
      ENV)
        read -ra kvs <<<"$rest"
        for kv in "${kvs[@]}"; do stage_env["$stage.${kv%%=*}"]="${kv#*=}"; done
        ;;
      RUN)
        build_runs+=("$stage:$rest")
        ;;
      USER) final_user="$rest" ;;
      ENTRYPOINT) final_entrypoint="$rest" ;;
    esac
  done < <(logical_lines "$df")

  last=$stage
  final_image="$(resolve "${stage_images[$last]}")"
  # The build stage is the one the final stage copies from.
  from_stage="$(grep -oE 'COPY[[:space:]]+--from=[^[:space:]]+' "$df" | tail -1 | sed 's/.*--from=//')"
  for i in "${!stage_names[@]}"; do
    [ "${stage_names[$i]}" = "$from_stage" ] && build_stage=$i
  done
  [ -n "$build_stage" ] || { fail "no build stage named by COPY --from"; continue; }

  # Go version: Dockerfile == go.mod == the Go replaying the build.
  go_arg="${global_args[GO_VERSION]:-}"
  if [ "$go_arg" = "$gomod_go" ]; then ok "GO_VERSION=$go_arg is the project's Go (scripts/ci/go-version.sh)"; else fail "GO_VERSION=$go_arg but the project's Go is $gomod_go (scripts/ci/go-version.sh)"; fi
  if [ "$go_arg" != "$local_go" ]; then fail "this machine has Go $local_go, not $go_arg: the replay would not use the image's Go"; fi
  if grep -qE '^GO_VERSION[[:space:]]*[:?]?=' Makefile 2>/dev/null; then
    mk_go="$(sed -nE 's/^GO_VERSION[[:space:]]*[:?]?=[[:space:]]*//p' Makefile | head -1)"
    case "$mk_go" in
      *scripts/ci/go-version.sh*) ok "Makefile GO_VERSION comes from scripts/ci/go-version.sh" ;;
      "$go_arg") ok "Makefile GO_VERSION=$mk_go" ;;
      *) fail "Makefile GO_VERSION=$mk_go differs from $go_arg" ;;
    esac
  fi
  build_image="$(resolve "${stage_images[$build_stage]}")"
  [[ "$build_image" == golang:"$go_arg"* ]] && ok "build stage FROM $build_image" || fail "build stage FROM $build_image is not golang:$go_arg"

  [ "${stage_env[$build_stage.CGO_ENABLED]:-}" = 0 ] && ok "ENV CGO_ENABLED=0" || fail "build stage does not set ENV CGO_ENABLED=0"
  [ "${stage_env[$build_stage.GOWORK]:-}" = off ] && ok "ENV GOWORK=off" || fail "build stage does not set ENV GOWORK=off"

  # Final stage: minimal, non-root, no shell.
  case "$final_image" in
    gcr.io/distroless/static* | scratch) ok "runtime base $final_image" ;;
    *) fail "runtime base $final_image is neither distroless/static nor scratch" ;;
  esac
  for r in "${build_runs[@]}"; do [ "${r%%:*}" = "$last" ] && final_runs=$((final_runs + 1)); done
  [ "$final_runs" -eq 0 ] && ok "final stage runs no command" || fail "final stage has RUN instructions"
  if [[ "$final_user" =~ ^[0-9]+(:[0-9]+)?$ ]] && [ "${final_user%%:*}" -ne 0 ]; then ok "USER $final_user (numeric, non-root)"; else fail "USER '$final_user' is not a numeric non-root user"; fi
  [[ "$final_entrypoint" =~ ^\[.*\]$ ]] && ok "exec-form ENTRYPOINT $final_entrypoint" || fail "ENTRYPOINT is not exec form (needs a shell)"

  # Replay the build stage's RUN commands.
  out="$tmp/out"
  rm -rf "$out"
  mkdir -p "$out"
  runs=0
  for r in "${build_runs[@]}"; do
    [ "${r%%:*}" = "$build_stage" ] || continue
    cmd="${r#*:}"
    # drop the BuildKit --mount=... options; put /out in the temp dir
    cmd="$(sed -E 's/(^|[[:space:]])--mount=[^[:space:]]+//g; s/^[[:space:]]+//' <<<"$cmd")"
    cmd="${cmd//\/out\//$out/}"
    [[ "$cmd" == *"go build"* ]] || continue
    [[ "$cmd" == *"-trimpath"* ]] && ok "go build -trimpath" || fail "go build without -trimpath"
    [[ "$cmd" == *"telemetry.Version="* && "$cmd" == *"telemetry.Commit="* ]] && ok "-ldflags stamp Version and Commit" || fail "-ldflags do not stamp telemetry.Version and telemetry.Commit"
    echo "  replaying: $cmd"
    envs=()
    for k in "${!global_args[@]}"; do envs+=("$k=${global_args[$k]}"); done
    for k in "${!stage_args[@]}"; do [ "${k%%.*}" = "$build_stage" ] && envs+=("${k#*.}=${stage_args[$k]}"); done
    for k in "${!stage_env[@]}"; do [ "${k%%.*}" = "$build_stage" ] && envs+=("${k#*.}=${stage_env[$k]}"); done
    envs+=("VERSION=$test_version" "COMMIT=$test_commit" "TARGETOS=$(go env GOOS)" "TARGETARCH=$(go env GOARCH)")
    start=$SECONDS
    if (cd "$tmp/ctx" && env "${envs[@]}" sh -c "$cmd"); then
      ok "build replayed in $((SECONDS - start))s"
    else
      fail "the build stage's command failed"
    fi
    runs=$((runs + 1))
  done
  [ "$runs" -gt 0 ] || fail "no go build in the build stage"

  for bin in "$out"/*; do
    [ -f "$bin" ] || { fail "no binary produced in /out"; continue; }
    name="$(basename "$bin")"
    grep -q "COPY --from=$from_stage /out/$name " "$df" || fail "/out/$name is not what the final stage copies"
    desc="$(file -b "$bin")"
    [[ "$desc" == *"statically linked"* ]] && ok "$name: $(cut -d, -f1-2 <<<"$desc"), statically linked, $(du -h "$bin" | cut -f1)" || fail "$name is not statically linked: $desc"
    if readelf -l "$bin" 2>/dev/null | grep -q INTERP; then fail "$name has a program interpreter (dynamic)"; fi
    info="$(go version -m "$bin")"
    grep -qP '^\tbuild\tCGO_ENABLED=0$' <<<"$info" && ok "$name: build info CGO_ENABLED=0" || fail "$name: build info lacks CGO_ENABLED=0"
    grep -qP '^\tbuild\t-trimpath=true$' <<<"$info" && ok "$name: build info -trimpath=true" || fail "$name: build info lacks -trimpath=true"
    # With -trimpath the go command leaves -ldflags out of the build info, so
    # the stamp is checked in the binary itself: the -X strings are there
    # (and become rickmorty_build_info{version,commit} at run time).
    if grep -qaF "$test_version" "$bin" && grep -qaF "$test_commit" "$bin"; then
      ok "$name: stamped with version $test_version and commit $test_commit"
    else
      fail "$name: the -X version/commit strings are not in the binary"
    fi
    if [ "$name" = ingester ]; then
      v="$("$bin" version 2>&1 || true)"
      [ "$v" = "ingester $test_version ($test_commit)" ] && ok "ingester version: $v" || fail "ingester version printed '$v'"
    fi
    grep -qP "^$(printf '%s' "$bin" | sed 's/[]\/$*.^[]/\\&/g'): go$go_arg$" <<<"$info" && ok "$name: built by go$go_arg" || fail "$name: not built by go$go_arg"
  done
  unset global_args stage_env stage_args
done

echo
if [ "$failures" -ne 0 ]; then
  echo "check-dockerfiles: $failures problem(s)" >&2
  exit 1
fi
echo "check-dockerfiles: ${dockerfiles[*]} ok"
