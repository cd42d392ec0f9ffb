"""Reference timing for bench/sae: the standard SAE training step in plain PyTorch.

The step is the one saelab's bench times, the trainer's default step (SAELens-style code):
forward, MSE + L1 losses, backward, removal of the decoder-gradient component parallel to the
unit-norm rows, gradient-norm clipping at 1, Adam, row renormalisation, and the per-latent firing
counts that dead-latent tracking needs. Prints one JSON line: {"d_sae": ..., "step_s": [seconds per step, ...]}.
Test/bench-only: run with the oracle venv (scripts/setup.sh --oracle).
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--d-in", type=int, default=768)
    ap.add_argument("--d-sae", type=int, required=True)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    W_dec = torch.randn(a.d_sae, a.d_in)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    W_enc = torch.nn.Parameter(W_dec.t().contiguous())
    W_dec = torch.nn.Parameter(W_dec)
    b_enc = torch.nn.Parameter(torch.zeros(a.d_sae))
    b_dec = torch.nn.Parameter(torch.zeros(a.d_in))
    params = [W_enc, b_enc, W_dec, b_dec]
    opt = torch.optim.Adam(params, lr=1e-4)
    x = torch.randn(a.batch, a.d_in)
    fired = torch.zeros(a.d_sae, dtype=torch.int64)

    def step():
        opt.zero_grad(set_to_none=True)
        pre = (x - b_dec) @ W_enc + b_enc
        z = torch.relu(pre)
        x_hat = z @ W_dec + b_dec
        loss = (x_hat - x).pow(2).sum(-1).mean() + 5.0 * z.abs().sum(-1).mean()
        loss.backward()
        with torch.no_grad():
            n = W_dec / W_dec.norm(dim=1, keepdim=True)
            W_dec.grad -= (W_dec.grad * n).sum(1, keepdim=True) * n
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            W_dec.div_(W_dec.norm(dim=1, keepdim=True))
            fired.copy_((z > 0).sum(0))

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(json.dumps({"d_sae": a.d_sae, "threads": torch.get_num_threads(), "step_s": times}))


if __name__ == "__main__":
    main()
