"""Independent check that a saelab-saved SAE directory is what SAELens loads.

  oracle_sae_dir.py <dir> <architecture> <d_in> <d_sae> [k]

Reads cfg.json with `json` and the tensors with the Python `safetensors` package (numpy flavour:
no torch import, so it starts fast), then checks the
SAELens cfg key set (SAEConfig.to_dict of SAELens 3.x-5.x; 6.x converts this flat form on load),
every value type, every tensor name, shape and dtype, and the tensor values (pattern() from
test_util.cpp: the C++ test stores pattern values, so a transposed or reordered tensor fails).
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def pattern_f32(shape):
    """pattern(kFloat32, shape) of tests/formats/test_util.cpp."""
    n = int(np.prod(shape)) if shape else 1
    base = (np.arange(n, dtype=np.int64) * 37) % 101
    return ((base - 50).astype(np.float32) * np.float32(0.25)).reshape(shape)


SAELENS_KEYS = {
    "architecture": str, "d_in": int, "d_sae": int, "dtype": str, "device": str,
    "model_name": str, "hook_name": str, "hook_layer": int, "hook_head_index": type(None),
    "activation_fn_str": str, "activation_fn_kwargs": dict, "apply_b_dec_to_input": bool,
    "finetuning_scaling_factor": bool, "sae_lens_training_version": type(None),
    "prepend_bos": bool, "dataset_path": str, "dataset_trust_remote_code": bool,
    "context_size": int, "normalize_activations": str, "neuronpedia_id": type(None),
    "model_from_pretrained_kwargs": dict,
}
# SAELens DTYPE_MAP keys (bfloat16 has no numpy dtype; saelab's tests save float32).
DTYPE_MAP = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
             "torch.float32": np.float32, "torch.float64": np.float64, "torch.float16": np.float16}

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def main():
    path, arch, d_in, d_sae = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    k = int(sys.argv[5]) if len(sys.argv) > 5 else None
    with open(os.path.join(path, "cfg.json")) as f:
        cfg = json.load(f)
    for key, typ in SAELENS_KEYS.items():
        check(key in cfg, f"cfg has '{key}'")
        if key in cfg:
            v = cfg[key]
            ok = isinstance(v, typ) and not (typ is int and isinstance(v, bool))
            check(ok, f"cfg '{key}' is {typ.__name__} (got {v!r})")
    check(cfg.get("architecture") == arch, f"architecture == {arch}")
    check(cfg.get("d_in") == d_in and cfg.get("d_sae") == d_sae, f"d_in {d_in}, d_sae {d_sae}")
    check(cfg.get("hook_layer") == int(cfg["hook_name"].split(".")[1]), "hook_layer matches hook_name")
    check(cfg.get("normalize_activations") == "none", "normalize_activations == 'none'")
    check(cfg.get("finetuning_scaling_factor") is False, "finetuning_scaling_factor is false")
    check(cfg.get("dtype") in DTYPE_MAP, "dtype is a SAELens DTYPE_MAP key")
    if k is not None:
        check(cfg.get("k") == k, f"cfg k == {k}")
        check(cfg["activation_fn_kwargs"].get("k") == k, f"activation_fn_kwargs.k == {k}")
        check(cfg.get("activation_fn_str") == "topk", "activation_fn_str == 'topk'")

    dtype = DTYPE_MAP[cfg["dtype"]]
    shapes = {"W_enc": [d_in, d_sae], "b_enc": [d_sae], "W_dec": [d_sae, d_in], "b_dec": [d_in]}
    if arch == "jumprelu":
        shapes["threshold"] = [d_sae]
    weights = load_file(os.path.join(path, "sae_weights.safetensors"))
    check(set(weights) == set(shapes), f"weight names {sorted(weights)} == {sorted(shapes)}")
    for name, shape in shapes.items():
        t = weights.get(name)
        if t is None:
            continue
        check(list(t.shape) == shape, f"{name} shape {list(t.shape)} == {shape}")
        check(t.dtype == dtype, f"{name} dtype {t.dtype} == {dtype}")
        if list(t.shape) == shape:
            diff = float(np.abs(t.astype(np.float64) - pattern_f32(shape).astype(np.float64)).max())
            check(diff == 0.0, f"{name} values match, max_abs_diff={diff}")
    sp_path = os.path.join(path, "sparsity.safetensors")
    if os.path.exists(sp_path):
        sp = load_file(sp_path)
        check(list(sp) == ["sparsity"], "sparsity.safetensors holds only 'sparsity'")
        s = sp["sparsity"]
        check(list(s.shape) == [d_sae], f"sparsity shape {list(s.shape)} == [{d_sae}]")
        check(s.dtype == np.float32, f"sparsity dtype {s.dtype} == float32")
        diff = float(np.abs(s.astype(np.float64) - pattern_f32([d_sae]).astype(np.float64)).max())
        check(diff == 0.0, f"sparsity values match, max_abs_diff={diff}")
    leftovers = [n for n in os.listdir(os.path.dirname(os.path.abspath(path))) if ".tmp." in n]
    check(not leftovers, f"no temp directories left ({leftovers})")
    print(f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
