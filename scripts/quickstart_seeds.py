"""An experiment's learning result over several seeds: held-out accuracy before any training,
after the SFT warm start (when the experiment has one), and after RL, read from each run's
run.db. Greedy accuracy is the headline; sampled accuracy (the policy's temperature,
`eval/sampled_accuracy`) is shown beside it.

    python3 scripts/quickstart_seeds.py            # seeds 0 1 2, builds and runs the release binary
    python3 scripts/quickstart_seeds.py --seeds 0 1 2 3 --exp examples/quickstart.toml
    python3 scripts/quickstart_seeds.py --exp examples/smollm2.toml   # RL from a pretrained model
    python3 scripts/quickstart_seeds.py --rlvr path/to/rlvr   # a binary already built

Each seed runs `rlvr run EXP --set run.seed=S --out runs/NAME-seedS`, NAME the file's stem (an
existing run directory is reused, not rerun), and then `rlvr report` on it, so every run's
curves are in runs/NAME-seedS/report/*.png. Without a warm start, "before training" is the
run's own evaluation of the model as loaded (`start/eval_accuracy`).
"""

import argparse
import datetime
import os
import sqlite3
import subprocess


def metric(db, name, last=True):
    order = "DESC" if last else "ASC"
    row = db.execute(
        f"SELECT iteration, value FROM metrics WHERE name = ? ORDER BY iteration {order} LIMIT 1", (name,)
    ).fetchone()
    return (None, None) if row is None else row


def rlvr_binary(given: str | None) -> str:
    """`given` when set (`--rlvr`); otherwise builds the release binary and returns its path."""
    if given is not None:
        return given
    subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
    return os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "rlvr")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--exp", default="examples/quickstart.toml")
    ap.add_argument("--rlvr", help="an rlvr binary to use instead of building the release one")
    args = ap.parse_args()
    rlvr = rlvr_binary(args.rlvr)
    rows = []
    for seed in args.seeds:
        out = f"runs/{os.path.splitext(os.path.basename(args.exp))[0]}-seed{seed}"
        if not os.path.exists(os.path.join(out, "run.db")):
            subprocess.run([rlvr, "run", args.exp, "--set", f"run.seed={seed}", "--out", out], check=True)
        subprocess.run([rlvr, "report", out], check=True, stdout=subprocess.DEVNULL)
        db = sqlite3.connect(os.path.join(out, "run.db"))
        _, before = metric(db, "sft/eval_accuracy_before")
        _, start_sampled = metric(db, "start/eval_sampled_accuracy")
        if before is None:
            _, before = metric(db, "start/eval_accuracy")
        _, sft = metric(db, "sft/eval_accuracy")
        it, final = metric(db, "eval/accuracy")
        _, best = db.execute("SELECT 0, MAX(value) FROM metrics WHERE name = 'eval/accuracy'").fetchone()
        _, sft_sampled = metric(db, "sft/eval_sampled_accuracy")
        _, final_sampled = metric(db, "eval/sampled_accuracy")
        rows.append((seed, before, sft, final, best, sft_sampled, final_sampled, it, wall_s(out, db), start_sampled))
    if all(r[2] is None for r in rows):
        # No warm start: before and after RL, greedy and sampled.
        header = "| seed | before, greedy | after RL, greedy | best during RL | before, sampled | after RL, sampled |"
        print_table(rows, header, (1, 3, 4, 9, 6))
    else:
        header = (
            "| seed | before training | after SFT, greedy | after GRPO, greedy | best during GRPO "
            "| after SFT, sampled | after GRPO, sampled |"
        )
        print_table(rows, header, (1, 2, 3, 4, 5, 6))


def print_table(rows, header, columns):
    """One row per seed with the accuracies at `columns` of each result tuple, its wall time,
    and with several seeds a mean row."""
    f = lambda x: "n/a" if x is None else f"{x:.3f}"
    print(f"{header} wall s |")
    print("|---" * (len(columns) + 2) + "|")

    def line(label, values, wall):
        print(f"| {label} | " + " | ".join(f(v) for v in values) + f" | {wall:.0f} |")

    for r in rows:
        line(r[0], [r[i] for i in columns], r[8])
    if len(rows) > 1:

        def mean(i):
            xs = [r[i] for r in rows]
            return None if any(x is None for x in xs) else sum(xs) / len(xs)

        line("mean", [mean(i) for i in columns], mean(8))


def wall_s(out: str, db: sqlite3.Connection) -> float:
    """The run's wall time: from its config.toml (written as the run starts) to its last
    iteration's end, so a run made earlier, by this script or not, reports its own time."""
    (last,) = db.execute("SELECT MAX(finished_at) FROM iterations").fetchone()
    end = datetime.datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp()
    return end - os.path.getmtime(os.path.join(out, "config.toml"))


if __name__ == "__main__":
    main()
