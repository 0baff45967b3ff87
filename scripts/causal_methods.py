"""The post-training methods on causal queries (SmolLM2-135M-Instruct), every one from the same
warm start: held-out accuracy by level before and after, rows trained, and wall time.

    python3 scripts/causal_methods.py                          # seed 0, every method
    python3 scripts/causal_methods.py --rlvr path/to/rlvr --seeds 0 1 --methods grpo cispo

The warm start is the causal ladder's: 24 SFT steps on gold answers
(examples/causal-levels-sft.toml with `sft.steps=24`), made once per seed into
OUT/start-seedS. Then:
- the RL methods: examples/causal-methods.toml (8 iterations of 4 tasks x 8 samples from the
  warm start) with `train.algorithm` and the settings listed in METHODS;
- the SFT arms: 24 more SFT steps from the warm start, cross-entropy or DFT (`sft.loss`), on
  the same demonstrations as each other, drawn from 400 gold answers (`sft.tasks=400`): with
  the warm start's 192, the same seed would replay the 96 it trained on, and another seed
  would draw other held-out tasks. In expectation a quarter of the 96 were in the warm start's.
Runs go one after another into OUT/METHOD-seedS (`--out runs/causal-methods` by default); an
existing run directory is reused, not rerun, and one without a final evaluation (a killed run)
stops the script. The machine's load is printed around every run.
"""

import argparse
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from algorithms_table import METHODS as QUICKSTART
from algorithms_table import fmt
from causal_levels import answers
from quickstart_seeds import metric, rlvr_binary, wall_s

LEVELS = ("associational", "interventional", "counterfactual")
RL = "examples/causal-methods.toml"
SFT = "examples/causal-levels-sft.toml"
TASKS = 40  # held-out tasks: `run.eval_tasks` of both example files (the whole test split)

# name -> the --set overrides of examples/causal-methods.toml that select it: the quickstart
# comparison's settings for the methods both run.
METHODS: dict[str, list[str]] = {
    "grpo": [],
    "prefix-rft": ["train.prefix.samples=2"],
    **{name: QUICKSTART[name] for name in ("cispo", "gspo", "rloo", "reinforce++", "rft")},
    # Each pair in one step: 8 rows of ~500 tokens, which gradient checkpointing keeps in RAM.
    "dpo": [*QUICKSTART["dpo"], "policy.config.gradient_checkpointing=true"],
}
# name -> the --set overrides of the SFT arm (examples/causal-levels-sft.toml from the start).
SFT_ARMS: dict[str, list[str]] = {
    "sft": ["sft.steps=24", "sft.tasks=400"],
    "dft": ["sft.steps=24", "sft.tasks=400", 'sft.loss="dft"'],
}


def start_checkpoint(rlvr: str, out: str, seed: int) -> str:
    """The warm start of `seed`, made when missing: the SFT arm's first 24 steps."""
    run_dir = os.path.join(out, f"start-seed{seed}")
    path = os.path.join(run_dir, "checkpoints", "it-000000", "policy")
    if not os.path.exists(os.path.join(path, "model.safetensors")):
        sets = [f"run.seed={seed}", "sft.steps=24", "run.eval_every=0"]
        timed(rlvr, SFT, run_dir, sets, f"warm start, seed {seed}")
    return path


def timed(rlvr: str, exp: str, out: str, sets: list[str], what: str) -> None:
    print(f"{what}: load {os.getloadavg()}", flush=True)
    cmd = [rlvr, "run", exp, "--out", out]
    for s in sets:
        cmd += ["--set", s]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"  {time.perf_counter() - started:.0f} s, load after {os.getloadavg()}", flush=True)


def sft_arm_file(out: str, start: str) -> str:
    """examples/causal-levels-sft.toml loading the warm start instead of the model as shipped."""
    with open(SFT) as f:
        text = f.read()
    if 'preset = "smollm2"' not in text:
        sys.exit(f"{SFT} no longer loads the model by `preset`: update this script")
    path = os.path.join(out, "sft-from-start.toml")
    with open(path, "w") as f:
        f.write(text.replace('preset = "smollm2"', f"checkpoint = {start!r}"))
    return path


def row(db: sqlite3.Connection, before: str) -> list:
    """Accuracy before (metric `before`) and after, the after by level, rows trained, and how
    many of the final answers are a CPT row of the prompt copied verbatim."""
    after = [metric(db, "eval/accuracy")[1]] + [metric(db, f"eval/accuracy/{lv}")[1] for lv in LEVELS]
    trained = db.execute("SELECT SUM(value) FROM metrics WHERE name = 'train/rows'").fetchone()[0]
    final = answers(db).values()
    copied = f"{sum(c[2] for c in final)} / {sum(c[0] for c in final)}"
    return [metric(db, before)[1], *after, trained, copied]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rlvr", help="an rlvr binary to use instead of building the release one")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=[*METHODS, *SFT_ARMS])
    ap.add_argument("--out", default=os.path.join("runs", "causal-methods"))
    args = ap.parse_args()
    unknown = [m for m in args.methods if m not in METHODS and m not in SFT_ARMS]
    if unknown:
        sys.exit(f"unknown methods {unknown}; known: {[*METHODS, *SFT_ARMS]}")
    rlvr = rlvr_binary(args.rlvr)
    os.makedirs(args.out, exist_ok=True)
    table = []
    for seed in args.seeds:
        start = start_checkpoint(rlvr, args.out, seed)
        for name in args.methods:
            out = os.path.join(args.out, f"{name}-seed{seed}")
            if name in METHODS:
                exp, sets, before = RL, [f"policy.config.checkpoint={start!r}", *METHODS[name]], "start/eval_accuracy"
            else:
                exp, sets, before = sft_arm_file(args.out, start), SFT_ARMS[name], "sft/eval_accuracy_before"
            if not os.path.exists(os.path.join(out, "run.db")):
                timed(rlvr, exp, out, [f"run.seed={seed}", *sets], f"{name} seed {seed}")
            db = sqlite3.connect(os.path.join(out, "run.db"))
            if metric(db, "eval/accuracy")[1] is None:
                sys.exit(
                    f"{out} holds a run that never reached its final evaluation (killed?): delete the "
                    "folder to run it again; its table row would be wrong"
                )
            table.append((seed, name, row(db, before), wall_s(out, db)))
    f = lambda x: "n/a" if x is None else f"{x:.3f}"
    print(f"\nheld-out accuracy ({TASKS} tasks, greedy; right within 0.02 total variation)")
    print(
        "| seed | method | start | after | associational (trained) | interventional | counterfactual "
        "| rows trained | answers copied | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed, name, (before, *after, trained, copied), wall in table:
        rows = "" if trained is None else f"{trained:.0f}"
        cells = " | ".join(f(v) for v in after)
        print(f"| {seed} | {name} | {f(before)} | {cells} | {rows} | {copied} | {wall:.0f} |")
    if len(args.seeds) > 1:
        print("\nby method: the mean over the seeds, then each seed's figure in seed order; gain: tasks")
        print(f"of {TASKS} right after less right at the start, each seed")
        print("| method | start | after | gain | associational (trained) | interventional | counterfactual | wall s |")
        print("|---|---|---|---|---|---|---|---|")
        for name in args.methods:
            runs = [(before, after, wall) for _, n, (before, *after, _, _), wall in table if n == name]
            cols = [[r[0] for r in runs], *([r[1][i] for r in runs] for i in range(4))]
            gains = [None if b is None or a[0] is None else round((a[0] - b) * TASKS) for b, a, _ in runs]
            gain = ", ".join("n/a" if g is None else f"{g:+d}" if g else "0" for g in gains)
            cells = " | ".join([fmt(cols[0]), fmt(cols[1]), gain, *(fmt(c) for c in cols[2:])])
            print(f"| {name} | {cells} | {fmt([r[2] for r in runs], 0)} |")


if __name__ == "__main__":
    main()
