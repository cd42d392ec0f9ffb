"""Shared by the benchmarks' PyTorch references: times a model's forward on random tokens.

time_forward(model, vocab_size, batch, seq, iters) runs one warm-up, then `iters` timed forwards
under torch.inference_mode, and prints the one JSON line the C++ side reads:
{"seconds": best seconds per batch, "all": [...], "threads": N, "torch": version}.
"""
import json
import time

import torch


def time_forward(model, vocab_size, batch, seq, iters):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(vocab_size, (batch, seq), generator=g)
    times = []
    with torch.inference_mode():
        model(tokens)  # warm-up
        for _ in range(iters):
            t0 = time.perf_counter()
            model(tokens)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": min(times), "all": times, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))
