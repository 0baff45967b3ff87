"""The causal ladder, small: train on associational queries only, evaluate on all three levels,
SFT against GRPO from the same start. Runs both arms of the comparison for each seed and prints
one table of held-out accuracy by level (`eval/accuracy/<level>`, greedy, full reward of
`causal/tvd`: the answer within 0.02 total variation of the exact one).

    python3 scripts/causal_levels.py                 # seed 0, builds and runs the release binary
    python3 scripts/causal_levels.py --seeds 0 1 2 --rlvr path/to/rlvr

Arms: examples/causal-levels-sft.toml (48 SFT steps on gold answers) and
examples/causal-levels-grpo.toml (the same first 24 SFT steps, then 12 GRPO iterations). The
GRPO run's evaluation after its warm start is the shared start. Each run goes to
runs/<stem>-seedS (an existing run directory is reused, not rerun), and `rlvr report` draws
its curves into runs/<stem>-seedS/report/.
"""

import argparse
import collections
import json
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from quickstart_seeds import metric, rlvr_binary, wall_s

LEVELS = ("associational", "interventional", "counterfactual")
ARMS = ("examples/causal-levels-sft.toml", "examples/causal-levels-grpo.toml")


def run(rlvr: str, exp: str, seed: int) -> str:
    out = f"runs/{os.path.splitext(os.path.basename(exp))[0]}-seed{seed}"
    if not os.path.exists(os.path.join(out, "run.db")):
        subprocess.run([rlvr, "run", exp, "--set", f"run.seed={seed}", "--out", out], check=True)
    subprocess.run([rlvr, "report", out], check=True, stdout=subprocess.DEVNULL)
    return out


def by_level(db: sqlite3.Connection, prefix: str) -> list:
    """The total and each level's accuracy under `prefix` (`sft/eval_` or `eval/`), last value."""
    total = metric(db, f"{prefix}accuracy")[1]
    return [total] + [metric(db, f"{prefix}accuracy/{level}")[1] for level in LEVELS]


def answers(db: sqlite3.Connection) -> dict:
    """The last evaluation's greedy answers by (level, difficulty): how many, how many right, and
    how many are a CPT row of the prompt copied verbatim (what a model that has learned only
    "find the right row" writes)."""
    (it,) = db.execute("SELECT MAX(iteration) FROM samples WHERE split = 'test'").fetchone()
    out = collections.defaultdict(lambda: [0, 0, 0])
    for task, reward, trajectory in db.execute(
        "SELECT task, reward, trajectory FROM samples WHERE split = 'test' AND iteration = ?", (it,)
    ):
        task, reply = json.loads(task), json.loads(trajectory)["messages"][-1]["content"]
        line = re.findall(r"ANSWER \[(.*)\]", reply)
        counts = out[(task["query"]["level"], task["difficulty"])]
        counts[0] += 1
        counts[1] += (reward or 0.0) >= 1.0 - 1e-9
        counts[2] += bool(line) and f"= [{line[-1]}]" in task["prompt"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--rlvr", help="an rlvr binary to use instead of building the release one")
    args = ap.parse_args()
    rlvr = rlvr_binary(args.rlvr)
    f = lambda x: "n/a" if x is None else f"{x:.3f}"
    print("| seed | model | all levels | associational (trained) | interventional | counterfactual | tasks | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        sft_dir, grpo_dir = (run(rlvr, exp, seed) for exp in ARMS)
        sft, grpo = sqlite3.connect(os.path.join(sft_dir, "run.db")), sqlite3.connect(os.path.join(grpo_dir, "run.db"))
        tasks = "/".join(f"{metric(grpo, f'sft/eval_tasks/{level}')[1] or 0:.0f}" for level in LEVELS)
        rows = [
            ("as loaded", [metric(grpo, "sft/eval_accuracy_before")[1], None, None, None], None),
            ("shared start: 24 SFT steps", by_level(grpo, "sft/eval_"), None),
            ("SFT arm: 48 SFT steps", by_level(sft, "sft/eval_"), wall_s(sft_dir, sft)),
            ("GRPO arm: start + 12 GRPO iterations", by_level(grpo, "eval/"), wall_s(grpo_dir, grpo)),
        ]
        for name, values, wall in rows:
            w = "" if wall is None else f"{wall:.0f}"
            print(f"| {seed} | {name} | " + " | ".join(f(v) for v in values) + f" | {tasks} | {w} |")
        arms = {"SFT arm": answers(sft), "GRPO arm": answers(grpo)}
        print(f"\nseed {seed}, the final greedy answers: right / a CPT row copied / tasks")
        print("| level | difficulty | " + " | ".join(arms) + " |")
        print("|---|---|" + "---|" * len(arms))
        for key in sorted(set().union(*arms.values()), key=lambda k: (LEVELS.index(k[0]), k[1])):
            cells = [f"{a[key][1]} / {a[key][2]} / {a[key][0]}" for a in arms.values()]
            print(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
