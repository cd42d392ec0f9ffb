#!/usr/bin/env bash
# A two-rank harvest (torchrun) and a one-process harvest killed with SIGKILL twice and resumed
# must each equal a one-process uninterrupted harvest bitwise, row for row, and pass
# `saelab store info --verify`.
#   harvest.sh SAELAB SOURCE_DIR WORK_DIR      (SAELAB_ORACLE_PYTHON: numpy + h5py)
set -euo pipefail
saelab=$1 src=$2 work=$3
source "$src/tests/dist/launch.sh"  # py, torchrun_2
cfg="$src/tests/dist/harvest.yaml"
fresh_work_dir

stored_rows() {  # rows committed in a store's manifest (0 before the first commit)
  "$py" -c 'import json,sys
try: print(json.load(open(sys.argv[1] + "/manifest.json"))["rows"])
except (OSError, ValueError): print(0)' "$1"
}

# Starts a harvest and SIGKILLs it once its store has at least $1 rows committed.
harvest_killed_at() {
  local at=$1
  shift
  "$saelab" harvest "$cfg" --out "$work/killed" "$@" > "$work/killed.log" 2>&1 &
  local pid=$!
  while [ "$(stored_rows "$work/killed/store")" -lt "$at" ]; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/killed.log"; echo "the harvest ended before it was killed" >&2; exit 1; }
    sleep 0.1
  done
  kill -9 "$pid"
  wait "$pid" || true
  echo "killed with SIGKILL at $(stored_rows "$work/killed/store") committed rows"
}

"$saelab" harvest "$cfg" --out "$work/alone" 2>/dev/null
torchrun_2 29711 "$saelab" harvest "$cfg" --out "$work/ranks" > "$work/ranks.log" 2>&1 || { cat "$work/ranks.log"; exit 1; }
harvest_killed_at 6000
harvest_killed_at 16000 --resume
"$saelab" harvest "$cfg" --out "$work/killed" --resume 2>&1 | grep "resuming at sequence"

for s in ranks killed; do
  echo "== $s against the uninterrupted one-process harvest"
  "$py" "$src/tests/dist/compare_stores.py" "$work/alone/store" "$work/$s/store"
  "$saelab" store info --verify "$work/$s/store" > "$work/$s.info.json"
  "$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["ok"] and j["verified"] and j["complete"] and not j["unlisted_files"], j; print("store info --verify: ok,", len(j["shards"]), "shards")' "$work/$s.info.json"
done
