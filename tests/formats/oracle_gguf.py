"""Independent oracle for saelab's GGUF reader: the Python `gguf` package (0.19.0, see
tests/oracle/requirements.txt), whose gguf.quants.dequantize saelab must match bit for bit.

  random <out.gguf> <outdir> [seed]   write a GGUF file with GGUFWriter: one tensor of random blocks
                                      per type in RANDOM (f16 scale fields replaced by random finite
                                      halves, so results are finite), every F16 and BF16 bit pattern,
                                      random F32 bits, a Q2_K tensor saelab must refuse to
                                      dequantize, and metadata of every value type (METADATA); then
                                      read it back with GGUFReader and write
                                      <outdir>/<tensor>.f32 = dequantize() as little-endian float32
  dequant <file.gguf> <outdir> <tensor>...
                                      the same <outdir>/<tensor>.f32 for tensors of an existing file

Each .f32 file holds n_elements floats in the row-major order of the reversed ggml shape, which is
what saelab's gguf::dequantize writes. Exit 1 on any inconsistency.
"""
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFValueType as V, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# name -> (type, ggml dims (inner first), byte offsets of the f16 fields inside a block).
# Sizes give several at::parallel_for chunks per tensor on the C++ side.
RANDOM = {
    "q4_0": (T.Q4_0, [8192, 16], [0]),
    "q4_1": (T.Q4_1, [8192, 16], [0, 2]),
    "q5_0": (T.Q5_0, [8192, 16], [0]),
    "q5_1": (T.Q5_1, [8192, 16], [0, 2]),
    "q8_0": (T.Q8_0, [8192, 16], [0]),
    "q4_k": (T.Q4_K, [1024, 64], [0, 2]),
    "q5_k": (T.Q5_K, [1024, 64], [0, 2]),
    "q6_k": (T.Q6_K, [1024, 64], [208]),
    "q2_k": (T.Q2_K, [512, 2], [80, 82]),  # known to ggml, not dequantized by saelab
}
ALIGNMENT = 64  # not the default 32, so the reader must honour general.alignment

# Metadata of every value type; test_gguf_oracle.cpp checks the same values.
METADATA = [
    ("test.u8", V.UINT8, 200),
    ("test.i8", V.INT8, -100),
    ("test.u16", V.UINT16, 60000),
    ("test.i16", V.INT16, -30000),
    ("test.u32", V.UINT32, 4000000000),
    ("test.i32", V.INT32, -2000000000),
    ("test.f32", V.FLOAT32, 0.1),
    ("test.bool", V.BOOL, True),
    ("test.string", V.STRING, "saelab \u00e9 \U0001f642"),
    ("test.u64", V.UINT64, 18000000000000000000),
    ("test.i64", V.INT64, -9000000000000000000),
    ("test.f64", V.FLOAT64, 1e300),
]
ARRAYS = [
    ("test.strings", V.STRING, ["a", "", "\u00e9t\u00e9", "<|im_start|>"]),
    ("test.i32s", V.INT32, [1, -2, 3, 2147483647, -2147483648]),
    ("test.u8s", V.UINT8, [0, 1, 255]),
    ("test.f32s", V.FLOAT32, [0.5, -1.25, 3e38]),
    ("test.bools", V.BOOL, [True, False, True]),
    ("test.nested", V.ARRAY, [[1, 2], [3], [4, 5, 6]]),
]


def finite_halves(rng, n):
    h = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    inf_nan = (h & 0x7C00) == 0x7C00
    h[inf_nan] &= np.uint16(0xBFFF)  # clear the top exponent bit: finite (possibly huge) values
    return h


def random_blocks(rng, qtype, dims, half_offsets):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    rows, row_blocks = int(np.prod(dims[1:])), dims[0] // block_size
    blocks = rng.integers(0, 256, size=(rows * row_blocks, type_size), dtype=np.uint32).astype(np.uint8)
    for off in half_offsets:
        blocks[:, off:off + 2] = finite_halves(rng, blocks.shape[0]).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(list(reversed(dims[1:])) + [row_blocks * type_size])


def write_random(path, seed):
    rng = np.random.default_rng(seed)
    w = GGUFWriter(path, arch="saelab-test")
    w.add_custom_alignment(ALIGNMENT)
    for key, vtype, val in METADATA:
        w.add_key_value(key, val, vtype)
    for key, sub, val in ARRAYS:
        w.add_key_value(key, val, V.ARRAY, sub_type=sub)
    for name, (qtype, dims, halves) in RANDOM.items():
        w.add_tensor(name, random_blocks(rng, qtype, dims, halves), raw_dtype=qtype)
    every_half = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    w.add_tensor("f16", every_half.view(np.float16).reshape(256, 256))
    w.add_tensor("bf16", every_half.view(np.uint8).reshape(256, 512), raw_dtype=T.BF16)
    f32 = rng.integers(0, 1 << 32, size=2 * 3 * 5 * 7, dtype=np.uint64).astype(np.uint32)
    w.add_tensor("f32_4d", f32.view(np.float32).reshape(2, 3, 5, 7))  # ggml dims [7, 5, 3, 2]
    w.add_tensor("f32_small", np.arange(6, dtype=np.float32).reshape(2, 3))  # ggml dims [3, 2]
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def dump(reader, outdir, names):
    outdir.mkdir(parents=True, exist_ok=True)
    by_name = {t.name: t for t in reader.tensors}
    for name in names:
        t = by_name.get(name)
        if t is None:
            sys.exit(f"oracle_gguf: no tensor {name!r}")
        out = np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        if out.size != t.n_elements or out.dtype != np.float32:
            sys.exit(f"oracle_gguf: {name}: dequantize gave {out.size} {out.dtype}, expected {t.n_elements} f32")
        out.astype("<f4", copy=False).tofile(outdir / f"{name}.f32")
        print(f"{name}: {t.tensor_type.name} ggml dims {list(map(int, t.shape))} -> {out.size} floats")


def main(argv):
    if len(argv) >= 3 and argv[0] == "random":
        path, outdir = Path(argv[1]), Path(argv[2])
        write_random(path, int(argv[3]) if len(argv) > 3 else 1234)
        reader = GGUFReader(path)
        if reader.alignment != ALIGNMENT:
            sys.exit(f"oracle_gguf: alignment read back as {reader.alignment}")
        dump(reader, outdir, [t.name for t in reader.tensors])
        return 0
    if len(argv) >= 4 and argv[0] == "dequant":
        dump(GGUFReader(Path(argv[1])), Path(argv[2]), argv[3:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
