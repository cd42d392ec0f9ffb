"""Independent Llama forward pass for the llama source's tests (test-only oracle).

Reads the GGUF file with the Python `gguf` package, dequantizes with gguf.quants.dequantize,
UN-PERMUTES Q and K back to Hugging Face's layout and rotates with Hugging Face's half-split
convention, so it shares none of saelab's choices (fused QKV, adjacent-pair rotary, grouped GEMM).
Computes in float64.

usage: numpy_llama.py GGUF OUT.safetensors --tokens '[[1, 2, 3], [4, 5, 6]]' [--layers 0,5]
OUT holds, for each layer L in --layers and every hook kind, "blocks.L.<hook>" [batch, seq, d],
plus "ln_final.hook_normalized" and "logits" [batch, seq, vocab], all float32.
"""
import argparse
import json

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file


def field(reader, key):
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    if f.types[0].name == "STRING":
        return bytes(v).decode("utf-8")
    return v.item() if hasattr(v, "item") else v[0]


def tensors(reader):
    out = {}
    for t in reader.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float64)
        out[t.name] = a.reshape(tuple(int(x) for x in reversed(t.shape)))
    return out


def unpermute(w, n_head):
    # llama.cpp's converter stored rows as reshape(n_head, 2, Dh/2, in).swapaxes(1, 2); undo it.
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("out")
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--layers", default="")
    a = ap.parse_args()
    r = GGUFReader(a.gguf)
    arch = field(r, "general.architecture")
    n_layer = int(field(r, f"{arch}.block_count"))
    n_head = int(field(r, f"{arch}.attention.head_count"))
    n_kv = int(field(r, f"{arch}.attention.head_count_kv"))
    eps = float(field(r, f"{arch}.attention.layer_norm_rms_epsilon"))
    base = float(field(r, f"{arch}.rope.freq_base"))
    W = tensors(r)
    tokens = np.array(json.loads(a.tokens), dtype=np.int64)
    B, T = tokens.shape
    d = W["token_embd.weight"].shape[1]
    dh = d // n_head
    keep = {int(x) for x in a.layers.split(",") if x != ""}
    out = {}

    inv_freq = 1.0 / (base ** (np.arange(0, dh, 2, dtype=np.float64) / dh))
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb)[None, None], np.sin(emb)[None, None]  # [1, 1, T, dh]
    mask = np.triu(np.full((T, T), -np.inf), 1)

    x = W["token_embd.weight"][tokens]
    for l in range(n_layer):
        p = f"blk.{l}."
        hooks = {"hook_resid_pre": x}
        h = rms_norm(x, W[p + "attn_norm.weight"], eps)
        q = h @ unpermute(W[p + "attn_q.weight"], n_head).T
        k = h @ unpermute(W[p + "attn_k.weight"], n_kv).T
        v = h @ W[p + "attn_v.weight"].T
        q = q.reshape(B, T, n_head, dh).transpose(0, 2, 1, 3)
        k = k.reshape(B, T, n_kv, dh).transpose(0, 2, 1, 3)
        v = v.reshape(B, T, n_kv, dh).transpose(0, 2, 1, 3)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, n_head // n_kv, axis=1)
        v = np.repeat(v, n_head // n_kv, axis=1)
        att = softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + mask)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, d)
        attn_out = ctx @ W[p + "attn_output.weight"].T
        x = x + attn_out
        hooks["hook_attn_out"] = attn_out
        hooks["hook_resid_mid"] = x
        h = rms_norm(x, W[p + "ffn_norm.weight"], eps)
        g = h @ W[p + "ffn_gate.weight"].T
        post = (g / (1.0 + np.exp(-g))) * (h @ W[p + "ffn_up.weight"].T)
        mlp_out = post @ W[p + "ffn_down.weight"].T
        x = x + mlp_out
        hooks["ln2.hook_normalized"] = h
        hooks["mlp.hook_post"] = post
        hooks["hook_mlp_out"] = mlp_out
        hooks["hook_resid_post"] = x
        if l in keep:
            for name, t in hooks.items():
                out[f"blocks.{l}.{name}"] = t
    x = rms_norm(x, W["output_norm.weight"], eps)
    out["ln_final.hook_normalized"] = x
    head = W["output.weight"] if "output.weight" in W else W["token_embd.weight"]
    out["logits"] = x @ head.T
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}, a.out)
    print(f"numpy_llama: {B}x{T} tokens, {n_layer} blocks, wrote {len(out)} tensors to {a.out}")


if __name__ == "__main__":
    main()
