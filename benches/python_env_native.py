#!/usr/bin/env python3
"""The letters environment (`examples/python-env/letters.py`) run natively in CPython, next to
`benches/python_env.rs` (the same file through rlvr's sandbox, and its Rust twin).

How to run (from the repository root):

    cargo bench --bench python_env --no-default-features --features code -- 300 > ours.jsonl
    python3 benches/python_env_native.py ours.jsonl [N]

Each episode is `reset`, a wrong answer, the right answer, as in the Rust bench. Native Python
runs the functions in one process (one interpreter, the module's globals reset by `reset`), at 1
and 2 processes (the GIL rules out threads). Prints the JSON lines of both sides, then a table of
steps per second and the ratios: sandbox vs Rust, and sandbox vs native CPython.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

FILE = Path(__file__).resolve().parent.parent / "examples" / "python-env" / "letters.py"


def load():
    spec = importlib.util.spec_from_file_location("letters", FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(args):
    n, offset = args
    env = load()
    tasks = env.tasks("train", 0, 1000)
    reset_s, step_s, steps = 0.0, 0.0, 0
    for i in range(n):
        task = tasks[(i + offset) % len(tasks)]
        t = time.perf_counter()
        env.reset(task, i)
        reset_s += time.perf_counter() - t
        for answer in ("many", str(task["count"])):
            t = time.perf_counter()
            out = env.step(answer)
            step_s += time.perf_counter() - t
            steps += 1
            if out["done"]:
                break
    return reset_s, step_s, steps, n


def native(n: int, procs: int) -> dict:
    wall = time.perf_counter()
    with mp.Pool(procs) as pool:
        parts = pool.map(worker, [(n, p) for p in range(procs)])
    secs = time.perf_counter() - wall
    return {
        "impl": "native",
        "threads": procs,
        "episodes": sum(p[3] for p in parts),
        "steps": sum(p[2] for p in parts),
        "steps_per_s": round(sum(p[2] / p[1] for p in parts), 1),
        # Wall time includes starting the processes; per-episode time is what matters.
        "episodes_per_s": round(sum(p[3] / (p[0] + p[1]) for p in parts), 1),
    }


def main() -> None:
    args = sys.argv[1:]
    ours = [json.loads(l) for l in open(args[0])] if args and not args[0].isdigit() else []
    n = int(next((a for a in args if a.isdigit()), "30000"))
    rows = ours + [native(n, p) for p in (1, 2)]
    for r in rows:
        print(json.dumps(r))
    by = {(r["impl"], r["threads"]): r for r in rows}
    print(f"\n{'threads':>7} {'impl':>8} {'steps/s':>12} {'episodes/s':>12} {'sandbox step slower by':>24}")
    for t in (1, 2):
        for impl in ("rust", "sandbox", "native"):
            r = by.get((impl, t))
            if not r:
                continue
            sb = by.get(("sandbox", t))
            ratio = f"{r['steps_per_s'] / sb['steps_per_s']:.0f}x" if sb and impl != "sandbox" else ""
            print(f"{t:>7} {impl:>8} {r['steps_per_s']:>12.0f} {r['episodes_per_s']:>12.1f} {ratio:>24}")


if __name__ == "__main__":
    main()
