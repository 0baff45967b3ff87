#!/usr/bin/env python3
"""`rlvr serve` under load, end to end, through the peers' own clients.

run_code: `print(1)` through the `sandbox-fusion` client (one HTTP request per call, as its
docs call it) at 1, 16 and 64 concurrent clients: requests/s, p50 and p99 latency, beside the
server's own in-sandbox time (`run_result.execution_time`: instantiation and the program) and
beside SandboxFusion's per-request floor measured here: a temporary directory, the code written
to a file and one `python3` process started on it (what SandboxFusion does for every request,
before its HTTP layer, its bash wrapper and its container, none of which are counted).

Sessions: `arith/arith-v0` episodes (reset + one step) through OpenEnv's `GenericEnvClient`
over one WebSocket session, against the same episodes in-process (`rlvr.Env`, when the package
is installed): the per-step overhead of the protocol.

Usage (the release binary; the Python test virtualenv has both clients):
    cargo build --release --bin rlvr
    ~/.cache/rlvr/test-venv/bin/python benches/serve_load.py --bin target/release/rlvr

Rounds alternate the two sides at each level; the machine's load average is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def start(binary: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [binary, "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if m:
            threading.Thread(
                target=lambda: [None for _ in proc.stderr], daemon=True
            ).start()  # type: ignore[union-attr]
            return proc, m.group(1)
    raise RuntimeError("rlvr serve did not start")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_clients(concurrency: int, n: int, call) -> tuple[float, list[float]]:
    """`n` calls of `call()` from `concurrency` threads; wall seconds and per-call latencies."""

    def one(_: int) -> float:
        t = time.perf_counter()
        call()
        return time.perf_counter() - t

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        lat = list(pool.map(one, range(n)))
    return time.perf_counter() - t0, lat


def subprocess_floor() -> None:
    """SandboxFusion's per-request work, minus its HTTP server, bash wrapper and container."""
    d = tempfile.mkdtemp()
    try:
        path = os.path.join(d, "main.py")
        with open(path, "w") as f:
            f.write("print(1)")
        out = subprocess.run(
            [sys.executable, path], cwd=d, capture_output=True, timeout=10, check=True
        )
        assert out.stdout == b"1\n"
    finally:
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bin", default=os.environ.get("RLVR_BIN", "target/release/rlvr"))
    ap.add_argument(
        "--requests", type=int, default=400, help="run_code calls per level and round"
    )
    ap.add_argument("--levels", default="1,16,64")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="the server's --workers",
    )
    args = ap.parse_args()

    from sandbox_fusion import RunCodeRequest, RunStatus, run_code

    print(f"machine: {os.cpu_count()} cores, load average before {os.getloadavg()}")
    proc, url = start(args.bin, "--workers", str(args.workers), "--max-sessions", "64")
    try:
        in_sandbox: list[float] = []

        def remote() -> None:
            r = run_code(
                RunCodeRequest(code="print(1)", language="python"),
                endpoint=url,
                max_attempts=1,
            )
            assert r.status == RunStatus.Success and r.run_result.stdout == "1\n", r
            in_sandbox.append(r.run_result.execution_time)

        remote()  # the sandbox is loaded once per process
        print(
            f"\nrun_code print(1), server --workers {args.workers}; {args.requests} calls per level and round"
        )
        print("| clients | side | requests/s | p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        for c in [int(x) for x in args.levels.split(",")]:
            ours: list[tuple[float, list[float]]] = []
            floor: list[tuple[float, list[float]]] = []
            for _ in range(args.rounds):
                ours.append(run_clients(c, args.requests, remote))
                floor.append(run_clients(c, args.requests, subprocess_floor))
            for name, runs in (
                ("rlvr serve, sandbox-fusion client", ours),
                ("python3 process per request", floor),
            ):
                rate = max(args.requests / w for w, _ in runs)
                lat = [x for _, lat in runs for x in lat]
                print(
                    f"| {c} | {name} | {rate:.0f} | {pct(lat, 0.5) * 1e3:.1f} | {pct(lat, 0.99) * 1e3:.1f} |"
                )
        print(
            f"\nin-sandbox time (instantiation + program), median: {statistics.median(in_sandbox) * 1e3:.2f} ms"
        )

        from openenv.core import GenericEnvClient

        base = f"{url}/envs/arith/arith-v0"
        steps: list[float] = []
        with GenericEnvClient(base_url=base).sync() as env:
            for k in range(args.episodes):
                t = time.perf_counter()
                r = env.reset(index=k)
                answer = r.observation["metadata"]["task"]["answer"]
                r = env.step({"message": f"<answer>{answer}</answer>"})
                steps.append(time.perf_counter() - t)
                assert r.reward == 1.0
        print(
            f"\narith episode (reset + step) over a WebSocket session, GenericEnvClient: p50 {pct(steps, 0.5) * 1e3:.2f} ms, "
            f"p99 {pct(steps, 0.99) * 1e3:.2f} ms"
        )
        try:
            import rlvr

            env = rlvr.Env("arith/arith-v0")
            local: list[float] = []
            for k in range(args.episodes):
                t = time.perf_counter()
                _, info = env.reset()
                env.step(f"<answer>{info['task']['answer']}</answer>")
                env.score()
                local.append(time.perf_counter() - t)
            print(
                f"the same in-process (rlvr.Env reset + step + score): p50 {pct(local, 0.5) * 1e3:.3f} ms"
            )
        except ImportError:
            print("(the rlvr package is not installed here: no in-process figure)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    print(f"\nload average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
