#!/usr/bin/env python3
"""The harvest forward of a Llama GGUF in PyTorch (Hugging Face transformers' LlamaModel on the
same dequantized weights), for bench_llama's side-by-side ratio.

  torch_bench.py --gguf FILE --batch B --seq T --blocks K --threads N --iters I

Dequantizes with the gguf package, un-permutes Q and K to Hugging Face's layout, keeps the first K
decoder layers (what a harvest at blocks.K.hook_resid_pre needs) and times the forward under
torch.inference_mode. Prints one JSON line: {"seconds": best seconds per batch, ...}.
"""
import argparse
import os
import sys

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from transformers import LlamaConfig, LlamaModel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from time_forward import time_forward  # noqa: E402


def field(reader, key):
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    return bytes(v).decode() if f.types[0].name == "STRING" else v.item()


def unpermute(w, n_head):
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--gguf", required=True)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--blocks", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    r = GGUFReader(a.gguf)
    W = {t.name: dequantize(t.data, t.tensor_type).reshape([int(x) for x in reversed(t.shape)])
         for t in r.tensors if not t.name.startswith("blk.") or int(t.name.split(".")[1]) < a.blocks}
    n_head = int(field(r, "llama.attention.head_count"))
    n_kv = int(field(r, "llama.attention.head_count_kv"))
    cfg = LlamaConfig(vocab_size=W["token_embd.weight"].shape[0], hidden_size=W["token_embd.weight"].shape[1],
                      intermediate_size=int(field(r, "llama.feed_forward_length")), num_hidden_layers=a.blocks,
                      num_attention_heads=n_head, num_key_value_heads=n_kv,
                      rms_norm_eps=float(field(r, "llama.attention.layer_norm_rms_epsilon")),
                      rope_theta=float(field(r, "llama.rope.freq_base")),
                      max_position_embeddings=int(field(r, "llama.context_length")))
    model = LlamaModel(cfg).eval()
    sd = {"embed_tokens.weight": W["token_embd.weight"], "norm.weight": W["output_norm.weight"]}
    for l in range(a.blocks):
        g, h = f"blk.{l}.", f"layers.{l}."
        sd[h + "self_attn.q_proj.weight"] = unpermute(W[g + "attn_q.weight"], n_head)
        sd[h + "self_attn.k_proj.weight"] = unpermute(W[g + "attn_k.weight"], n_kv)
        sd[h + "self_attn.v_proj.weight"] = W[g + "attn_v.weight"]
        sd[h + "self_attn.o_proj.weight"] = W[g + "attn_output.weight"]
        sd[h + "mlp.gate_proj.weight"] = W[g + "ffn_gate.weight"]
        sd[h + "mlp.up_proj.weight"] = W[g + "ffn_up.weight"]
        sd[h + "mlp.down_proj.weight"] = W[g + "ffn_down.weight"]
        sd[h + "input_layernorm.weight"] = W[g + "attn_norm.weight"]
        sd[h + "post_attention_layernorm.weight"] = W[g + "ffn_norm.weight"]
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()},
                                                strict=False)
    assert not unexpected and all("rotary" in m for m in missing), (missing, unexpected)
    time_forward(model, cfg.vocab_size, a.batch, a.seq, a.iters)


if __name__ == "__main__":
    main()
