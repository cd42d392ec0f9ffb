"""Oracle for tests/trainer/saelens_oracle_test.cpp: SAELens loads a directory saelab saved.

usage: oracle_saelens_encode.py <sae_dir> <inputs.safetensors> <out.safetensors>

Loads <sae_dir> with sae_lens's SAE.load_from_disk, encodes the tensor "x" [n, d_in] of
<inputs.safetensors> and writes "z" [n, d_sae] (and the architecture SAELens chose, as metadata)
to <out.safetensors>; for a transcoder also its output "y" [n, d_out] (forward, skip term included). Test-only: runs in the SAELens venv (scripts/setup.sh --oracle makes it,
tests/oracle/saelens-requirements.txt pins it).
"""
import sys

import torch
import torch.optim.lr_scheduler as lr_scheduler

# sae_lens names torch>=2's LRScheduler in a type hint at import time; torch 1.13 (Debian's) calls
# the same base class _LRScheduler. Loading and encoding use neither.
if not hasattr(lr_scheduler, "LRScheduler"):
    lr_scheduler.LRScheduler = lr_scheduler._LRScheduler

import sae_lens  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402


def main():
    sae_dir, inputs, out = sys.argv[1:4]
    sae = sae_lens.SAE.load_from_disk(sae_dir, device="cpu")
    x = load_file(inputs)["x"]
    with torch.no_grad():
        z = sae.encode(x).contiguous()
        outputs = {"z": z}
        if isinstance(sae, sae_lens.Transcoder):
            # forward() adds a skip transcoder's W_skip term to decode(z)
            outputs["y"] = sae(x).contiguous()
    arch = sae.cfg.architecture()
    save_file(outputs, out, metadata={"architecture": arch, "sae_lens": sae_lens.__version__})
    print(f"sae_lens {sae_lens.__version__} loaded {sae_dir} as {type(sae).__name__} ({arch}); "
          f"encoded {tuple(x.shape)} -> {tuple(z.shape)}")


if __name__ == "__main__":
    main()
