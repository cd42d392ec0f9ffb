#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (committed; rerun to remake them).

Seeds come from real files where the project has them (GPT-2's tokenizer, the experiments, a
trainer checkpoint and a store manifest the test suite writes under build/test-tmp) and from
third-party writers (safetensors, gguf-py) for the formats, each with a few malformed variants
of the kinds the hand-written malformed-file tests cover. Multi-file seeds join their files with
the separator of fuzz_support.hpp.

    .venv-oracle/bin/python tests/fuzz/make_seeds.py [--build build]
"""
import argparse
import glob
import json
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from safetensors.numpy import save

SEP = b"\n--saelab-fuzz-part--\n"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors_seeds(rng):
    good = save({"W": rng.standard_normal((4, 3)).astype(np.float32),
                 "b": np.arange(3, dtype=np.int64), "h": np.ones(5, np.float16)},
                metadata={"format": "pt"})
    put("safetensors", "good", good)
    put("safetensors", "empty-table", save({}))
    n = struct.unpack("<Q", good[:8])[0]
    header = good[8:8 + n]
    put("safetensors", "truncated-data", good[:-7])
    put("safetensors", "huge-header-length", struct.pack("<Q", 1 << 60) + good[8:])
    put("safetensors", "header-past-end", struct.pack("<Q", n + 100) + good[8:])
    bad = header.replace(b'"F32"', b'"F99"')
    put("safetensors", "bad-dtype", struct.pack("<Q", len(bad)) + bad + good[8 + n:])
    over = json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()
    put("safetensors", "overlap", struct.pack("<Q", len(over)) + over + bytes(12))
    big = json.dumps({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 8]}}).encode()
    put("safetensors", "shape-overflow", struct.pack("<Q", len(big)) + big + bytes(8))
    return good


def gguf_file(path, tensors, kv=None, tokenizer=None):
    w = GGUFWriter(path, "llama")
    w.add_uint32("llama.block_count", 2)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_array("test.i32s", [1, -2, 3])
    w.add_bool("test.flag", True)
    for k, v in (kv or {}).items():
        w.add_string(k, v)
    if tokenizer:
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("smollm")
        w.add_token_list(tokenizer["tokens"])
        w.add_token_merges(tokenizer["merges"])
        w.add_token_types(tokenizer["types"])
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
    for name, arr, qtype, shape in tensors:
        w.add_tensor(name, arr, raw_shape=shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "rb") as f:
        return f.read()


# bytes per block, elements per block (ggml's tables)
BLOCKS = {Q.Q8_0: (34, 32), Q.Q4_0: (18, 32), Q.Q4_1: (20, 32), Q.Q5_0: (22, 32), Q.Q5_1: (24, 32),
          Q.Q4_K: (144, 256), Q.Q5_K: (176, 256), Q.Q6_K: (210, 256)}


def gguf_seeds(rng, tok, tmp):
    plain = [("f32", rng.standard_normal((2, 8)).astype(np.float32), None, None),
             ("f16", rng.standard_normal((3, 4)).astype(np.float16), None, None)]
    put("gguf", "plain", gguf_file(os.path.join(tmp, "a.gguf"), plain))
    for qtype, (nbytes, nelem) in BLOCKS.items():
        raw = rng.integers(0, 256, size=(2, nbytes), dtype=np.uint8)  # two rows of one block each
        data = gguf_file(os.path.join(tmp, "q.gguf"), [("q", raw, qtype, None)])
        put("gguf", f"type-{qtype.name}", data)
    small = gguf_file(os.path.join(tmp, "t.gguf"), plain[:1], tokenizer=tok)
    put("gguf", "tokenizer", small)
    put("gguf", "truncated", small[: len(small) // 2])
    put("gguf", "bad-version", small[:4] + struct.pack("<I", 1) + small[8:])
    put("gguf", "huge-counts", small[:8] + struct.pack("<QQ", 1 << 62, 1 << 62) + small[24:])


def byte_alphabet():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def small_vocab(merge_count=300):
    """The 256 byte tokens and the first merges of GPT-2's vocab.bpe, with dense ids."""
    alpha = byte_alphabet()
    tokens = [alpha[b] for b in range(256)]
    known = set(tokens)
    merges = []
    with open(os.path.join(ROOT, "data", "gpt2-tokenizer", "vocab.bpe"), encoding="utf-8") as f:
        for line in f.read().split("\n")[1:]:
            parts = line.split(" ")
            if len(parts) != 2 or parts[0] not in known or parts[1] not in known:
                continue
            merges.append(line)
            if parts[0] + parts[1] not in known:
                tokens.append(parts[0] + parts[1])
                known.add(parts[0] + parts[1])
            if len(merges) == merge_count:
                break
    return tokens, merges


def tokenizer_seeds():
    tokens, merges = small_vocab()
    enc = {t: i for i, t in enumerate(tokens)}
    enc["<|endoftext|>"] = len(tokens)
    encoder = json.dumps(enc, ensure_ascii=False).encode()
    vocab = ("#version: 0.2\n" + "\n".join(merges) + "\n").encode()
    put("gpt2_tokenizer_files", "small", encoder + SEP + vocab + SEP + b"Hello, world! The year 2024.")
    put("gpt2_tokenizer_files", "missing-merge-part", encoder + SEP + b"#version: 0.2\nxx yy\n")
    put("gpt2_tokenizer_files", "duplicate-id", encoder.replace(b'"!": 0', b'"!": 1', 1) + SEP + vocab)
    texts = {"english": "The quick brown fox jumps over the lazy dog. It's 12:30, isn't it?",
             "unicode": "naïve café — 東京 🙂 Ωμέγα", "digits": "1234567890 ½ ² ٣",
             "special": "a<|endoftext|>b<|im_start|>user\n<|im_end|>", "spaces": "  \t\n\n   x  "}
    for name, t in texts.items():
        put("tokenize", name, t)
    put("tokenize", "invalid-utf8", b"ok \xff\xfe \xc3( \xe2\x82 end\x00\x04")
    types = [3] * 3 + [1] * (len(tokens) - 3)
    gtokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + tokens[3:]
    return {"tokens": gtokens, "merges": merges, "types": types}


def sae_seeds(rng):
    d_in, d_sae = 8, 16
    base = {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu", "model_name": "gpt2",
            "hook_name": "blocks.3.hook_resid_pre", "hook_layer": 3, "hook_head_index": None,
            "context_size": 128, "prepend_bos": True, "apply_b_dec_to_input": True,
            "normalize_activations": "none", "dataset_path": "sotu", "finetuning_scaling_factor": False,
            "sae_lens_training_version": None}
    weights = {"W_enc": rng.standard_normal((d_in, d_sae)).astype(np.float32),
               "b_enc": np.zeros(d_sae, np.float32),
               "W_dec": rng.standard_normal((d_sae, d_in)).astype(np.float32),
               "b_dec": np.zeros(d_in, np.float32)}
    sparsity = save({"sparsity": np.full(d_sae, -2.0, np.float32)})
    for arch, extra in [("standard", {}), ("topk", {"k": 4, "activation_fn_kwargs": {"k": 4}}),
                        ("jumprelu", {})]:
        cfg = dict(base, architecture=arch, **extra)
        w = dict(weights)
        if arch == "jumprelu":
            w["threshold"] = np.full(d_sae, 0.1, np.float32)
        put("sae_dir", arch, json.dumps(cfg).encode() + SEP + save(w) + SEP + sparsity)
    cfg = dict(base, architecture="standard", d_sae=1 << 40)
    put("sae_dir", "shape-mismatch", json.dumps(cfg).encode() + SEP + save(weights))


def checkpoint_seeds(build):
    found = sorted(glob.glob(os.path.join(build, "test-tmp", "*", "checkpoints", "step-*", "trainer.json")))
    for i, trainer in enumerate(found[:2]):
        d = os.path.dirname(trainer)
        with open(trainer, "rb") as f, open(os.path.join(d, "state.safetensors"), "rb") as g:
            put("checkpoint", f"real-{i}", f.read() + SEP + g.read())
    put("checkpoint", "not-json", b"{\"format\": \"saelab-train-checkpoint\", \"version\": 1," + SEP + b"")


def store_seeds(build):
    for i, m in enumerate(sorted(glob.glob(os.path.join(build, "test-tmp", "*", "run", "store", "manifest.json")))[:2]):
        with open(m, "rb") as f:
            put("store_manifest", f"real-{i}", f.read())
    put("store_manifest", "empty-object", b"{}")


def experiment_seeds():
    files = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.yaml")))
    files += sorted(glob.glob(os.path.join(ROOT, "tests", "*", "*.yaml")))
    for f in files:
        with open(f, "rb") as g:
            put("experiment", os.path.basename(os.path.dirname(f)) + "-" + os.path.basename(f), g.read())
    put("experiment", "anchors", b"a: &x {b: *x}\ntrain: {lr: [1, [2, [3]]]}\n")


def corpus_seeds():
    lines = [json.dumps({"text": "First document.", "id": 1}), "", json.dumps({"text": "Zweites Dokument ü"}),
             json.dumps({"other": 3})]
    put("corpus", "jsonl-and-text", "\n".join(lines).encode() + SEP + b"A plain text document.\n")
    put("corpus", "bad-utf8", b'{"text": "\xff"}\n' + SEP + b"\xff\xfe")
    put("corpus", "not-object", b"[1, 2]\n\"text\"\n")


def serve_seeds():
    def post(path, body):
        b = json.dumps(body).encode()
        return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(b)}\r\n\r\n").encode() + b
    put("serve", "get-page", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    put("serve", "get-info", b"GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n")
    put("serve", "get-report", b"GET /report/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
    put("serve", "activations", post("/api/activations", {"text": "Hello world, steer me.", "top": 3}))
    put("serve", "activations-latent", post("/api/activations", {"text": "x", "latent": 5}))
    put("serve", "steer", post("/api/steer", {"prompt": "The", "max_new_tokens": 2, "seed": 3,
                                              "features": [{"latent": 1, "mode": "add", "value": 2, "unit": "max"},
                                                           {"latent": 2, "mode": "clamp", "value": 0.5, "unit": "abs"},
                                                           {"latent": 3, "mode": "ablate"}],
                                              "temperature": 0.7, "top_p": 0.9, "positions": "generated"}))
    put("serve", "chunked", b"POST /api/activations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"5\r\n{\"tex\r\n0\r\n\r\n")
    put("serve", "delete", b"DELETE /api/info HTTP/1.1\r\nHost: x\r\n\r\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    tmp = os.path.join(args.build, "fuzz-seed-tmp")
    os.makedirs(tmp, exist_ok=True)
    safetensors_seeds(rng)
    tok = tokenizer_seeds()
    gguf_seeds(rng, tok, tmp)
    sae_seeds(rng)
    checkpoint_seeds(args.build)
    store_seeds(args.build)
    experiment_seeds()
    corpus_seeds()
    serve_seeds()
    for t in sorted(os.listdir(OUT)):
        print(f"{t}: {len(os.listdir(os.path.join(OUT, t)))} seeds")


if __name__ == "__main__":
    main()
