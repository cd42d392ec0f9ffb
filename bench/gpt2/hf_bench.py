#!/usr/bin/env python3
"""The harvest forward in Hugging Face transformers, for bench_gpt2's side-by-side ratio.

  hf_bench.py --dir MODEL --batch B --seq T --blocks K --threads N --iters I

Loads MODEL with GPT2Model.from_pretrained, keeps its first K blocks (what a harvest at
blocks.K.hook_resid_pre needs, as TransformerLens' stop_at_layer does) and times the forward
under torch.inference_mode. Prints one JSON line: {"seconds": best seconds per batch, ...}.
"""
import argparse
import os
import sys

import torch
from transformers import GPT2Model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from time_forward import time_forward  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--blocks", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = GPT2Model.from_pretrained(args.dir, torch_dtype=torch.float32).eval()
    model.h = model.h[: args.blocks]
    time_forward(model, model.config.vocab_size, args.batch, args.seq, args.iters)


if __name__ == "__main__":
    main()
