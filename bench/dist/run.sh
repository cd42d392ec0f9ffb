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
printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
print()
print(f"{\"shape\":>12} {\"ranks x thr\":>11} {\"overlap\":>7} {\"step ms\":>8} {\"tok/s\":>8} {\"MB/step\":>8} {\"wait ms\":>8} {\"AR alone ms\":>11} {\"vs 1x2\":>7}")
base = {}
for r in rows:
    shape = f"{r[\"d_in\"]}->{r[\"d_sae\"]}"
    if r["world"] == 1: base[shape] = r["step_s"]
    mb = r.get("all_reduce_bytes_per_step", 0) / 2**20
    wait = r.get("all_reduce_wait_s_per_step", 0) * 1e3
    alone = r.get("all_reduce_alone_s", 0) * 1e3
    print(f"{shape:>12} {str(r[\"world\"])+\" x \"+str(r[\"threads\"]):>11} {str(r[\"overlap\"]) if r[\"world\"]>1 else \"-\":>7} "
          f"{r[\"step_s\"]*1e3:8.1f} {r[\"tokens_per_s\"]:8.0f} {mb:8.1f} {wait:8.1f} {alone:11.1f} {base[shape]/r[\"step_s\"]:7.2f}x")
print(f"sgemm in this run: {rows[0][\"sgemm_gflops\"]:.1f} GFLOP/s at 2 threads")
'
