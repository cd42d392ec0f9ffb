"""Compares two training runs: metrics.jsonl at every logged step and the saved SAE's weights.
   compare_runs.py A B --bitwise            every weight bit and every metric equal
   compare_runs.py A B --metric-rtol R      each logged metric within relative R (weights: report)
Prints the max differences (as llm.c's test_gpt2.c does) and exits 1 on a mismatch."""
import argparse, json, sys
import numpy as np
from safetensors.numpy import load_file

TIMING = {"tokens_per_s", "elapsed_s", "eta_s"}

def metrics(run):
    out = []
    for line in open(f"{run}/metrics.jsonl"):
        j = json.loads(line)
        if "event" not in j:
            out.append(j)
    return out

ap = argparse.ArgumentParser()
ap.add_argument("a"); ap.add_argument("b")
ap.add_argument("--bitwise", action="store_true")
ap.add_argument("--metric-rtol", type=float, default=0.0)
args = ap.parse_args()
ma, mb = metrics(args.a), metrics(args.b)
ok = len(ma) == len(mb) and len(ma) > 0
print(f"logged steps: {len(ma)} and {len(mb)}")
worst = 0.0
for x, y in zip(ma, mb):
    step_worst, key = 0.0, ""
    for k, v in x.items():
        if k in TIMING: continue
        d = abs(v - y[k]) / max(abs(v), 1e-12)
        if d > step_worst: step_worst, key = d, k
    print(f"  step {x['step']:4d}: loss {x['loss']:.6g} vs {y['loss']:.6g}, max relative metric difference {step_worst:.3g} ({key or '-'})")
    worst = max(worst, step_worst)
    if args.bitwise and step_worst != 0: ok = False
    if not args.bitwise and step_worst > args.metric_rtol: ok = False
print(f"max relative metric difference over all logged steps: {worst:.3g}")
wa = load_file(f"{args.a}/sae/sae_weights.safetensors")
wb = load_file(f"{args.b}/sae/sae_weights.safetensors")
for k in sorted(wa):
    same = np.array_equal(wa[k].view(np.uint32), wb[k].view(np.uint32))
    print(f"  {k}: max |diff| {float(np.abs(wa[k] - wb[k]).max()):.3g} (max |w| {float(np.abs(wa[k]).max()):.3g}), bitwise {'equal' if same else 'different'}")
    if args.bitwise and not same: ok = False
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
