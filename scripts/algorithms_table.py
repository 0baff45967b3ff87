#!/usr/bin/env python3
"""The quickstart's task under each algorithm, from the same SFT warm start: held-out greedy and
sampled accuracy after SFT and after the RL iterations, and the run's wall time. Each method is
`rlvr run examples/quickstart.toml` with a few `--set`s; runs go one after another (never two at
once), into OUT/METHOD-seedS (`--out runs/algos` by default; an existing run directory is
reused, not rerun, so give a new --out after changing the experiment).

    cargo build --release
    python3 scripts/algorithms_table.py --rlvr target/release/rlvr [--seeds 0 1 2] [--methods grpo dpo ...]

The machine's load average is printed before and after every run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sqlite3
import statistics
import subprocess
import time

# name -> the --set overrides that select it (all on the quickstart's own settings otherwise).
METHODS: dict[str, list[str]] = {
    "grpo": [],
    "rloo": ['train.grpo.baseline="leave-one-out"'],
    "gspo": ['train.algorithm="gspo"', "train.clip_low=3e-4", "train.clip_high=4e-4"],
    "cispo": ['train.algorithm="cispo"', "train.clip_low=0.99", "train.clip_high=0.28"],
    "reinforce++": ['train.algorithm="reinforce++"'],
    "dpo": ['train.algorithm="dpo"', "train.minibatch=0"],
    "rft": ['train.algorithm="rft"'],
    # GRPO with Prefix-RFT's hybrid rollouts: 2 of each group's 8 samples continue a prefix of
    # the gold answer, 0.95 of it at the first iteration, none at the last.
    "prefix-rft": ["train.prefix.samples=2"],
    "dft+grpo": ['sft.loss="dft"'],
    # Controls: three times the SFT steps on the same demonstrations and no RL (its "after RL"
    # columns are one GRPO iteration, not a result); and SFT on every training problem, the
    # quickstart as it was before its demonstrations were made scarce, then GRPO.
    "sft-x3": ["sft.steps=1500", "run.iterations=1"],
    "all-demos+grpo": ["sft.tasks=0"],
}


def metric(db: sqlite3.Connection, name: str) -> float | None:
    row = db.execute(
        "SELECT value FROM metrics WHERE name = ? AND value IS NOT NULL ORDER BY iteration DESC LIMIT 1", (name,)
    ).fetchone()
    return None if row is None else row[0]


def fmt(xs: list[float | None], digits: int = 3) -> str:
    v = [x for x in xs if x is not None]
    if not v:
        return "n/a"
    each = f" ({', '.join(f'{x:.{digits}f}' for x in v)})" if len(v) > 1 else ""
    return f"{statistics.mean(v):.{digits}f}" + each


def wall_s(out: str, db: sqlite3.Connection) -> float:
    """A run's wall time: from its config.toml (written as the run starts) to its last
    iteration's end, so runs made by an earlier invocation report their own time too."""
    (last,) = db.execute("SELECT MAX(finished_at) FROM iterations").fetchone()
    end = datetime.datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp()
    return end - os.path.getmtime(os.path.join(out, "config.toml"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rlvr", default="target/release/rlvr")
    ap.add_argument("--exp", default="examples/quickstart.toml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--out", default=os.path.join("runs", "algos"))
    args = ap.parse_args()
    results: dict[str, list[tuple[float | None, ...]]] = {}
    for seed in args.seeds:
        for name in args.methods:
            out = os.path.join(args.out, f"{name}-seed{seed}")
            if not os.path.exists(os.path.join(out, "run.db")):
                print(f"{name} seed {seed}: load {os.getloadavg()}", flush=True)
                sets = [f"run.seed={seed}", *METHODS[name]]
                cmd = [args.rlvr, "run", args.exp, "--out", out]
                for s in sets:
                    cmd += ["--set", s]
                start = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                print(f"  {time.perf_counter() - start:.0f} s, load after {os.getloadavg()}", flush=True)
            db = sqlite3.connect(os.path.join(out, "run.db"))
            wall = wall_s(out, db)
            results.setdefault(name, []).append(
                (
                    metric(db, "sft/eval_accuracy"),
                    metric(db, "sft/eval_sampled_accuracy"),
                    metric(db, "eval/accuracy"),
                    metric(db, "eval/sampled_accuracy"),
                    wall,
                )
            )
    print(f"\nseeds {args.seeds}; accuracy on the held-out problems (greedy / sampled at the policy's temperature)")
    print("| method | after SFT, greedy | after SFT, sampled | after RL, greedy | after RL, sampled | wall s |")
    print("|---|---|---|---|---|---|")
    for name, rows in results.items():
        cols = list(zip(*rows))
        print(f"| {name} | " + " | ".join(fmt(list(c)) for c in cols[:4]) + f" | {fmt(list(cols[4]), 0)} |")


if __name__ == "__main__":
    main()
