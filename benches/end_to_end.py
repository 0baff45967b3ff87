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
    python3 benches/end_to_end.py [--family math] [--family tools] [--family causal]
        [--family sql] [--rounds 5] [--seconds 2] [--rlvr target/release/rlvr]

Families:
- `math`: math/equivalence vs math-verify's parse + verify, on the bundled labelled rows and
  math-verify's own suite.
- `tools`: tools/ast-match vs bfcl-eval's ast_checker on BFCL's real cases from its wheel: per
  task the first acceptable calls, the same with the last argument dropped, and reversed.
- `causal`: causal/tvd vs pgmpy's VariableElimination as benches/causal_pgmpy.py runs it
  (`answer(*prepare(task))`: model built from the task's network JSON, mutilated or twinned
  by the query's level), then the completion's `ANSWER [..]` list against it, TVD <= 0.02. Rows:
  `rlvr tasks causal` (seed 0, 100 tasks per level) with each task's stored `answer` dropped,
  so both sides solve the query; per task the exact answer to 4 decimals and the same with 0.1
  of mass moved from its largest value to another (exact completions first, then perturbed).
  In-process figures are also given per query level.
- `sql`: sql/execution-match vs test-suite-sql-eval's exec-match pipeline
  (benches/sql_exec_match.py `score`, a new connection per query, its default), on SQLite files
  written here in the shape of the synthetic sql family (shop, school, flights; 4 databases
  each, 200 entities and 600 facts) and its eleven question templates; per gold query the
  prediction is the gold query, the same wrapped in `SELECT * FROM (..)`, cut with `LIMIT 2`,
  or misspelled (`SELEC`), in a ```sql block. Also the SQLite floor: Python's sqlite3 alone
  running both queries of every row and fetching all rows (one open connection per database,
  no comparison), with ours end to end over it (time per row).
"""

import argparse
import json
import os
import re
import sqlite3
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
    rlvr = None  # the binary under test, set by run_family (for families that generate rows with it)

    def rows(self, tmp):
        """The base rows, as dicts `{task, completion}` in `rlvr score`'s format."""
        raise NotImplementedError

    def peer(self):
        """(description of the peer and how it is called, fn(row) -> verdict in {0, 1})."""
        raise NotImplementedError

    def group(self, row):
        """A label to report in-process figures per group of rows by (None: no groups)."""

    def floor(self, rows):
        """None, or (description, fn(seconds) -> rows/s) of a lower bound the verifier cannot beat."""

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


class Causal(Family):
    name = "causal"
    reward = "causal/tvd"
    levels = ("associational", "interventional", "counterfactual")
    per_level = 100
    threshold = 0.02  # causal/tvd's default

    def rows(self, tmp):
        exact, perturbed = [], []
        for level in self.levels:
            path = os.path.join(tmp, f"causal_{level}.jsonl")
            subprocess.run([self.rlvr, "tasks", "causal", "--level", level, "--n", str(self.per_level), "--seed", "0",
                            "--out", path], check=True, capture_output=True)
            with open(path) as lines:
                for line in lines:
                    task = json.loads(line)
                    p = [round(x, 4) for x in task.pop("answer")]
                    q = list(p)
                    hi = max(range(len(q)), key=q.__getitem__)
                    q[hi] -= 0.1
                    q[(hi + 1) % len(q)] += 0.1
                    exact.append({"task": task, "completion": f"ANSWER {self.format(p)}"})
                    perturbed.append({"task": task, "completion": f"ANSWER {self.format(q)}"})
        # The two completions of a task are a file apart, so that a cache of recent tasks in
        # `rlvr score` does not skip the second one's task decoding.
        return exact + perturbed

    @staticmethod
    def format(p):
        return "[" + ", ".join(f"{x:.4f}" for x in p) + "]"

    def group(self, row):
        return row["task"]["query"]["level"]

    def peer(self):
        import causal_pgmpy as c
        import pgmpy

        number_list = re.compile(r"ANSWER\s*[:=]?\s*\[([^\]]*)\]")

        def fn(row):
            want = c.answer(*c.prepare(row["task"]))
            found = number_list.findall(row["completion"])
            if not found:
                return 0
            try:
                given = [float(x) for x in found[-1].split(",")]
            except ValueError:
                return 0
            if len(given) != len(want):
                return 0
            return int(0.5 * sum(abs(a - b) for a, b in zip(given, want)) <= self.threshold)

        return (f"pgmpy {pgmpy.__version__}: VariableElimination via causal_pgmpy.answer(*prepare(task)), "
                f"then TVD of the ANSWER list <= {self.threshold}"), fn


class Sql(Family):
    name = "sql"
    reward = "sql/execution-match"
    n = 600
    # (family, entity, key, categorical column and values, numeric column, its SQL type and
    # scale, fact table, its key, categorical column and values, measure and its range), as the
    # synthetic sql family's schemas.
    schemas = (
        ("shop", "customers", "customer_id", "city", ("Lyon", "Oslo", "Porto", "Quito", "Seoul", "Tunis"),
         "credit_limit", "INTEGER", (100, 5000), 1, "orders", "order_id", "product",
         ("lamp", "desk", "chair", "kettle", "rug", "shelf", "clock"), "quantity", (1, 20)),
        ("school", "students", "student_id", "major", ("biology", "history", "math", "music", "physics"),
         "gpa", "REAL", (150, 400), 0.01, "enrollments", "enrollment_id", "course",
         ("algebra", "chemistry", "drawing", "ethics", "french", "geology"), "credits", (1, 6)),
        ("flights", "airlines", "airline_id", "country", ("Brazil", "Canada", "Chile", "Japan", "Kenya", "Norway"),
         "fleet_size", "INTEGER", (5, 900), 1, "flights", "flight_id", "destination",
         ("ATH", "BKK", "CPT", "DXB", "LIM", "MEX", "NRT", "YUL"), "distance", (200, 9000)),
    )
    dbs_per_schema = 4
    entities = 200
    first = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena", "Milo", "Nia")
    last = ("Abe", "Berg", "Chen", "Diaz", "Eze", "Fox", "Gray", "Holt", "Ito", "Jain", "Kim", "Lund", "Moss")

    def database(self, path, schema, rng):
        (_, e, k, c, cats, num, num_type, (lo, hi), scale, fact, fk, fc, fcats, m, (mlo, mhi)) = schema
        n = self.entities
        names = [f"{rng.choice(self.first)} {rng.choice(self.last)} {i}" for i in range(n)]
        nums = [v if scale == 1 else round(v * scale, 2) for v in rng.sample(range(lo, hi + 1), n)]
        conn = sqlite3.connect(path)
        conn.executescript(f"CREATE TABLE {e} ({k} INTEGER PRIMARY KEY, name TEXT NOT NULL, {c} TEXT, {num} {num_type});"
                           f"CREATE TABLE {fact} ({fk} INTEGER PRIMARY KEY, {k} INTEGER REFERENCES {e}({k}), "
                           f"{fc} TEXT, {m} INTEGER);")
        conn.executemany(f"INSERT INTO {e} VALUES (?, ?, ?, ?)",
                         [(i + 1, names[i], rng.choice(cats), nums[i]) for i in range(n)])
        # The last entity never gets a fact, so "entities without facts" is never empty.
        facts = [(j + 1, rng.randrange(n - 1) + 1, rng.choice(fcats), rng.randint(mlo, mhi)) for j in range(3 * n)]
        conn.executemany(f"INSERT INTO {fact} VALUES (?, ?, ?, ?)", facts)
        conn.commit()
        conn.close()
        return sorted(nums), [f[2] for f in facts]

    @staticmethod
    def question(schema, nums, fact_cats, rng):
        """(template, level, gold) as the synthetic family's templates."""
        (_, e, k, c, cats, num, _, _, _, fact, _, fc, _, m, _) = schema
        t = rng.randrange(11)
        n = len(nums)
        return [
            ("filter_category", "filter", f"SELECT name FROM {e} WHERE {c} = '{rng.choice(cats)}'"),
            ("filter_number", "filter", f"SELECT name FROM {e} WHERE {num} > {nums[n // 4 + rng.randrange(n // 2)]}"),
            ("count_by_category", "aggregate", f"SELECT {c}, COUNT(*) FROM {e} GROUP BY {c}"),
            ("average_by_category", "aggregate", f"SELECT {c}, AVG({num}) FROM {e} GROUP BY {c}"),
            ("join_total", "join",
             f"SELECT T1.name, SUM(T2.{m}) FROM {e} AS T1 JOIN {fact} AS T2 ON T1.{k} = T2.{k} GROUP BY T1.{k}"),
            ("join_filter", "join", (f"SELECT DISTINCT T1.name FROM {e} AS T1 JOIN {fact} AS T2 ON T1.{k} = T2.{k} "
                                     f"WHERE T2.{fc} = '{rng.choice(fact_cats)}'")),
            ("above_average", "nested", f"SELECT name FROM {e} WHERE {num} > (SELECT AVG({num}) FROM {e})"),
            ("without_facts", "nested", f"SELECT name FROM {e} WHERE {k} NOT IN (SELECT {k} FROM {fact})"),
            ("top_k", "order_limit", f"SELECT name FROM {e} ORDER BY {num} DESC LIMIT {1 + rng.randrange(5)}"),
            ("most_common_category", "order_limit",
             f"SELECT {c} FROM {e} GROUP BY {c} ORDER BY COUNT(*) DESC, {c} ASC LIMIT 1"),
            ("top_k_by_total", "order_limit",
             (f"SELECT T1.name FROM {e} AS T1 JOIN {fact} AS T2 ON T1.{k} = T2.{k} GROUP BY T1.{k} "
              f"ORDER BY SUM(T2.{m}) DESC, T1.name ASC LIMIT {1 + rng.randrange(3)}")),
        ][t]

    def rows(self, tmp):
        import random

        rng = random.Random(0)
        folder = os.path.join(tmp, "sql_dbs")
        os.makedirs(folder, exist_ok=True)
        dbs = []
        for schema in self.schemas:
            for i in range(self.dbs_per_schema):
                path = os.path.join(folder, f"{schema[0]}_{i}.sqlite")
                dbs.append((schema, path, f"{schema[0]}_{i}", *self.database(path, schema, rng)))
        out = []
        for i in range(self.n):
            schema, path, db_id, nums, fact_cats = rng.choice(dbs)
            template, level, gold = self.question(schema, nums, fact_cats, rng)
            pred = [gold, gold, f"SELECT * FROM ({gold}) AS sub", f"SELECT * FROM ({gold}) LIMIT 2",
                    f"SELECT * FROM ({gold}) LIMIT 2", gold.replace("SELECT", "SELEC", 1)][i % 6]
            task = {"db": path, "db_id": db_id, "gold": gold, "compare": "spider", "level": level, "template": template}
            out.append({"task": task, "completion": f"Final query:\n```sql\n{pred}\n```"})
        return out

    final = re.compile(r"```(?:sql|sqlite)[ \t]*\n(.*?)```", re.IGNORECASE | re.DOTALL)

    def pred_of(self, completion):
        found = self.final.findall(completion)
        return found[-1].strip() if found else None

    def peer(self):
        import sql_exec_match as x
        import sqlparse

        runner = x.Runner(reuse=False)

        def fn(row):
            pred = self.pred_of(row["completion"])
            if pred is None:
                return 0
            return x.score(runner, row["task"]["db"], row["task"]["gold"], pred)

        return (f"test-suite-sql-eval's exec match (sql_exec_match.score, sqlparse {sqlparse.__version__}, "
                f"sqlite {sqlite3.sqlite_version}), a new connection per query (its default)"), fn

    def floor(self, rows):
        pairs = [(r["task"]["db"], r["task"]["gold"], self.pred_of(r["completion"])) for r in rows]
        conns = {db: sqlite3.connect(db) for db, _, _ in pairs}

        def run(seconds):
            t, n = time.perf_counter(), 0
            while time.perf_counter() - t < seconds:
                for db, gold, pred in pairs:
                    conn = conns[db]
                    for q in (gold, pred):
                        try:
                            conn.execute(q).fetchall()
                        except sqlite3.Error:
                            pass
                n += len(pairs)
            return n / (time.perf_counter() - t)

        return f"Python sqlite3 {sqlite3.sqlite_version}: gold and pred executed, all rows fetched, a connection per db", run


FAMILIES = {f.name: f for f in (Math(), Tools(), Causal(), Sql())}


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
    fam.rlvr = args.rlvr
    rows = fam.rows(tmp)
    how, fn = fam.peer()
    floor = fam.floor(rows)
    groups = {}
    for i, r in enumerate(rows):
        g = fam.group(r)
        if g is not None:
            groups.setdefault(g, []).append(i)
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
    if len(ours_v) != len(rows):
        sys.exit(f"{fam.name}: rlvr score gave {len(ours_v)} results for {len(rows)} rows")
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
    e2e_ours, e2e_peer, in_ours, in_peer, floors = [], [], [], [], []
    by_group = {g: ([], []) for g in groups}
    for _ in range(args.rounds):
        e2e_ours.append(ours_e2e(args.rlvr, fam.reward, ours_file, n_ours, start_s))
        e2e_peer.append(peer_e2e(fn, peer_file))
        in_ours.append(ours_in_process(args.rlvr, fam.reward, rows, tmp, args.seconds))
        in_peer.append(peer_in_process(fn, rows, args.seconds))
        if floor:
            floors.append(floor[1](args.seconds))
        for g, idx in groups.items():
            sub = [rows[i] for i in idx]
            by_group[g][0].append(ours_in_process(args.rlvr, fam.reward, sub, tmp, args.seconds / 2))
            by_group[g][1].append(peer_in_process(fn, sub, args.seconds / 2))
    load_after = load()
    m = statistics.median
    extra = {}
    if floor:
        # Time per row: ours end to end over the floor's (>= 1; 1 would be SQLite's own time).
        extra = {"floor": floor[0], "floor_per_s": round(m(floors)),
                 "ours_vs_floor": round(m(floors) / m(e2e_ours), 2),
                 "ours_in_process_vs_floor": round(m(floors) / m(in_ours), 2)}
    if groups:
        extra["in_process_by_group"] = {
            g: {"rows": len(idx), "verdicts_differ": sum(ours_v[i] != peer_v[i] for i in idx),
                "ours_per_s": round(m(by_group[g][0])), "peer_per_s": round(m(by_group[g][1]), 1),
                "ratio": round(m(by_group[g][0]) / m(by_group[g][1]), 2)}
            for g, idx in groups.items()}
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
        **extra,
        "rounds": args.rounds,
        "load_before": load_before,
        "load_after": load_after,
    }


def summary(name, r):
    floor = (f"; floor {r['floor_per_s']}/s, ours end to end {r['ours_vs_floor']}x its time per row"
             if "floor_per_s" in r else "")
    return (f"{name}: end to end {r['ratio_end_to_end']}x ({r['ours_end_to_end_per_s']}/s vs "
            f"{r['peer_end_to_end_per_s']}/s), in process {r['ratio_in_process']}x "
            f"({r['ours_in_process_per_s']}/s vs {r['peer_in_process_per_s']}/s); "
            f"{r['verdicts_differ']} of {r['rows']} verdicts differ{floor}; load {r['load_before']} -> "
            f"{r['load_after']}")


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
            print(summary(name, r), flush=True)


if __name__ == "__main__":
    main()
