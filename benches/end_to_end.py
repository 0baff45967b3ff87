#!/usr/bin/env python3
"""Verifiers against their Python peers, end to end: the JSONL a user has, scored by
`rlvr score --workers 1` and by the peer in one warm Python process, on the same rows, in
alternating rounds, one thread each side, with the machine's load written down.

Four figures per family:
- ours end to end: rows/s of `rlvr score --reward ID --workers 1 --input ROWS`, wall clock,
  minus the process start (the median time of the same command on a one-row file: start,
  registry, rubric build);
- ours in process: `rlvr bench-rewards --threads 1` on the same rows (tasks built before the
  clock starts: `Rubric::score` alone);
- peer end to end: rows/s of reading the same file line by line (`json.loads`) and scoring each
  row, called as the peer's documentation calls it;
- peer in process: the same on rows decoded before the clock starts.
The ratios are ours / peer, end to end and in process. Each side's figure is the median of
its rounds. Verdicts of both sides are compared on the base rows and disagreements counted.

How to run, from the repository root, after `cargo build --release`:

    python3 -m pip install math-verify==0.9.0 pgmpy==1.1.2 sqlparse==0.6.1
    python3 -m pip install --no-deps bfcl-eval==2026.3.23
    python3 -m pip install filelock==3.20.0 tenacity
    python3 benches/end_to_end.py [--family math] [--family tools] [--rounds 5] [--seconds 2]
        [--rlvr target/release/rlvr]

Families: `math` (math/equivalence vs math-verify's parse + verify, on the bundled labelled
rows and math-verify's own suite), `tools` (tools/ast-match vs bfcl-eval's ast_checker on
BFCL's real cases from its wheel: per task the first acceptable calls, the same with the last
argument dropped, and reversed), and the families registered in FAMILIES below.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Family:
    """A verifier, its rows, and its peer. Subclasses fill `reward`, `rows()`, `peer()`."""

    name = ""
    reward = ""

    def rows(self, tmp):
        """The base rows, as dicts `{task, completion}` in `rlvr score`'s format."""
        raise NotImplementedError

    def peer(self):
        """(description of the peer and how it is called, fn(row) -> verdict in {0, 1})."""
        raise NotImplementedError

    def ours(self, result):
        """Our verdict from an output row of `rlvr score`."""
        r = result.get("reward")
        return None if r is None else int(r >= 0.5)


class Math(Family):
    name = "math"
    reward = "math/equivalence"

    def rows(self, tmp):
        out = []
        for f in ("labelled.jsonl", "math_verify.jsonl"):
            with open(os.path.join(ROOT, "rewards", "data", f)) as lines:
                for line in lines:
                    r = json.loads(line)
                    if r.get("reward", "math/equivalence") == "math/equivalence":
                        out.append({"task": r["task"], "completion": r["completion"]})
        return out

    def peer(self):
        import math_verify
        from math_verify import parse, verify

        def marked(t):
            return "$" in t or "\\boxed" in t or "\\(" in t or "\\[" in t

        def fn(row):
            gold = row["task"]["answer"]
            g = parse(gold if marked(gold) else f"${gold}$")
            return int(bool(verify(g, parse(row["completion"]))))

        version = getattr(math_verify, "__version__", "0.9.0")
        return f"math-verify {version}: verify(parse(gold), parse(completion)), default configs", fn


class Tools(Family):
    name = "tools"
    reward = "tools/ast-match"

    def rows(self, tmp):
        import bfcl_eval
        import tools_ast_vs_bfcl as t

        path = os.path.join(tmp, "bfcl_real.jsonl")
        t.build_real_cases(os.path.join(os.path.dirname(bfcl_eval.__file__), "data"), path)
        with open(path) as lines:
            return [json.loads(line) for line in lines]

    def peer(self):
        import tools_ast_vs_bfcl as t

        def fn(row):
            return int(t.verdict(row["task"], row["completion"]) == "valid")

        return "bfcl-eval 2026.3.23: default_decode_ast_prompting + ast_checker (tools_ast_vs_bfcl.verdict)", fn


FAMILIES = {f.name: f for f in (Math(), Tools())}


def write(rows, path, copies=1):
    """The rows, `copies` times; each copy's tasks carry a field `copy` so that no task of
    one copy equals one of another (a cache of recent tasks must not turn the repetition that
    makes the file long enough to time into hits)."""
    with open(path, "w") as out:
        for k in range(copies):
            for r in rows:
                row = {**r, "task": {**r["task"], "copy": k}} if k else r
                out.write(json.dumps(row) + "\n")


def ours_e2e(rlvr, reward, path, n, start_s):
    t = time.perf_counter()
    subprocess.run([rlvr, "score", "--reward", reward, "--workers", "1", "--input", path, "--output", os.devnull],
                   check=True, capture_output=True)
    return n / max(1e-9, time.perf_counter() - t - start_s)


def startup(rlvr, reward, one):
    times = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([rlvr, "score", "--reward", reward, "--workers", "1", "--input", one, "--output", os.devnull],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def ours_in_process(rlvr, reward, rows, tmp, seconds):
    path = os.path.join(tmp, "labelled.jsonl")
    write([{**r, "label": 0} for r in rows], path)
    out = subprocess.run([rlvr, "bench-rewards", "--input", path, "--reward", reward, "--threads", "1",
                          "--min-time-ms", str(int(seconds * 1000)), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["rewards"][0]["throughput"]["per_core_per_s"]


def peer_e2e(fn, path):
    t = time.perf_counter()
    n = 0
    with open(path) as f:
        for line in f:
            fn(json.loads(line))
            n += 1
    return n / (time.perf_counter() - t)


def peer_in_process(fn, rows, seconds):
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        for r in rows:
            fn(r)
        n += len(rows)
    return n / (time.perf_counter() - t)


def run_family(fam, args, tmp):
    rows = fam.rows(tmp)
    how, fn = fam.peer()
    base = os.path.join(tmp, f"{fam.name}.jsonl")
    write(rows, base)
    one = os.path.join(tmp, f"{fam.name}_one.jsonl")
    write(rows[:1], one)
    # Verdicts on the base rows, both sides.
    res = subprocess.run([args.rlvr, "score", "--reward", fam.reward, "--workers", "1", "--input", base],
                         check=True, capture_output=True, text=True)
    ours_v = [fam.ours(json.loads(line)) for line in res.stdout.splitlines()]
    peer_v = []
    for r in rows:
        try:
            peer_v.append(fn(r))
        except Exception:  # noqa: BLE001 (a peer's crash is a disagreement, counted)
            peer_v.append(None)
    differ = sum(a != b for a, b in zip(ours_v, peer_v))
    # Each side's file is the base rows repeated so that one pass takes about --seconds.
    def copies_for(rate):
        return max(1, round(args.seconds * rate / len(rows)))

    t = time.perf_counter()
    peer_e2e(fn, base)
    peer_file = os.path.join(tmp, f"{fam.name}_peer.jsonl")
    n_peer = len(rows) * copies_for(len(rows) / (time.perf_counter() - t))
    write(rows, peer_file, n_peer // len(rows))
    ours_file = os.path.join(tmp, f"{fam.name}_ours.jsonl")
    n_ours = len(rows) * copies_for(ours_in_process(args.rlvr, fam.reward, rows, tmp, 0.3))
    write(rows, ours_file, n_ours // len(rows))
    start_s = startup(args.rlvr, fam.reward, one)
    load_before = load()
    e2e_ours, e2e_peer, in_ours, in_peer = [], [], [], []
    for _ in range(args.rounds):
        e2e_ours.append(ours_e2e(args.rlvr, fam.reward, ours_file, n_ours, start_s))
        e2e_peer.append(peer_e2e(fn, peer_file))
        in_ours.append(ours_in_process(args.rlvr, fam.reward, rows, tmp, args.seconds))
        in_peer.append(peer_in_process(fn, rows, args.seconds))
    load_after = load()
    m = statistics.median
    return {
        "family": fam.name,
        "reward": fam.reward,
        "peer": how,
        "rows": len(rows),
        "rows_per_pass": {"ours": n_ours, "peer": n_peer},
        "process_start_s": round(start_s, 4),
        "verdicts_differ": differ,
        "ours_end_to_end_per_s": round(m(e2e_ours)),
        "peer_end_to_end_per_s": round(m(e2e_peer), 1),
        "ratio_end_to_end": round(m(e2e_ours) / m(e2e_peer), 2),
        "ours_in_process_per_s": round(m(in_ours)),
        "peer_in_process_per_s": round(m(in_peer), 1),
        "ratio_in_process": round(m(in_ours) / m(in_peer), 2),
        "rounds": args.rounds,
        "load_before": load_before,
        "load_after": load_after,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", action="append", choices=sorted(FAMILIES), help="repeatable; default: all")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each timed pass")
    ap.add_argument("--rlvr", default=os.path.join(ROOT, "target", "release", "rlvr"))
    args = ap.parse_args()
    if not os.path.exists(args.rlvr):
        sys.exit(f"no rlvr binary at {args.rlvr}: run `cargo build --release` or pass --rlvr")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.family or sorted(FAMILIES):
            r = run_family(FAMILIES[name], args, tmp)
            print(json.dumps(r), flush=True)
            print(f"{name}: end to end {r['ratio_end_to_end']}x ({r['ours_end_to_end_per_s']}/s vs "
                  f"{r['peer_end_to_end_per_s']}/s), in process {r['ratio_in_process']}x "
                  f"({r['ours_in_process_per_s']}/s vs {r['peer_in_process_per_s']}/s); "
                  f"{r['verdicts_differ']} of {r['rows']} verdicts differ; load {r['load_before']} -> "
                  f"{r['load_after']}", flush=True)


if __name__ == "__main__":
    main()
