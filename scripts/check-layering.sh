#!/usr/bin/env bash
# Fails when a framework folder includes a folder above it. Each framework/src/<folder>/README.md
# names the folder's layer ("layer N"); a file in src/<folder>/ or include/saelab/<folder>/ may
# include saelab headers of its own layer or lower ones only. Also checks that every folder has a
# README with a layer, that public headers and sources use the same folders, and that no plugin
# reaches into another plugin's directory.
#   scripts/check-layering.sh [ROOT]     ROOT defaults to the repository this script is in.
set -euo pipefail
root="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
src="$root/framework/src"
inc="$root/framework/include/saelab"
fail=0
declare -A layer

for dir in "$src"/*/; do
  name=$(basename "$dir")
  n=$(grep -oE 'layer [0-9]+' "$dir/README.md" 2>/dev/null | head -1 | cut -d' ' -f2 || true)
  if [ -z "$n" ]; then
    echo "layering: framework/src/$name/README.md is missing or names no 'layer N'" >&2
    fail=1
    continue
  fi
  layer[$name]=$n
done
for dir in "$inc"/*/; do
  name=$(basename "$dir")
  if [ -z "${layer[$name]:-}" ]; then
    echo "layering: include/saelab/$name/ has no framework/src/$name/ with a README naming its layer" >&2
    fail=1
  fi
done
if ls "$src"/*.cpp "$src"/*.hpp "$inc"/*.hpp >/dev/null 2>&1; then
  echo "layering: files sit at the top of framework/src or include/saelab; put them in a concept folder" >&2
  fail=1
fi

# Every include of a saelab folder: <saelab/X/...> or "saelab/X/..." (public) and "X/..." (private).
for name in "${!layer[@]}"; do
  mine=${layer[$name]}
  while IFS=: read -r file line text; do
    target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](saelab\/)?([a-z_]+)\/.*/\2/' <<<"$text")
    theirs=${layer[$target]:-}
    [ -n "$theirs" ] || continue
    if [ "$theirs" -gt "$mine" ]; then
      echo "layering: ${file#"$root"/}:$line: '$name' (layer $mine) includes '$target' (layer $theirs);" \
           "a folder may include only its own layer and lower ones (see framework/src/*/README.md)" >&2
      fail=1
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$src/$name" "$inc/$name" 2>/dev/null || true)
done

# Plugins depend on the framework, never on each other.
while IFS=: read -r file line text; do
  echo "layering: ${file#"$root"/}:$line: a plugin includes another plugin's files ($text);" \
       "move what they share into the framework" >&2
  fail=1
done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"\.\./' "$root/plugins" 2>/dev/null || true)

if [ "$fail" != 0 ]; then exit 1; fi
echo "layering: ok (${#layer[@]} framework folders)"
