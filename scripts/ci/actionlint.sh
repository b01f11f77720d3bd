#!/usr/bin/env bash
# Validates every GitHub workflow (.github/workflows/*.yml) and the local
# composite actions they use with actionlint (ACTIONLINT_VERSION in
# tools/versions.env, installed into ./bin by tools/install.sh): syntax,
# expressions, job dependencies, runner labels, action inputs, and the
# `run:` scripts through shellcheck when shellcheck is on PATH (GitHub's
# runners have it; Debian: apt-get install shellcheck).
#
#   scripts/ci/actionlint.sh [actionlint flags]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

tools/install.sh actionlint >/dev/null
if command -v shellcheck >/dev/null 2>&1; then
  echo "actionlint: $(bin/actionlint -version | head -n 1), with $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"
else
  echo "actionlint: $(bin/actionlint -version | head -n 1), without shellcheck (not installed): run: scripts are not checked"
fi
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
[ ${#workflows[@]} -gt 0 ] || { echo "actionlint: no workflows in .github/workflows" >&2; exit 1; }
bin/actionlint -no-color "$@" "${workflows[@]}"
echo "actionlint: ${#workflows[@]} workflows ok"
