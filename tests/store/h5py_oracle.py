"""Independent reader of a saelab activation store, built on h5py (test oracle only).

usage: h5py_oracle.py STORE_DIR OUT_DIR

Reads manifest.json, then every listed shard with h5py, and writes what it decoded:
  OUT_DIR/activations.f32  float32 little-endian [rows, d]  (bfloat16 decoded from its uint16 bits)
  OUT_DIR/tokens.i32, sequence.i64, position.i32
  OUT_DIR/report.json      attributes of every shard, dataset dtypes, chunking and filters
"""
import json
import os
import sys

import h5py
import numpy as np


def attr(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def main():
    store, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(store, "manifest.json")) as f:
        manifest = json.load(f)
    acts, toks, seqs, poss, shards = [], [], [], [], []
    for entry in manifest["shards"]:
        with h5py.File(os.path.join(store, entry["file"]), "r") as h:
            a = h["activations"]
            enc = attr(a.attrs.get("encoding", ""))
            raw = a[()]
            if enc == "bfloat16":
                vals = (raw.astype(np.uint32) << 16).view(np.float32)
            else:
                vals = raw.astype(np.float32)
            acts.append(vals)
            toks.append(h["tokens"][()].astype("<i4"))
            seqs.append(h["sequence"][()].astype("<i8"))
            poss.append(h["position"][()].astype("<i4"))
            shards.append({
                "file": entry["file"],
                "attrs": {k: attr(v) for k, v in h.attrs.items()},
                "activations_dtype": str(raw.dtype),
                "activations_shape": list(raw.shape),
                "encoding": enc,
                "chunks": list(a.chunks),
                "fletcher32": bool(a.fletcher32),
                "tokens_dtype": str(h["tokens"].dtype),
                "sequence_dtype": str(h["sequence"].dtype),
                "position_dtype": str(h["position"].dtype),
            })
    np.concatenate(acts).astype("<f4").tofile(os.path.join(out, "activations.f32"))
    np.concatenate(toks).tofile(os.path.join(out, "tokens.i32"))
    np.concatenate(seqs).tofile(os.path.join(out, "sequence.i64"))
    np.concatenate(poss).tofile(os.path.join(out, "position.i32"))
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump({"h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version, "shards": shards}, f)


if __name__ == "__main__":
    main()
