#!/usr/bin/env bash
# Keeps the Helm chart's copies of the observability files in step with ops/,
# their single source:
#   ops/alerts/rules.yaml  -> charts/rickmorty/files/alerts/rules.yaml  (PrometheusRule)
#   ops/grafana/*.json     -> charts/rickmorty/files/grafana/           (dashboard ConfigMap)
# Helm reads files only from inside the chart, hence the copies.
#
#   scripts/chart/sync-ops.sh          copy ops/ into the chart
#   scripts/chart/sync-ops.sh --check  exit 1 when a copy differs from ops/ (CI)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ops="$root/ops"
files="$root/charts/rickmorty/files"

check=false
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# pairs "source destination", relative to the repository root
pairs=()
[ -f "$ops/alerts/rules.yaml" ] || { echo "sync-ops: ops/alerts/rules.yaml is missing" >&2; exit 1; }
pairs+=("ops/alerts/rules.yaml charts/rickmorty/files/alerts/rules.yaml")
shopt -s nullglob
dashboards=("$ops"/grafana/*.json)
[ ${#dashboards[@]} -gt 0 ] || { echo "sync-ops: no dashboard in ops/grafana/" >&2; exit 1; }
for d in "${dashboards[@]}"; do
  pairs+=("ops/grafana/$(basename "$d") charts/rickmorty/files/grafana/$(basename "$d")")
done

stale=0
for p in "${pairs[@]}"; do
  src="${p% *}" dst="${p#* }"
  if $check; then
    if ! cmp -s "$root/$src" "$root/$dst"; then
      echo "sync-ops: $dst differs from $src" >&2
      stale=1
    fi
  elif ! cmp -s "$root/$src" "$root/$dst"; then
    mkdir -p "$(dirname "$root/$dst")"
    cp "$root/$src" "$root/$dst"
    echo "sync-ops: copied $src -> $dst"
  fi
done

# A dashboard removed from ops/ must leave the chart too.
for d in "$files"/grafana/*.json; do
  name="$(basename "$d")"
  if [ ! -f "$ops/grafana/$name" ]; then
    if $check; then
      echo "sync-ops: charts/rickmorty/files/grafana/$name has no source in ops/grafana/" >&2
      stale=1
    else
      rm "$d"
      echo "sync-ops: removed charts/rickmorty/files/grafana/$name (gone from ops/grafana/)"
    fi
  fi
done

if $check; then
  if [ "$stale" -ne 0 ]; then
    echo "sync-ops: the chart's copies of ops/ are stale: run scripts/chart/sync-ops.sh and commit the result" >&2
    exit 1
  fi
  echo "sync-ops: chart copies match ops/"
fi
