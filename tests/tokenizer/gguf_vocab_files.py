"""Writes a GGUF file's tokenizer as vocab.json + merges.txt (what oracle_tokenize.py smollm
reads), read with the Python `gguf` package, and prints the control tokens (token_type 3) one per
line, so the oracle adds them as special tokens.

usage: gguf_vocab_files.py MODEL.gguf OUT_DIR
"""
import json
import os
import sys

from gguf import GGUFReader


def strings(reader, key):
    f = reader.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def main():
    path, out = sys.argv[1:3]
    r = GGUFReader(path)
    tokens = strings(r, "tokenizer.ggml.tokens")
    merges = strings(r, "tokenizer.ggml.merges")
    tt = r.fields["tokenizer.ggml.token_type"]
    types = [int(tt.parts[i][0]) for i in tt.data]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(tokens)}, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write(m + "\n")
    with open(os.path.join(out, "specials.txt"), "w", encoding="utf-8") as f:
        for t, ty in zip(tokens, types):
            if ty == 3:
                f.write(t + "\n")
    print(f"gguf_vocab_files: {len(tokens)} tokens, {len(merges)} merges, "
          f"{sum(1 for t in types if t == 3)} control tokens")


if __name__ == "__main__":
    main()
