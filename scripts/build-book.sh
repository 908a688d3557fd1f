#!/usr/bin/env bash
# Build the course site into _build/html, from scratch, failing on any warning or cell error:
# the English pages there, each translation in its own folder (the Chinese one in _build/html/zh),
# and the English messages that the translations are checked against in _build/gettext.
#
# BUILD_LANGUAGES picks the sites (default "en zh_CN"; BUILD_LANGUAGES=en while writing English,
# BUILD_LANGUAGES=zh_CN while translating). BUILD_JOBS sets how many pages execute at once.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ensure-env.sh"
bash scripts/vendor-assets.sh
languages="${BUILD_LANGUAGES:-en zh_CN}"
rm -rf _build/html _build/jupyter_execute _build/.doctrees _build/.jupyter_cache* _build/gettext \
  _build/messages _build/zh_CN
mkdir -p _build/logs
# The pages' code runs here, several pages at a time, into the cache that _config.yml names;
# every build below reads each page's outputs from it, so nothing runs twice, and the builds
# run side by side.
python scripts/execute_pages.py _build/.jupyter_cache --jobs "${BUILD_JOBS:-2}"
# Each translated site reads a copy of the cache whose figures are drawn in its language.
python scripts/translated_cache.py _build/.jupyter_cache $(printf '%s\n' $languages | grep -vx en)

builds=()
start_build() {  # start_build NAME jupyter-book-arguments...: one build in the background
  local name=$1
  shift
  jupyter-book build . --all -W --keep-going "$@" > "_build/logs/$name.log" 2>&1 &
  builds+=("$name:$!")
}
for language in $languages; do
  if [ "$language" = en ]; then
    start_build en
    # The English messages, for cnn_course/tools/translations.py (into _build/gettext).
    start_build messages --builder custom --custom-builder gettext --path-output _build/messages
  else
    # locales/<language>/config.yml holds its changes to _config.yml, site.yml its folder.
    python scripts/language_config.py "$language" "_build/$language"
    start_build "$language" --config "_build/$language/_config.yml" \
      --toc "_build/$language/_toc.yml" --path-output "_build/$language"
  fi
done
failed=0
for build in "${builds[@]}"; do
  if ! wait "${build#*:}"; then
    echo "== the ${build%%:*} build failed (_build/logs/${build%%:*}.log):" >&2
    tail -40 "_build/logs/${build%%:*}.log" >&2
    failed=1
  fi
done
cat _build/logs/*.log
[ "$failed" = 0 ] || exit 1

[ -d _build/messages/_build/gettext ] && mv _build/messages/_build/gettext _build/gettext
for language in $languages; do
  [ "$language" = en ] && continue
  folder=$(python -c "import yaml, sys; print(yaml.safe_load(open(sys.argv[1]))['folder'])" \
    "locales/$language/site.yml")
  mkdir -p _build/html
  rm -rf "_build/html/$folder"
  mv "_build/$language/_build/html" "_build/html/$folder"
done
# myst-nb says "Executing notebook" for a page it did not find in the cache: the page was still
# built correctly, only one at a time (a change in how myst-nb reads pages would cause it).
if missed=$(cat _build/logs/*.log | grep -c "Executing notebook"); then
  echo "note: the builds executed ${missed} page(s) themselves, not found in the cache that" \
       "scripts/execute_pages.py filled; the build is slower than it should be." >&2
fi
echo "The site is in _build/html (open _build/html/index.html)."
