#!/usr/bin/env bash
# The data-parallel training benchmark: the Trainer at 576→4608 and 768→24576 (global batch 4096),
# 1 rank × 2 threads against 2 ranks × 1 thread (Gloo over loopback, launched by Debian's torchrun),
# the 2-rank run with and without overlapping the all-reduce with backward. Prints each run's JSON
# and a table with the ratios, all measured in this one invocation.
#   bash bench/dist/run.sh [BUILD_DIR] [STEPS]
set -euo pipefail
build=${1:-build}
steps=${2:-12}
bin="$build/bench/dist/bench_ddp"
[ -x "$bin" ] || { echo "bench/dist/run.sh: $bin is not built (cmake -DSAELAB_BUILD_BENCH=ON)" >&2; exit 2; }
command -v torchrun >/dev/null || { echo "bench/dist/run.sh: torchrun not found (apt-get install python3-torch)" >&2; exit 2; }
# Debian's torch 1.13 under Python 3.11 cannot parse torchrun's default --redirects/--tee of 0
# (AttributeError: 'NoneType' object has no attribute 'get'); 2 (stderr) parses.
launch=(torchrun --redirects 2 --tee 2 --no_python --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1)
port=29650
results=()
for shape in "576 4608" "768 24576"; do
  set -- $shape
  common=(--d-in "$1" --d-sae "$2" --batch 4096 --steps "$steps")
  results+=("$("$bin" "${common[@]}" --threads 2)")
  results+=("$("${launch[@]}" --master_port $((port++)) "$bin" "${common[@]}" --threads 1 | grep '^{')")
  results+=("$("${launch[@]}" --master_port $((port++)) "$bin" "${common[@]}" --threads 1 --no-overlap | grep '^{')")
done
printf '%s\n' "${results[@]}"
printf '%s\n' "${results[@]}" | python3 "$(dirname "$0")/table.py"
