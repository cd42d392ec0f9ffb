#!/usr/bin/env bash
# The whole test suite, from a clean clone: install (with the test-only oracle), build, test.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh --oracle
export SAELAB_ORACLE_PYTHON="$PWD/.venv-oracle/bin/python"
export SAELAB_SAELENS_PYTHON="$PWD/.venv-saelens/bin/python"
bash scripts/build.sh -DSAELAB_BUILD_TESTS=ON -DSAELAB_BUILD_BENCH=OFF
SAELAB_TIDY="${SAELAB_TIDY:-0}" bash scripts/lint.sh
cd build
ctest --output-on-failure -j2 --timeout 900
echo "test.sh: total $(( $(date +%s) - start )) s (install, build and tests)"
