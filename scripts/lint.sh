#!/usr/bin/env bash
# Enforces .clang-format on every first-party C++ file, and runs the curated .clang-tidy checks on
# the framework sources (SAELAB_TIDY=0 skips clang-tidy, e.g. for a quick local check).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h')
if [ "${#files[@]}" -gt 0 ]; then
  clang-format --dry-run --Werror "${files[@]}"
fi
echo "lint: clang-format ok (${#files[@]} files)"
if [ "${SAELAB_TIDY:-1}" = 1 ]; then
  mapfile -t tidy < <(git ls-files 'framework/src/*.cpp')
  if [ ! -f build/compile_commands.json ]; then
    echo "lint: build/compile_commands.json is missing; run scripts/build.sh first" >&2
    exit 1
  fi
  # GCC's precompiled header is unreadable to clang: give clang-tidy the commands without it.
  mkdir -p build/tidy
  sed -E 's/-include [^ ]*cmake_pch\.hxx//g; s/-Winvalid-pch//g' build/compile_commands.json \
    > build/tidy/compile_commands.json
  printf '%s\n' "${tidy[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p build/tidy --quiet 2>/dev/null
  echo "lint: clang-tidy ok (${#tidy[@]} files)"
fi
