#!/usr/bin/env python3
"""Independent oracle for saelab's byte-level BPE tokenizers: Hugging Face GPT2TokenizerFast
(tokenizers, Rust) built from the same encoder.json and vocab.bpe, or a tokenizers.Tokenizer built
from that vocabulary and those merges with SmolLM's pre-tokenizer.

usage: oracle_tokenize.py MODE ENCODER_JSON VOCAB_BPE LIST_FILE OUT_DIR [SPECIAL...]
  LIST_FILE names one input file per line; the ids of input i go to OUT_DIR/i.ids (int32 LE).
  MODE text     "<|endoftext|>" is ordinary text (encode_special_tokens = True)
  MODE special  "<|endoftext|>" is the special token 50256 (GPT2TokenizerFast's default)
  MODE bench    no ids: encodes every input single-threaded, prints one JSON line with MB/s
  MODE smollm   models.BPE(vocab, merges) with pre_tokenizers.Sequence([Digits(individual_digits=True),
                ByteLevel(add_prefix_space=False, use_regex=True)]) and decoders.ByteLevel(), as
                SmolLM2's tokenizer.json has them. Each SPECIAL (a token of ENCODER_JSON, taken as
                it is) is added as a special token, so its text is matched before BPE, leftmost-
                longest; without SPECIALs there are none and "<|endoftext|>" is ordinary text.

Inputs are bytes. HF takes only valid text, so bytes that are not well-formed UTF-8 are handled as
saelab defines it: each such byte is a pre-token of its own (its single-byte token) and the valid
runs between are encoded separately. Python's strict UTF-8 decoder finds those bytes here,
independently of saelab's validator.
"""
import json
import os
import sys
import time
from array import array

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"

from transformers import GPT2TokenizerFast  # noqa: E402
from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode  # noqa: E402


def load(encoder_json, vocab_bpe, special):
    tok = GPT2TokenizerFast(vocab_file=encoder_json, merges_file=vocab_bpe)
    backend = tok.backend_tokenizer
    backend.encode_special_tokens = not special
    probe = backend.encode("<|endoftext|>", add_special_tokens=False).ids
    assert (probe == [50256]) == special, f"special-token handling not as asked: {probe}"
    byte_ids = [tok.convert_tokens_to_ids(ch) for _, ch in sorted(bytes_to_unicode().items())]
    return backend, byte_ids


def load_smollm(encoder_json, vocab_bpe, specials):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    with open(encoder_json, encoding="utf-8") as f:
        vocab = json.load(f)
    merges = []
    with open(vocab_bpe, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line and not line.startswith("#version"):
                merges.append(tuple(line.split(" ")))
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    for s in specials:
        assert s in vocab, f"special token {s!r} is not in {encoder_json}"
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    for s in specials:
        probe = tok.encode(s, add_special_tokens=False).ids
        assert probe == [vocab[s]], f"special token {s!r} encodes to {probe}"
    # None for a byte the vocabulary lacks (SmolLM2 has no token for most C0 control bytes): such
    # a byte is dropped, as the BPE model drops it inside valid text.
    byte_ids = [vocab.get(ch) for _, ch in sorted(bytes_to_unicode().items())]
    return tok, byte_ids


def encode_bytes(backend, byte_ids, data):
    ids, pos = [], 0
    while pos < len(data):
        try:
            text = data[pos:].decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start > 0:
                ids += backend.encode(data[pos:pos + e.start].decode("utf-8"),
                                      add_special_tokens=False).ids
            ids += [byte_ids[b] for b in data[pos + e.start:pos + e.end] if byte_ids[b] is not None]
            pos += e.end
            continue
        ids += backend.encode(text, add_special_tokens=False).ids
        break
    return ids


def bench(backend, inputs):
    texts = [open(p, "rb").read().decode("utf-8") for p in inputs]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    best, ntok = None, 0
    for _ in range(2):
        t0 = time.perf_counter()
        ntok = sum(len(backend.encode(t, add_special_tokens=False).ids) for t in texts)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    print(json.dumps({"bytes": nbytes, "tokens": ntok, "seconds": best,
                      "mb_per_s": nbytes / best / 1e6}))


def main():
    if len(sys.argv) < 6 or sys.argv[1] not in ("text", "special", "bench", "smollm"):
        sys.exit(__doc__)
    mode, encoder_json, vocab_bpe, list_file, out_dir = sys.argv[1:6]
    specials = sys.argv[6:]
    if specials and mode != "smollm":
        sys.exit(f"special tokens are given only in mode smollm, not {mode}\n" + __doc__)
    inputs = [line.rstrip("\n") for line in open(list_file, encoding="utf-8") if line.strip()]
    if mode == "smollm":
        backend, byte_ids = load_smollm(encoder_json, vocab_bpe, specials)
    else:
        backend, byte_ids = load(encoder_json, vocab_bpe, special=(mode == "special"))
    if mode == "bench":
        bench(backend, inputs)
        return
    for i, path in enumerate(inputs):
        with open(path, "rb") as f:
            ids = encode_bytes(backend, byte_ids, f.read())
        with open(os.path.join(out_dir, f"{i}.ids"), "wb") as f:
            out = array("i", ids)
            if sys.byteorder != "little":
                out.byteswap()
            out.tofile(f)
    print(f"oracle: {len(inputs)} inputs encoded")


if __name__ == "__main__":
    main()
