#!/usr/bin/env python3
"""Reference GPT-2 activations from Hugging Face transformers (test-only oracle).

Run with the oracle venv's python (SAELAB_ORACLE_PYTHON; `scripts/setup.sh --oracle` makes it).

  make  --dir D --n-layer L --n-head H --n-embd E --n-positions P --vocab V --seed S
        --layout {hub,prefixed,prefixed-untied} --dtype {F32,F16,BF16}
      Builds GPT2LMHeadModel with random weights (LayerNorm affine parameters and all biases
      randomised too, so they are exercised) and writes D/config.json + D/model.safetensors.
        hub              unprefixed names + the h.{i}.attn.bias / masked_bias buffers, as the
                         hub's openai-community/gpt2 file has them; tied unembedding
        prefixed         "transformer." names + lm_head.weight equal to wte.weight
        prefixed-untied  "transformer." names + an independent lm_head.weight
                         (tie_word_embeddings: false)

  make ... --inputs IN --out OUT [--replace SPEC ...]
      Both in one process (saves a Python start-up per test).

  run   --dir D --inputs IN.safetensors --out OUT.safetensors [--replace SPEC ...]
      Loads D with GPT2LMHeadModel.from_pretrained (transformers' own loader), runs
      IN["tokens"] [B, T] int64 and writes, all float32:
        every TransformerLens hook name (blocks.{L}.hook_resid_pre, ...) [B, T, d]
        logits [B, T, V], loss [B, T-1] (next-token cross-entropy per position)
        logit_effects [n, V] = IN["directions"] @ W_U                  (if IN has directions)
        replace:{SPEC}:logits and replace:{SPEC}:loss for each --replace SPEC, where
        SPEC = "<hook>=scale:<s>" or "<hook>=zero" replaces that hook's activation.
"""
import argparse
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def make(args):
    torch.manual_seed(args.seed)
    untied = args.layout == "prefixed-untied"
    config = GPT2Config(
        n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
        n_positions=args.n_positions, vocab_size=args.vocab,
        bos_token_id=args.vocab - 1, eos_token_id=args.vocab - 1,
        tie_word_embeddings=not untied, activation_function="gelu_new",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))
                else:
                    p.copy_(0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif name == "lm_head.weight" and untied:
                p.copy_(0.05 * torch.randn_like(p))
    dtype = DTYPES[args.dtype]
    tensors = {}
    for name, t in model.state_dict().items():
        if args.layout == "hub":
            if not name.startswith("transformer."):
                continue  # the tied lm_head
            name = name[len("transformer."):]
        tensors[name] = t.detach().to(dtype).clone().contiguous()
    if args.layout == "hub":
        P = args.n_positions
        mask = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
        for i in range(args.n_layer):
            tensors[f"h.{i}.attn.bias"] = mask.clone()
            tensors[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_file(tensors, f"{args.dir}/model.safetensors", metadata={"format": "pt"})
    config.to_json_file(f"{args.dir}/config.json")


def hook_modules(model, n_layer, capture):
    """Registers forward hooks that store each TransformerLens hook point into `capture`."""
    handles = []
    tr = model.transformer

    def out_hook(key, index=None):
        def fn(_module, _inputs, output):
            capture[key] = (output[index] if index is not None else output).detach().clone()
        return fn

    def in_hook(key):
        def fn(_module, inputs):
            capture[key] = inputs[0].detach().clone()
        return fn

    for L in range(n_layer):
        b = tr.h[L]
        handles.append(b.register_forward_pre_hook(in_hook(f"blocks.{L}.hook_resid_pre")))
        handles.append(b.attn.register_forward_hook(out_hook(f"blocks.{L}.hook_attn_out", 0)))
        handles.append(b.ln_2.register_forward_pre_hook(in_hook(f"blocks.{L}.hook_resid_mid")))
        handles.append(b.mlp.register_forward_pre_hook(in_hook(f"blocks.{L}.ln2.hook_normalized")))
        handles.append(b.mlp.act.register_forward_hook(out_hook(f"blocks.{L}.mlp.hook_post")))
        handles.append(b.mlp.register_forward_hook(out_hook(f"blocks.{L}.hook_mlp_out")))
        handles.append(b.register_forward_hook(out_hook(f"blocks.{L}.hook_resid_post", 0)))
    handles.append(tr.ln_f.register_forward_hook(out_hook("ln_final.hook_normalized")))
    return handles


def replacement_hook(model, spec):
    """Installs the replacement SPEC describes; returns the hook handle."""
    hook, op = spec.split("=", 1)
    if op == "zero":
        f = torch.zeros_like
    elif op.startswith("scale:"):
        s = float(op[len("scale:"):])
        f = lambda x: x * s  # noqa: E731
    else:
        raise SystemExit(f"bad replacement op {op!r}")
    tr = model.transformer
    if hook == "ln_final.hook_normalized":
        return tr.ln_f.register_forward_hook(lambda m, i, o: f(o))
    parts = hook.split(".")
    block = tr.h[int(parts[1])]
    name = ".".join(parts[2:])
    if name == "hook_resid_pre":
        return block.register_forward_pre_hook(lambda m, i: (f(i[0]),) + tuple(i[1:]))
    if name == "hook_resid_post":
        return block.register_forward_hook(lambda m, i, o: (f(o[0]),) + tuple(o[1:]))
    if name == "hook_attn_out":
        return block.attn.register_forward_hook(lambda m, i, o: (f(o[0]),) + tuple(o[1:]))
    if name == "hook_mlp_out":
        return block.mlp.register_forward_hook(lambda m, i, o: f(o))
    if name == "ln2.hook_normalized":
        return block.mlp.register_forward_pre_hook(lambda m, i: (f(i[0]),) + tuple(i[1:]))
    if name == "mlp.hook_post":
        return block.mlp.act.register_forward_hook(lambda m, i, o: f(o))
    raise SystemExit(f"replacement at {hook} is not supported by the oracle")


def next_token_loss(logits, tokens):
    B, T, V = logits.shape
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1),
                           reduction="none").view(B, T - 1)


def run(args):
    torch.set_num_threads(args.threads)
    model = GPT2LMHeadModel.from_pretrained(args.dir, torch_dtype=torch.float32).eval()
    inputs = load_file(args.inputs)
    tokens = inputs["tokens"].to(torch.int64)
    out = {}
    with torch.no_grad():
        handles = hook_modules(model, model.config.n_layer, out)
        logits = model(tokens).logits
        for h in handles:
            h.remove()
        out["logits"] = logits
        out["loss"] = next_token_loss(logits, tokens)
        if "directions" in inputs:
            out["logit_effects"] = inputs["directions"].float() @ model.lm_head.weight.T
        for spec in args.replace:
            h = replacement_hook(model, spec)
            logits = model(tokens).logits
            h.remove()
            out[f"replace:{spec}:logits"] = logits
            out[f"replace:{spec}:loss"] = next_token_loss(logits, tokens)
    save_file({k: v.float().contiguous() for k, v in out.items()}, args.out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--dir", required=True)
    for k, d in [("n-layer", 2), ("n-head", 4), ("n-embd", 64), ("n-positions", 64), ("vocab", 500),
                 ("seed", 0)]:
        m.add_argument(f"--{k}", type=int, default=d)
    m.add_argument("--layout", choices=["hub", "prefixed", "prefixed-untied"], default="hub")
    m.add_argument("--dtype", choices=list(DTYPES), default="F32")
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    for q, required in [(m, False), (r, True)]:
        q.add_argument("--inputs", required=required)
        q.add_argument("--out", required=required)
        q.add_argument("--replace", action="append", default=[])
        q.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.cmd == "make":
        make(args)
    if args.cmd == "run" or args.inputs:
        run(args)


if __name__ == "__main__":
    sys.exit(main())
