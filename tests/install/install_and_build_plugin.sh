#!/usr/bin/env bash
# usage: install_and_build_plugin.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
src="$1" build="$2" work="$3"
prefix="$work/prefix"
rm -rf "$work" && mkdir -p "$work"
unset LD_LIBRARY_PATH SAELAB_PLUGIN_PATH

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
exe="$prefix/bin/saelab"
[ -x "$exe" ] || { echo "FAIL: $exe was not installed"; exit 1; }
readelf -d "$exe" | grep -E 'RUNPATH|RPATH' || { echo "FAIL: $exe has no RUNPATH"; exit 1; }

echo "== out-of-tree build of plugins/example against find_package(saelab)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$src/plugins/example" -B "$work/example" "${generator[@]}" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$work/example-configure.log" \
  || { cat "$work/example-configure.log"; exit 1; }
cmake --build "$work/example" > "$work/example-build.log" || { cat "$work/example-build.log"; exit 1; }
plugin="$work/example/plugins/libsaelab_plugin_example.so"
[ -f "$plugin" ] || { echo "FAIL: $plugin was not built"; ls -R "$work/example" | head -40; exit 1; }

echo "== installed saelab plugins, from outside the build tree"
cd "$work"
out=$(SAELAB_PLUGIN_PATH="$work/example/plugins" "$exe" plugins 2>&1) || {
  echo "FAIL: installed saelab did not run:"; echo "$out"; exit 1; }
echo "$out"
grep -q "early_stop" <<<"$out" || { echo "FAIL: the out-of-tree example plugin is not listed"; exit 1; }
grep -q "$prefix/lib" <<<"$out" || { echo "FAIL: the installed plugins were not loaded from $prefix"; exit 1; }
if grep -q "^refused:" <<<"$out"; then echo "FAIL: a plugin was refused"; exit 1; fi
echo "ok: installed saelab runs from $prefix and lists the out-of-tree plugin"
