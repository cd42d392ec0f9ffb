"""SAELens's own evaluation code on saelab's fake linear model and SAE (test-only oracle).

Runs sae-lens 6.54.12's `sae_lens/evals.py` (get_sparsity_and_variance_metrics,
get_downstream_reconstruction_metrics: the formulas SAELens fixed in 2026) and
`sae_lens/synthetic/evals.py` (mean_correlation_coefficient, feature_uniqueness,
compute_classification_metrics) unchanged. Only the model, the activation store and the SAE are
stand-ins with the interfaces those functions call: the model is tests/report/fakes.hpp's
FakeSource (h = E[token] + P[position], logits = h·U + c, TransformerLens's per-token loss), the SAE
is relu((x − b_dec)·W_enc + b_enc)·W_dec + b_dec.

usage: python saelens_evals_oracle.py TENSORS.safetensors OUT.json
"""
import json
import sys
from types import SimpleNamespace

import torch
import torch.optim.lr_scheduler as _sched

_sched.LRScheduler = getattr(_sched, "LRScheduler", _sched._LRScheduler)  # torch 1.13

from safetensors.torch import load_file  # noqa: E402
from sae_lens import evals  # noqa: E402
from sae_lens.synthetic import evals as synthetic_evals  # noqa: E402
from sae_lens.training.activation_scaler import ActivationScaler  # noqa: E402

HOOK = "blocks.0.hook_resid_pre"
t = {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in load_file(sys.argv[1]).items()}
tokens = t["tokens"].to(torch.int64)


def hidden(tok):
    return t["E"][tok] + t["P"][: tok.shape[1]].unsqueeze(0)


class FakeModel:
    def run_with_hooks(self, tok, return_type="both", fwd_hooks=(), loss_per_token=True, **_):
        h = hidden(tok)
        for _name, fn in fwd_hooks:
            h = fn(h, hook=None)
        logits = h @ t["U"] + t["c"]
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        loss = -logp.gather(-1, tok[:, 1:].unsqueeze(-1)).squeeze(-1)
        return logits, loss

    def __call__(self, tok, return_type="both", loss_per_token=True, **kw):
        return self.run_with_hooks(tok, return_type, (), loss_per_token, **kw)

    def run_with_cache(self, tok, names_filter=(), **_):
        return None, {names_filter[0]: hidden(tok)}


class FakeStore:
    def __init__(self):
        self.at = 0

    def get_batch_tokens(self, n):
        out = tokens[self.at : self.at + n]
        self.at += n
        return out


class FakeSae:
    cfg = SimpleNamespace(d_sae=t["W_enc"].shape[1], metadata=SimpleNamespace(hook_name=HOOK, hook_head_index=None))
    device = torch.device("cpu")

    def encode(self, x):
        return torch.relu((x - t["b_dec"]) @ t["W_enc"] + t["b_enc"])

    def decode(self, f):
        return f @ t["W_dec"] + t["b_dec"]


sae, n = FakeSae(), tokens.shape[0]
metrics, feature_metrics = evals.get_sparsity_and_variance_metrics(
    sae, FakeModel(), FakeStore(), ActivationScaler(), n_batches=1, compute_l2_norms=True,
    compute_sparsity_metrics=True, compute_variance_metrics=True,
    compute_featurewise_density_statistics=True, eval_batch_size_prompts=n, model_kwargs={},
    ignore_tokens=[0])
metrics.update(evals.get_downstream_reconstruction_metrics(
    sae, FakeModel(), FakeStore(), ActivationScaler(), compute_kl=True, compute_ce_loss=True,
    n_batches=1, eval_batch_size_prompts=n, ignore_tokens=[0]))
metrics["feature_density"] = [float(v) for v in feature_metrics["feature_density"]]

# Ground truth: planted features against the decoder, classification on the given rows.
truth = t["true_features"]
metrics["mcc"] = synthetic_evals.mean_correlation_coefficient(t["W_dec"], truth)
metrics["uniqueness"] = synthetic_evals.feature_uniqueness(t["W_dec"], truth)
c = synthetic_evals.compute_classification_metrics(t["gt_latents"], t["gt_coefficients"], t["W_dec"], truth)
metrics.update(precision=c.precision, recall=c.recall, f1=c.f1_score, accuracy=c.accuracy)
json.dump(metrics, open(sys.argv[2], "w"))
