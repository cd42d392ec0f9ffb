#!/usr/bin/env bash
# Enforces .clang-format on every first-party C++ file, and runs the curated .clang-tidy checks on
# every first-party source: framework, app, plugins, tests, benchmarks (about 16 minutes on 2
# cores, so scripts/test.sh passes SAELAB_TIDY=0; SAELAB_TIDY=0 skips it here too).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h')
if [ "${#files[@]}" -gt 0 ]; then
  clang-format --dry-run --Werror "${files[@]}"
fi
echo "lint: clang-format ok (${#files[@]} files)"
if [ "${SAELAB_TIDY:-1}" = 1 ]; then
  mapfile -t tidy < <(git ls-files '*.cpp')
  if [ ! -f build/compile_commands.json ]; then
    echo "lint: build/compile_commands.json is missing; run scripts/build.sh first" >&2
    exit 1
  fi
  # GCC's precompiled header is unreadable to clang: give clang-tidy the commands without it.
  mkdir -p build/tidy
  sed -E 's/-include [^ ]*cmake_pch\.hxx//g; s/-Winvalid-pch//g' build/compile_commands.json \
    > build/tidy/compile_commands.json
  # LibTorch's <ATen/Parallel.h> includes <omp.h>: clang's comes with libomp-dev (setup.sh).
  printf '%s\n' "${tidy[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p build/tidy --quiet 2>/dev/null
  echo "lint: clang-tidy ok (${#tidy[@]} files)"
fi
