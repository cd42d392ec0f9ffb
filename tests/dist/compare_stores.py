"""Compares the rows of two activation stores, shard by shard in manifest order, bit for bit.
   compare_stores.py STORE_A STORE_B      exits 1 unless every row (activation bits, token,
                                          sequence, position) is equal and in the same order"""
import json, sys
import h5py
import numpy as np

def rows(store):
    m = json.load(open(f"{store}/manifest.json"))
    cols = {k: [] for k in ("activations", "tokens", "sequence", "position")}
    for s in m["shards"]:
        with h5py.File(f"{store}/{s['file']}", "r") as f:
            for k in cols:
                cols[k].append(f[k][...])
    return {k: np.concatenate(v) for k, v in cols.items()}, m

a, ma = rows(sys.argv[1])
b, mb = rows(sys.argv[2])
ok = True
print(f"rows: {len(a['tokens'])} and {len(b['tokens'])}; shards: {len(ma['shards'])} and {len(mb['shards'])}")
for k in a:
    x, y = a[k], b[k]
    if x.shape != y.shape:
        print(f"  {k}: shapes {x.shape} and {y.shape} differ"); ok = False; continue
    same = np.array_equal(x.view(np.uint16), y.view(np.uint16)) if k == "activations" else np.array_equal(x, y)
    line = f"  {k}: {'bitwise equal' if same else 'DIFFERENT'}"
    if not same and k == "activations":
        d = np.abs(x.astype(np.float32) - y.astype(np.float32))
        line += f" in {int((d.max(1) > 0).sum())} rows, max |diff| {float(d.max()):.3g}"
    print(line)
    ok = ok and same
na, nb = ma["stats"]["mean_norm"], mb["stats"]["mean_norm"]
print(f"  mean_norm: {na!r} and {nb!r} (relative difference {abs(na - nb) / na:.3g})")
print("OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
