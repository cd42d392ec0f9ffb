#!/usr/bin/env python3
"""The harvest forward in Hugging Face transformers, for bench_gpt2's side-by-side ratio.

  hf_bench.py --dir MODEL --batch B --seq T --blocks K --threads N --iters I

Loads MODEL with GPT2Model.from_pretrained, keeps its first K blocks (what a harvest at
blocks.K.hook_resid_pre needs, as TransformerLens' stop_at_layer does) and times the forward
under torch.inference_mode. Prints one JSON line: {"seconds": best seconds per batch, ...}.
"""
import argparse
import json
import time

import torch
from transformers import GPT2Model


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
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(model.config.vocab_size, (args.batch, args.seq), generator=g)
    times = []
    with torch.inference_mode():
        model(tokens)  # warm-up
        for _ in range(args.iters):
            t0 = time.perf_counter()
            model(tokens)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": min(times), "all": times, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
