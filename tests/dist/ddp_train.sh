#!/usr/bin/env bash
# Two ranks (Gloo over loopback, launched by Debian's torchrun --no_python) train 200 steps of
# global batch 1024. The result must be bitwise equal to one process that sums the same two
# half-batch gradients in the same order (train.micro_batches: 2), and equal to one process with
# batch 1024 to float tolerance at every logged step.
#   ddp_train.sh SAELAB SOURCE_DIR WORK_DIR      (SAELAB_ORACLE_PYTHON: numpy + safetensors)
set -euo pipefail
saelab=$1 src=$2 work=$3
source "$src/tests/dist/launch.sh"  # py, torchrun_2
cfg="$src/tests/dist/ddp.yaml"
fresh_work_dir
"$saelab" harvest "$cfg" --out "$work/base" 2>/dev/null
for r in one micro two; do cp -r "$work/base" "$work/$r"; done
"$saelab" train "$cfg" --out "$work/one" 2>/dev/null
"$saelab" train "$cfg" --out "$work/micro" --force --set train.micro_batches=2 2>/dev/null
torchrun_2 29701 "$saelab" train "$cfg" --out "$work/two" > "$work/two.log" 2>&1 || { cat "$work/two.log"; exit 1; }
grep -q "world_size" "$work/two/run.json"
echo "== 2 ranks against 1 process summing the two half-batch gradients (train.micro_batches: 2)"
"$py" "$src/tests/dist/compare_runs.py" "$work/two" "$work/micro" --bitwise
echo "== 2 ranks against 1 process with the whole batch"
"$py" "$src/tests/dist/compare_runs.py" "$work/two" "$work/one" --metric-rtol 2e-3
echo "== a store harvested by one process is not resumed by two ranks"
if torchrun_2 29702 "$saelab" harvest "$cfg" --out "$work/base" --resume > "$work/refused.log" 2>&1; then
  echo "two ranks resumed a one-process harvest" >&2
  exit 1
fi
grep -m1 "cannot resume the harvest" "$work/refused.log"
