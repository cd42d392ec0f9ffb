"""Independent oracle for saelab's safetensors code: the Python `safetensors` package (0.4.1).

  check <file>      read a saelab-written file, compare every tensor bit for bit with pattern()
                    and the metadata with METADATA; exit 1 on any difference
  identical <file>  write the same tensors with Python and compare the files byte for byte
  write <file>      write F32/F16/BF16 tensors and metadata for saelab to read

pattern() mirrors tests/formats/test_util.cpp: base_i = (37 i) mod 101, mapped per dtype.
"""
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save, save_file

# name -> (dtype, shape); the C++ side (test_safetensors_oracle.cpp) writes the same set.
SPEC = {
    "f64": (torch.float64, [3, 5]),
    "f32": (torch.float32, [4, 6]),
    "f16": (torch.float16, [7]),
    "bf16": (torch.bfloat16, [2, 3, 4]),
    "i64": (torch.int64, [5]),
    "i32": (torch.int32, [3, 3]),
    "i16": (torch.int16, [6]),
    "i8": (torch.int8, [10]),
    "u8": (torch.uint8, [9]),
    "bool": (torch.bool, [11]),
    "scalar": (torch.float32, []),
    "empty": (torch.float32, [0, 4]),
}
METADATA = {"format": "pt", "note": "saelab \u00e9\n\"quoted\""}
PY_SPEC = {"w_f32": (torch.float32, [4, 6]), "w_f16": (torch.float16, [7]),
           "w_bf16": (torch.bfloat16, [2, 3, 4])}
PY_METADATA = {"format": "pt", "source": "python"}


def pattern(dtype, shape):
    n = 1
    for d in shape:
        n *= d
    base = (torch.arange(n, dtype=torch.int64) * 37) % 101
    sb = base - 50
    if dtype == torch.float64:
        v = sb.to(torch.float64) / 3.0
    elif dtype in (torch.float32, torch.float16, torch.bfloat16):
        v = (sb.to(torch.float32) * 0.25).to(dtype)
    elif dtype == torch.int64:
        v = sb * (1 << 40)
    elif dtype == torch.int32:
        v = (sb * (1 << 20)).to(torch.int32)
    elif dtype == torch.int16:
        v = (sb * 300).to(torch.int16)
    elif dtype == torch.int8:
        v = sb.to(torch.int8)
    elif dtype == torch.uint8:
        v = (base * 2).to(torch.uint8)
    elif dtype == torch.bool:
        v = (base % 3) == 0
    else:
        raise ValueError(dtype)
    return v.reshape(shape)


def special_f32():
    return torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0,
                         1.401298464324817e-45, 3.4028234663852886e38], dtype=torch.float32)


def expected(spec):
    out = {name: pattern(dt, shape) for name, (dt, shape) in spec.items()}
    out["special"] = special_f32()
    return out


def raw_bytes(t):
    return t.contiguous().view(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)


def compare(got, want):
    bad = 0
    for name, w in want.items():
        g = got.get(name)
        if g is None:
            print(f"MISSING {name}")
            bad += 1
            continue
        same = g.dtype == w.dtype and list(g.shape) == list(w.shape) and torch.equal(raw_bytes(g), raw_bytes(w))
        diff = 0.0
        if g.dtype == w.dtype and g.shape == w.shape and g.numel() and g.dtype != torch.bool:
            finite = torch.isfinite(w.double())
            diff = (g.double()[finite] - w.double()[finite]).abs().max().item() if finite.any() else 0.0
        print(f"{name}: dtype {g.dtype} shape {list(g.shape)} bitwise_equal={same} max_abs_diff={diff}")
        bad += not same
    extra = set(got) - set(want)
    if extra:
        print(f"UNEXPECTED tensors {sorted(extra)}")
        bad += 1
    return bad


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "check":
        bad = compare(load_file(path), expected(SPEC))
        with safe_open(path, framework="pt") as f:
            meta = f.metadata()
        print(f"metadata {meta!r} equal={meta == METADATA}")
        bad += meta != METADATA
        sys.exit(1 if bad else 0)
    if cmd == "identical":
        ours = save(expected(SPEC), metadata={"format": "pt"})
        with open(path, "rb") as f:
            theirs = f.read()
        print(f"python {len(ours)} bytes, saelab {len(theirs)} bytes, byte_identical={ours == theirs}")
        sys.exit(0 if ours == theirs else 1)
    if cmd == "write":
        save_file(expected(PY_SPEC), path, metadata=PY_METADATA)
        print(f"wrote {path}")
        return
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
