#!/usr/bin/env bash
# Installs the pinned Go-installable tools into ./bin (GOBIN) with `go install`.
#
#   tools/install.sh [TOOL...]          # default: every tool known below
#   tools/install.sh --check [TOOL...]  # exit 0 if none of them needs building
#                                       # (each is in bin/ or the cache), 1 if one does
#
# Versions come from tools/versions.env only. A tool is skipped when ./bin
# already holds a binary built from the pinned module version (read from the
# binary's build info with `go version -m`), so reruns cost nothing.
# To add a tool: pin NAME_VERSION in tools/versions.env and add a case below.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check=false
if [ "${1:-}" = "--check" ]; then check=true; shift; fi
would_build=false
# shellcheck source=tools/versions.env
source "$root/tools/versions.env"
bin="$root/bin"
mkdir -p "$bin"
# ./bin holds only generated binaries: keep it out of git even without a
# .gitignore entry at the root.
[ -f "$bin/.gitignore" ] || printf '*\n' >"$bin/.gitignore"

# Built tools are also kept per version in a cache outside the checkout, so
# a fresh clone on the same machine (CI runs in one) copies them instead of
# building them again.
cache="${RICKMORTY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rickmorty/tools}"

# Tools are built with the project's Go (GOTOOLCHAIN, set by make and the CI
# scripts), and rebuilt when it changes: analysers such as golangci-lint must
# be at least as new as the standard library they read.
gover="$(go env GOVERSION)"

# modversion BINARY MODULE: the version of MODULE the binary was built from,
# empty unless it was built by the Go in use.
modversion() {
  go version -m "$1" 2>/dev/null | awk -v m="$2" -v g="$gover" \
    'NR == 1 && $2 != g { exit } $1 == "mod" && $2 == m { print $3 }'
}

# place SRC DST: copy then rename, so a binary in use is replaced, not rewritten.
place() { cp "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"; }

# install NAME MODULE PACKAGE VERSION [LDFLAGS [TAGS]]
install() {
  local name="$1" module="$2" pkg="$3" version="$4" ldflags="${5:-}" tags="${6:-}"
  local have="" cached="$cache/$name-$version-$gover${tags:+-$tags}/$name"
  if [ -x "$bin/$name" ]; then
    have="$(modversion "$bin/$name" "$module")"
  fi
  if [ "$have" = "$version" ]; then
    $check || echo "tools: $name $version ($gover) already in bin/"
    return 0
  fi
  if [ -x "$cached" ] && [ "$(modversion "$cached" "$module")" = "$version" ]; then
    $check && return 0
    place "$cached" "$bin/$name"
    echo "tools: $name $version copied from $cache"
    return 0
  fi
  if $check; then
    would_build=true
    return 0
  fi
  echo "tools: installing $name $version (${have:+replacing $have, }this can take a few minutes)..."
  local start=$SECONDS
  mkdir -p "$(dirname "$cached")"
  # Outside any module and workspace so that the project's go.mod/go.work are
  # neither read nor changed.
  local dir
  dir="$(mktemp -d)"
  (cd "$dir" && GOWORK=off GOFLAGS=-buildvcs=false GOBIN="$(dirname "$cached")" CGO_ENABLED=0 \
    go install -trimpath ${ldflags:+-ldflags "$ldflags"} ${tags:+-tags "$tags"} "$pkg@$version")
  rmdir "$dir"
  place "$cached" "$bin/$name"
  echo "tools: $name $version installed in $((SECONDS - start))s"
}

major() { local v="${1#v}"; echo "v${v%%.*}"; }

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(helm kubeconform promtool golangci-lint actionlint govulncheck)
# kind is installed on request only (tools/install.sh kind): it needs a Docker engine.
for t in "${tools[@]}"; do
  case "$t" in
    helm)
      m="helm.sh/helm/$(major "$HELM_VERSION")"
      # Stamp the version so `helm version` prints it (go install leaves the default).
      install helm "$m" "$m/cmd/helm" "$HELM_VERSION" "-X $m/internal/version.version=$HELM_VERSION"
      ;;
    kubeconform)
      install kubeconform github.com/yannh/kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
      ;;
    promtool)
      # Module v0.X.Y is Prometheus 3.X.Y (v0.316.0 = 3.16.0); stamp it so `promtool --version` prints it.
      # remove_all_sd (Prometheus' own build tag) leaves out the service
      # discovery plugins (AWS, Azure, GCE, ... SDKs): half the compile of a
      # first build, and nothing `promtool check/test rules` uses (only
      # `promtool check config` of a Prometheus config with those SDs would).
      r="${PROMTOOL_VERSION#v0.}"; mm="${r%%.*}"; v="${mm:0:1}.${mm:1}.${r#*.}"
      install promtool github.com/prometheus/prometheus github.com/prometheus/prometheus/cmd/promtool "$PROMTOOL_VERSION" \
        "-X github.com/prometheus/common/version.Version=$v" remove_all_sd
      ;;
    golangci-lint)
      install golangci-lint github.com/golangci/golangci-lint/v2 github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"
      ;;
    actionlint)
      install actionlint github.com/rhysd/actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
      ;;
    govulncheck)
      install govulncheck golang.org/x/vuln golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION"
      ;;
    kind)
      install kind sigs.k8s.io/kind sigs.k8s.io/kind "$KIND_VERSION"
      ;;
    *)
      echo "tools: unknown tool '$t' (known: helm kubeconform promtool golangci-lint actionlint govulncheck kind)" >&2
      exit 2
      ;;
  esac
done
if $check && $would_build; then exit 1; fi
