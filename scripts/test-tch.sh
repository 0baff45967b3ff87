#!/usr/bin/env bash
# burn-tch on this machine's CPU: builds rlvr with `--features tch` against the libtorch inside
# PyPI's torch 2.9.0 wheel (the version tch 0.22 / burn-tch 0.22.1 are written against), then
# runs the policies' tests on the `tch-cpu` device and a shortened quickstart on it.
#
#   scripts/test-tch.sh
#
# torch goes into a virtualenv of its own (RLVR_TCH_VENV, default ~/.cache/rlvr/tch-venv), pinned.
# The Linux wheel on the package registry is the CUDA 12.8 build: its CPU library links the CUDA
# runtime, so pip also installs the nvidia-*-cu12 packages (a 6.7 GB virtualenv with torch); no GPU is
# needed to run on the CPU. Timings and what CI does with this script: docs/policies.md.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${RLVR_TCH_VENV:-$HOME/.cache/rlvr/tch-venv}"
torch_version=2.9.0
started=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null; then
    echo "test-tch: installing torch==$torch_version into $venv (a 6.7 GB virtualenv with the CUDA runtime packages)" >&2
    "$venv/bin/python" -m pip install -q "torch==$torch_version"
fi
echo "test-tch: torch ready after $(( $(date +%s) - started )) s" >&2

# torch-sys finds libtorch through the python3 on PATH; the binaries find it at run time through
# the library path (its own CUDA dependencies resolve from the wheel's RUNPATH).
export PATH="$venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
torch_lib=$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

RLVR_TEST_DEVICE=tch-cpu cargo test -p rlvr-policies --features tch --lib
echo "test-tch: policies' tests passed on tch-cpu after $(( $(date +%s) - started )) s" >&2

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo run --features tch --quiet -- run examples/quickstart.toml --out "$out/quickstart" \
    --set policy.config.device='"tch-cpu"' --set run.iterations=3 --set sft.steps=50 \
    --set run.eval_every=3 --set run.eval_tasks=32
test -f "$out/quickstart/run.db"
echo "test-tch: passed in $(( $(date +%s) - started )) s" >&2
