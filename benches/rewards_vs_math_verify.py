#!/usr/bin/env python3
"""rlvr's verifiers side by side with Python peers, on the same bundled labelled pairs, in one run.

    math/equivalence  vs  math-verify (Hugging Face): parse(gold) + parse(completion) + verify
    answer/numeric    vs  reasoning-gym's compute_decimal_reward, on the numeric rows where
                          it applies (no tolerance options; it takes the extracted answer)

How to run, from the repository root:

    python3 -m pip install math-verify==0.9.0 reasoning-gym==0.1.25
    python3 benches/rewards_vs_math_verify.py [--min-time 2.0] [--threads 0]

It runs `cargo bench --bench rewards` (release build, the figures `rlvr bench-rewards` prints)
for our side, times the peers in this process on one core, and prints for each pair the
throughput per core, the agreement with the hand-checked labels, and the speed ratio. Every
call of either side does the whole job: read the gold, extract the answer, parse, compare.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "rewards", "data", "labelled.jsonl")


def timed(fn, rows, min_time):
    """Calls fn on every row, repeated until min_time seconds; returns calls per second."""
    calls, start = 0, time.perf_counter()
    while True:
        for r in rows:
            fn(r)
        calls += len(rows)
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return calls / elapsed


def agreement(fn, rows):
    agree = fp = fn_ = err = 0
    first = []
    for r in rows:
        try:
            got = fn(r)
        except Exception as e:  # a peer's crash is a disagreement, shown
            err += 1
            first.append(("error", r["note"], repr(e)[:80]))
            continue
        pos, lab = got >= 0.5, r["label"] >= 0.5
        if pos == lab:
            agree += 1
        else:
            fp += pos and not lab
            fn_ += lab and not pos
            if len(first) < 8:
                first.append(("FP" if pos else "FN", r["task"]["answer"], r["completion"][:60], r["note"]))
    return {"rows": len(rows), "accuracy": agree / len(rows), "fp": fp, "fn": fn_, "errors": err, "first": first}


def ours(ids, min_time_ms, threads):
    cmd = ["cargo", "bench", "--quiet", "--bench", "rewards", "--no-default-features", "--features",
           "math", "--", "--json", "--min-time-ms", str(min_time_ms), "--threads", str(threads)] + ids
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return {r["id"]: r for r in report["rewards"]}, report["cores"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per timing loop")
    ap.add_argument("--threads", type=int, default=0, help="threads for our all-cores figure")
    args = ap.parse_args()
    rows = [json.loads(l) for l in open(DATA) if l.strip()]
    math_rows = [r for r in rows if r["reward"] == "math/equivalence"]
    num_rows = [r for r in rows if r["reward"] == "answer/numeric"
                and "atol" not in r["task"] and "rtol" not in r["task"]]

    from math_verify import parse, verify

    def mv(r):
        return float(verify(parse("$" + r["task"]["answer"] + "$"), parse(r["completion"])))

    peers = [("math/equivalence", "math-verify 0.9.0", mv, math_rows)]
    try:
        from reasoning_gym.utils import compute_decimal_reward, extract_answer

        def rg(r):
            # reasoning-gym scores the text in <answer> tags; give it what it expects.
            ans = extract_answer(r["completion"]) or r["completion"]
            return float(compute_decimal_reward(ans, r["task"]["answer"]))

        peers.append(("answer/numeric", "reasoning-gym 0.1.25 compute_decimal_reward", rg, num_rows))
    except ImportError as e:
        print(f"reasoning-gym not installed ({e}); skipping that pair", file=sys.stderr)

    ours_by_id, cores = ours([p[0] for p in peers], int(args.min_time * 1000), args.threads)
    print(f"machine: {cores} cores; peers timed on one core in this process\n")
    print(f"{'pair':<58} {'rows':>5} {'accuracy':>9} {'FP':>4} {'FN':>4} {'per core/s':>12} {'all cores/s':>12}")
    for rid, name, fn, prow in peers:
        a = agreement(fn, prow)
        speed = timed(fn, prow, args.min_time)
        o = ours_by_id[rid]
        oa, ot = o["agreement"], o["throughput"]
        print(f"{'rlvr ' + rid:<58} {oa['rows']:>5} {100 * oa['accuracy']:>8.1f}% {oa['false_positives']:>4} "
              f"{oa['false_negatives']:>4} {ot['per_core_per_s']:>12.0f} {ot['all_cores_per_s']:>12.0f}")
        print(f"{name:<58} {a['rows']:>5} {100 * a['accuracy']:>8.1f}% {a['fp']:>4} {a['fn']:>4} {speed:>12.0f} {'-':>12}")
        print(f"  ratio per core: {ot['per_core_per_s'] / speed:.0f}x   (rlvr on all {ot['threads']} threads: "
              f"{ot['all_cores_per_s'] / speed:.0f}x)")
        for f in a["first"]:
            print("  peer disagrees:", f)
        print()


if __name__ == "__main__":
    main()
