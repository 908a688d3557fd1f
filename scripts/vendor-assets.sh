#!/usr/bin/env bash
# Fetch MathJax from the npm registry into .vendor/, once, so that the built site works without
# reaching a CDN. Without npm or network the site falls back to the CDN (the build still succeeds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=.vendor
packages=("mathjax@3.2.2")
stamp="${packages[*]}"
[ "$(cat "$dest/.complete" 2>/dev/null)" = "$stamp" ] && exit 0
if ! command -v npm > /dev/null; then
  echo "npm not found: the site will load MathJax from a CDN." >&2
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && npm pack --silent "${packages[@]}" > /dev/null 2>&1); then
  echo "Could not fetch ${packages[*]} from npm: the site will use a CDN." >&2
  exit 0
fi
for archive in "$work"/*.tgz; do
  mkdir -p "${archive%.tgz}" && tar xzf "$archive" -C "${archive%.tgz}"
done
rm -rf "$dest" && mkdir -p "$dest"
cp -r "$work"/mathjax-*/package/es5 "$dest/mathjax"
echo "$stamp" > "$dest/.complete"
echo "Vendored ${packages[*]} into $dest/"
