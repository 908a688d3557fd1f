#!/usr/bin/env bash
# Fetch the JavaScript the site needs (MathJax, RequireJS, the ipywidgets HTML manager) from
# the npm registry into .vendor/, once, so that the built site works without reaching a CDN.
# Without npm or network the site falls back to the CDNs (the build still succeeds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=.vendor
packages=("@jupyter-widgets/html-manager@1.0.7" "requirejs@2.3.7" "mathjax@3.2.2")
anywidget_js="$(python -c 'import anywidget, pathlib; print(pathlib.Path(anywidget.__file__).parent / "nbextension" / "index.js")')"
stamp="${packages[*]} $(python -c 'import anywidget; print(anywidget.__version__)')"
[ "$(cat "$dest/.complete" 2>/dev/null)" = "$stamp" ] && exit 0
if ! command -v npm > /dev/null; then
  echo "npm not found: the site will load MathJax and widget JavaScript from CDNs." >&2
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && npm pack --silent "${packages[@]}" > /dev/null 2>&1); then
  echo "Could not fetch ${packages[*]} from npm: the site will use CDNs." >&2
  exit 0
fi
for archive in "$work"/*.tgz; do
  mkdir -p "${archive%.tgz}" && tar xzf "$archive" -C "${archive%.tgz}"
done
rm -rf "$dest" && mkdir -p "$dest/html-manager"
cp -r "$work"/mathjax-*/package/es5 "$dest/mathjax"
cp "$work"/requirejs-*/package/require.js "$dest/require.js"
find "$work"/jupyter-widgets-html-manager-*/package/dist -maxdepth 1 -type f ! -name '*.map' \
  -exec cp {} "$dest/html-manager/" \;
mkdir -p "$dest/anywidget" && cp "$anywidget_js" "$dest/anywidget/index.js"  # its AMD build
echo "$stamp" > "$dest/.complete"
echo "Vendored ${packages[*]} into $dest/"
