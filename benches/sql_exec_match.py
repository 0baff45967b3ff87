#!/usr/bin/env python3
"""Python reference for the execution-match benchmark: test-suite-sql-eval's exec-match pipeline.

How to run: the Rust side starts this script itself, on the same databases and query pairs, and
prints both throughputs and their ratio in one run:

    python3 -m pip install sqlparse==0.6.1
    cargo bench --bench sql --no-default-features --features sql

Standalone: python3 benches/sql_exec_match.py PAIRS.jsonl [--reuse-connection]
        or: python3 benches/sql_exec_match.py --backup DB.sqlite REPS  (ms per copy into :memory:)
Each line of PAIRS.jsonl is {"db": path, "gold": sql, "pred": sql}. Prints one JSON line:
{"pairs": n, "seconds": s, "pairs_per_s": r, "verdicts": [0 or 1, ...]}.

Per pair it does what test-suite-sql-eval's `eval_exec_match` does on one database (written here
from its documented behaviour): join "> =" etc., remove DISTINCT tokens with sqlparse (keep_distinct
off), decide order_matters from "order by" in the gold query, replace YEAR(CURDATE()), run gold
then prediction (a new sqlite3 connection per query, text decoded with errors="ignore", as the
reference opens one per query; --reuse-connection keeps one per database instead), and compare
with result_eq: multiset or ordered rows, columns permutable, a quick rejection on rows sorted by
str(value) + str(type(value)).
"""

import itertools
import json
import re
import sqlite3
import sys
import time
from collections import Counter

try:
    import sqlparse
except ImportError:
    sys.exit("this benchmark needs sqlparse: python3 -m pip install sqlparse==0.6.1")

CUR_YEAR = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", re.IGNORECASE)


def join_operators(q):
    for spaced, joined in (("> =", ">="), ("< =", "<="), ("! =", "!=")):
        q = q.replace(spaced, joined)
    return q


def drop_distinct(q):
    first = sqlparse.parse(q)[0]
    return "".join(tok.value for tok in first.flatten() if tok.value.lower() != "distinct")


def sort_cells(row):
    return tuple(sorted(row, key=lambda v: str(v) + str(type(v))))


def rows_agree_unordered(a, b, ordered):
    ua = [sort_cells(r) for r in a]
    ub = [sort_cells(r) for r in b]
    return ua == ub if ordered else set(ua) == set(ub)


def same_denotation(gold, pred, ordered):
    if not gold and not pred:
        return True
    if len(gold) != len(pred):
        return False
    width = len(gold[0])
    if len(pred[0]) != width:
        return False
    if not rows_agree_unordered(gold, pred, ordered):
        return False
    gold_columns = [set(r[i] for r in gold) for i in range(width)]
    # Candidate source columns of pred for each gold column: every value must occur there.
    candidates = [[j for j in range(width) if all(r[j] in gold_columns[i] for r in pred)] for i in range(width)]
    gold_bag = None if ordered else Counter(gold)
    for perm in itertools.product(*candidates):
        if len(set(perm)) != width:
            continue
        moved = [tuple(r[j] for j in perm) for r in pred]
        if ordered:
            if moved == gold:
                return True
        elif Counter(moved) == gold_bag:
            return True
    return False


class Runner:
    def __init__(self, reuse):
        self.reuse = reuse
        self.open = {}

    def run(self, db, q):
        q = CUR_YEAR.sub("2020", q)
        if self.reuse:
            conn = self.open.get(db)
            if conn is None:
                conn = self.open[db] = sqlite3.connect(db)
                conn.text_factory = lambda b: b.decode(errors="ignore")
        else:
            conn = sqlite3.connect(db)
            conn.text_factory = lambda b: b.decode(errors="ignore")
        cur = conn.cursor()
        try:
            cur.execute(q)
            return True, cur.fetchall()
        except Exception as e:  # noqa: BLE001 - any failure of the prediction scores 0
            return False, e
        finally:
            cur.close()
            if not self.reuse:
                conn.close()


def score(runner, db, gold, pred):
    g, p = drop_distinct(join_operators(gold)), drop_distinct(join_operators(pred))
    ordered = "order by" in g.lower()
    ok, gold_rows = runner.run(db, g)
    if not ok:
        raise RuntimeError(f"gold query failed on {db}: {gold_rows}")
    ok, pred_rows = runner.run(db, p)
    return int(ok and same_denotation(gold_rows, pred_rows, ordered))


def backup_ms(db, reps):
    start = time.perf_counter()
    for _ in range(reps):
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        dst = sqlite3.connect(":memory:")
        src.backup(dst)
        src.close()
        dst.close()
    return (time.perf_counter() - start) * 1000 / reps


def main():
    if sys.argv[1] == "--backup":
        print(json.dumps({"ms_per_copy": backup_ms(sys.argv[2], int(sys.argv[3]))}))
        return
    path = sys.argv[1]
    runner = Runner(reuse="--reuse-connection" in sys.argv)
    pairs = [json.loads(line) for line in open(path)]
    start = time.perf_counter()
    verdicts = [score(runner, p["db"], p["gold"], p["pred"]) for p in pairs]
    seconds = time.perf_counter() - start
    print(json.dumps({"pairs": len(pairs), "seconds": seconds, "pairs_per_s": len(pairs) / seconds, "verdicts": verdicts}))


if __name__ == "__main__":
    main()
