#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (leak checking on), in
# build-asan/. Any report fails the test that produced it, so a clean run is ctest's "100% tests
# passed". Suppressions, each with what was seen and why it is not ours: tests/sanitizers/.
#   scripts/sanitize.sh [ctest arguments...]        e.g. -R Safetensors
# Needs what scripts/test.sh needs (scripts/setup.sh --oracle first). About 3x the normal suite.
set -euo pipefail
cd "$(dirname "$0")/.."
supp="$PWD/tests/sanitizers"
# Every process the suite starts (saelab itself, test binaries, gtest discovery at build time)
# inherits these; halt_on_error makes each report a failure.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_odr_violation=0:suppressions=$supp/asan.supp"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export SAELAB_ORACLE_PYTHON="${SAELAB_ORACLE_PYTHON:-$PWD/.venv-oracle/bin/python}"
export SAELAB_SAELENS_PYTHON="${SAELAB_SAELENS_PYTHON:-$PWD/.venv-saelens/bin/python}"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAELAB_SANITIZE=ON \
  -DSAELAB_BUILD_TESTS=ON -DSAELAB_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
set +e
ctest --output-on-failure -j"$(nproc)" --timeout 2400 "$@" >ctest-sanitize.log 2>&1
rc=$?
set -e
tail -40 ctest-sanitize.log
echo "sanitize.sh: full log in build-asan/ctest-sanitize.log"
exit "$rc"
