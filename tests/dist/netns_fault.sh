#!/usr/bin/env bash
# Two "nodes": network namespaces made here, joined by a veth pair, one rank in each (Gloo over
# 10.231.0.0/24, rank 0 hosting the rendezvous store). A run that checkpoints has rank 1 killed with
# SIGKILL; rank 0 must stop within distributed.timeout_s with an error naming rank 1 and the last
# committed checkpoint; relaunched with --resume, the run finishes with an SAE bitwise equal to an
# uninterrupted run on two ranks. Needs root (ip netns, veth).
#   netns_fault.sh SAELAB SOURCE_DIR WORK_DIR      (SAELAB_ORACLE_PYTHON: numpy + safetensors)
set -euo pipefail
saelab=$1 src=$2 work=$3
source "$src/tests/dist/launch.sh"  # py, torchrun_2
command -v ip >/dev/null || { echo "netns_fault.sh: 'ip' not found: apt-get install iproute2" >&2; exit 1; }
cfg="$src/tests/dist/ddp.yaml"
tag="sl$$"
ns=("$tag-a" "$tag-b")
veth=("${tag}a" "${tag}b")
addr=(10.231.0.1 10.231.0.2)
cleanup() { for n in "${ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done; }
trap cleanup EXIT
for i in 0 1; do
  ip netns add "${ns[$i]}" || { echo "netns_fault.sh: cannot create network namespaces (needs root / CAP_NET_ADMIN)" >&2; exit 1; }
done
ip link add "${veth[0]}" type veth peer name "${veth[1]}"
for i in 0 1; do
  ip link set "${veth[$i]}" netns "${ns[$i]}"
  ip -n "${ns[$i]}" addr add "${addr[$i]}/24" dev "${veth[$i]}"
  ip -n "${ns[$i]}" link set "${veth[$i]}" up
  ip -n "${ns[$i]}" link set lo up
done

fresh_work_dir
# Rank $1 of 2 in its namespace, the rest of the arguments to saelab; its PID in pid[$1].
pid=()
rank() {
  local r=$1
  shift
  ip netns exec "${ns[$r]}" env RANK="$r" WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 \
    MASTER_ADDR="${addr[0]}" MASTER_PORT=29721 GLOO_SOCKET_IFNAME="${veth[$r]}" \
    "$saelab" train "$cfg" "$@" > "$work/rank$r.log" 2>&1 &
  pid[$r]=$!
}
two_ranks() {  # both ranks to the end; fails when either does
  rank 0 "$@"
  rank 1 "$@"
  wait "${pid[0]}" || { cat "$work/rank0.log"; exit 1; }
  wait "${pid[1]}" || { cat "$work/rank1.log"; exit 1; }
}
every=(--set train.checkpoint_every_tokens=20480 --set train.training_tokens=307200)

"$saelab" harvest "$cfg" --out "$work/base" 2>/dev/null
cp -r "$work/base" "$work/whole"
cp -r "$work/base" "$work/faulted"
echo "== uninterrupted, two ranks"
two_ranks --out "$work/whole" --force "${every[@]}"

echo "== rank 1 killed with SIGKILL after the checkpoint of step 100"
rank 0 --out "$work/faulted" --force "${every[@]}"
rank 1 --out "$work/faulted" --force "${every[@]}"
p0=${pid[0]} p1=${pid[1]}
until [ -e "$work/faulted/checkpoints/step-000000000100/COMMITTED" ]; do
  kill -0 "$p1" 2>/dev/null || { cat "$work/rank1.log"; echo "rank 1 ended before it was killed" >&2; exit 1; }
  sleep 0.05
done
kill -9 "$p1"
killed=$(date +%s%3N)
rc=0
wait "$p0" || rc=$?
stopped=$(date +%s%3N)
wait "$p1" 2>/dev/null || true
took=$((stopped - killed))
echo "rank 0 exited with status $rc, $took ms after the kill (distributed.timeout_s: 60)"
grep "error" "$work/rank0.log" | tail -1
[ "$rc" -ne 0 ] || { echo "rank 0 did not fail when rank 1 was lost" >&2; exit 1; }
grep -q "rank 1 is lost" "$work/rank0.log" || { echo "rank 0's error does not name the lost rank" >&2; exit 1; }
grep -q "last committed checkpoint is .*step-0000000" "$work/rank0.log" || { echo "rank 0's error does not name the last committed checkpoint" >&2; exit 1; }
[ "$took" -lt 60000 ] || { echo "rank 0 took longer than distributed.timeout_s to stop" >&2; exit 1; }

echo "== relaunched with --resume"
two_ranks --out "$work/faulted" --force --resume "${every[@]}"
grep -h "continuing" "$work/rank0.log" || true
"$py" "$src/tests/dist/compare_runs.py" "$work/faulted" "$work/whole" --bitwise
