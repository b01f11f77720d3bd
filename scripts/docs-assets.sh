#!/usr/bin/env bash
# Refreshes the Swagger UI files that the API embeds for GET /docs
# (pkg/httpapi/docsui/swagger-ui-dist) from the npm package swagger-ui-dist,
# at the version pinned in that directory's vendor.json, and records what
# was taken: package, version, the package's integrity (sha512, checked
# here against the registry's and, for the pinned version, against the one
# recorded), its licence and a sha256 per file (the Go tests check the
# embedded files against them).
#
#   scripts/docs-assets.sh                        # the pinned version again
#   SWAGGER_UI_VERSION=5.36.0 scripts/docs-assets.sh   # move the pin
#   (make docs-assets does the first)
#
# Needs npm and node (Debian: apt-get install npm). Only the files the page
# loads are kept, with the package's LICENSE (and NOTICE, when it has one).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/pkg/httpapi/docsui/swagger-ui-dist"
pkg=swagger-ui-dist
files=(swagger-ui-bundle.js swagger-ui.css favicon-32x32.png)

say() { echo "docs-assets: $*" >&2; }
die() { say "$*"; exit 1; }
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  die "needs npm and node (apt-get install npm)"
fi

recorded_version="" recorded_integrity=""
if [ -f "$dir/vendor.json" ]; then
  recorded_version="$(node -p 'require(process.argv[1]).version' "$dir/vendor.json")"
  recorded_integrity="$(node -p 'require(process.argv[1]).integrity' "$dir/vendor.json")"
fi
version="${SWAGGER_UI_VERSION:-$recorded_version}"
[ -n "$version" ] || die "no pinned version: set SWAGGER_UI_VERSION (e.g. 5.35.0)"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "SWAGGER_UI_VERSION=$version: want an exact release such as 5.35.0"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say "fetching $pkg@$version"
registry_integrity="$(npm view "$pkg@$version" dist.integrity)"
license="$(npm view "$pkg@$version" license)"
[ -n "$registry_integrity" ] || die "the registry gives no integrity for $pkg@$version"
tarball="$(cd "$tmp" && npm pack --json "$pkg@$version" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s)[0].filename))')"
actual_integrity="sha512-$(openssl dgst -sha512 -binary "$tmp/$tarball" | base64 -w0)"
[ "$actual_integrity" = "$registry_integrity" ] ||
  die "integrity mismatch for $tarball: the registry says $registry_integrity, the download is $actual_integrity"
if [ "$version" = "$recorded_version" ] && [ "$actual_integrity" != "$recorded_integrity" ]; then
  die "$pkg@$version is not the package recorded in vendor.json ($recorded_integrity); refusing to replace it"
fi

tar -xzf "$tmp/$tarball" -C "$tmp"
new="$tmp/out"
mkdir -p "$new"
for f in "${files[@]}" LICENSE; do
  [ -f "$tmp/package/$f" ] || die "$pkg@$version has no $f"
  cp "$tmp/package/$f" "$new/$f"
done
if [ -f "$tmp/package/NOTICE" ]; then cp "$tmp/package/NOTICE" "$new/NOTICE"; fi
node - "$new" "$pkg" "$version" "$actual_integrity" "$license" "${files[@]}" >"$new/vendor.json" <<'EOF'
const fs = require("fs"), crypto = require("crypto"), path = require("path");
const [dir, pkg, version, integrity, license, ...files] = process.argv.slice(2);
const sums = {};
for (const f of files) {
  sums[f] = "sha256-" + crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, f))).digest("hex");
}
const out = {
  package: pkg, version, integrity, license,
  note: "Written by scripts/docs-assets.sh (make docs-assets); do not edit the files here by hand.",
  files: sums,
};
process.stdout.write(JSON.stringify(out, null, 2) + "\n");
EOF
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
cp -r "$new" "$dir"
say "$pkg@$version ($license, $actual_integrity) in ${dir#"$root"/}:"
for f in "$dir"/*; do say "  $(basename "$f") $(wc -c <"$f") bytes"; done
