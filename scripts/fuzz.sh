#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) into build-fuzz/ and runs
# each for a while, two at a time, then prints one line per target: executions (total and per
# second), the slowest input, the coverage reached (edges, features), and what it found.
#   scripts/fuzz.sh [--seconds N] [--jobs J] [target ...]     default: 600 s each, nproc jobs, all
# Results: build-fuzz/fuzz-results/<target>.log (libFuzzer's output), crash-*/timeout-*/oom-*
# inputs next to it, and summary.txt. The working corpus grows in build-fuzz/fuzz-corpus/<target>;
# the committed seeds (tests/fuzz/corpus) and regressions (tests/fuzz/regressions) are only read.
# Exit status 0 when no target found anything.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
jobs=$(nproc)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1' (allowed: --seconds N, --jobs J, target names)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ "${#targets[@]}" -eq 0 ]; then
  targets=($(sed -n 's/^saelab_add_fuzz_target(\([a-z0-9_]*\).*/\1/p' tests/fuzz/CMakeLists.txt))
fi

clang=$(command -v clang++-14 || command -v clang++ || true)
if [ -z "$clang" ]; then
  echo "fuzz.sh: clang++ not found; run scripts/setup.sh --fuzz (clang-14, libclang-rt-14-dev)" >&2
  exit 2
fi
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$clang" \
  -DSAELAB_FUZZ=ON -DSAELAB_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)"

results=build-fuzz/fuzz-results
mkdir -p "$results"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

run_one() {
  local t="$1" work="build-fuzz/fuzz-corpus/$1"
  mkdir -p "$work" "$results/$t" "tests/fuzz/regressions/$t"
  local dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  set +e
  "build-fuzz/tests/fuzz/fuzz_$t" "$work" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" \
    "${dict[@]}" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=3072 -print_final_stats=1 \
    -artifact_prefix="$results/$t/" >"$results/$t.log" 2>&1
  echo $? >"$results/$t.rc"
  set -e
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

{
  printf '%-22s %10s %8s %8s %8s %8s  %s\n' target execs execs/s slowest edges features result
  for t in "${targets[@]}"; do
    log="$results/$t.log"
    rc=$(cat "$results/$t.rc")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    slow=$(sed -n 's/^stat::slowest_unit_time_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    found=$(ls "$results/$t" 2>/dev/null | tr '\n' ' ')
    result="ok"
    if [ "$rc" != 0 ] || [ -n "$found" ]; then result="FOUND (rc $rc): ${found:-see $log}"; fi
    printf '%-22s %10s %8s %7ss %8s %8s  %s\n' "$t" "${runs:-?}" "${eps:-?}" "${slow:-?}" "${cov:-?}" "${ft:-?}" "$result"
  done
} | tee "$results/summary.txt"
if grep -q FOUND "$results/summary.txt"; then exit 1; fi
