#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is installed for the browser tests
# (cmd/api: the /docs page and CORS from another origin, driven through the
# DevTools protocol by chromedp). Prints the browser's path on stdout;
# progress goes to stderr. Installs nothing when one is already there:
# $CHROMIUM, else chromium, chromium-browser, google-chrome or
# google-chrome-stable on PATH (GitHub's Ubuntu runners have Google Chrome).
# Otherwise installs Debian's `chromium` package. Ubuntu's `chromium` is only
# a wrapper around a snap, which does not run in containers: there, install
# Google Chrome or a Chromium build and set CHROMIUM to it.
#
# The tests look for the browser the same way. Without one they fail and
# say to run this script; SKIP_BROWSER_TESTS=1 skips them instead.
set -euo pipefail

say() { echo "ensure-chromium: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

find_browser() {
  if [ -n "${CHROMIUM:-}" ]; then
    [ -x "$CHROMIUM" ] && { echo "$CHROMIUM"; return 0; }
    say "CHROMIUM=$CHROMIUM is not an executable file"
    return 1
  fi
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

if path="$(find_browser)"; then
  echo "$path"
  exit 0
fi
[ -z "${CHROMIUM:-}" ] || exit 1

id="$(sed -n 's/^ID=//p' /etc/os-release 2>/dev/null | tr -d '"')"
if [ "$id" != debian ] || ! command -v apt-get >/dev/null 2>&1; then
  say "no Chromium or Google Chrome found; install one (on Debian: apt-get install chromium) and set CHROMIUM to its path if it is not on PATH"
  exit 1
fi
say "installing chromium from Debian packages"
as_root apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >&2
if ! path="$(find_browser)"; then
  say "chromium is still missing after the install"
  exit 1
fi
say "installed $("$path" --version 2>/dev/null || echo "$path")"
echo "$path"
