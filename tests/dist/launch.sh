# Sourced by the data-parallel tests: $py, the oracle Python (numpy, safetensors, h5py), and
# torchrun_2 PORT CMD...: two ranks on this host.
py=${SAELAB_ORACLE_PYTHON:?set SAELAB_ORACLE_PYTHON (scripts/setup.sh --oracle makes .venv-oracle)}
# Debian's torch 1.13 under Python 3.11 cannot parse torchrun's default --redirects/--tee of 0
# (AttributeError: 'NoneType' object has no attribute 'get'); 2 (stderr) parses.
command -v torchrun >/dev/null || { echo "torchrun not found: apt-get install python3-torch (scripts/setup.sh --oracle)" >&2; exit 1; }
torchrun_2() {
  local port=$1
  shift
  torchrun --redirects 2 --tee 2 --no_python --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1 \
    --master_port "$port" "$@"
}
# Empties $work and runs from the source tree (the experiments name data/ relative to it).
fresh_work_dir() {
  rm -rf "$work" && mkdir -p "$work" && cd "$src"
}
