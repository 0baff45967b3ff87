"""Side by side: our exact causal queries against pgmpy's VariableElimination, on the same
networks and queries, one core each, and a cross-check that both give the same answers.

How to run, from the repository root (pgmpy 1.1.2 is the release measured; it is installed
without its hard dependency on huggingface_hub, which only downloads example models, and
without torch, an optional extra; VariableElimination needs only the packages listed):

    python3 -m venv /tmp/pgmpy-venv
    /tmp/pgmpy-venv/bin/pip install --no-deps pgmpy==1.1.2
    /tmp/pgmpy-venv/bin/pip install numpy scipy pandas networkx scikit-learn statsmodels \
        scikit-base packaging opt_einsum tqdm pyparsing joblib
    /tmp/pgmpy-venv/bin/python benches/causal_pgmpy.py [--n 300] [--generate 100000]

What runs:
1. `cargo bench --bench causal` (release) generates `--n` tasks per level, times our solver on
   them, writes them to a JSONL file, and times generating `--generate` tasks.
2. This script loads the same tasks into pgmpy and answers them with VariableElimination:
   associational queries on the network; interventional ones on the mutilated network (the
   intervened variable's edges in cut, its CPT a point mass), which is the do-operator;
   counterfactual ones on the twin network built exactly as ours (pgmpy has no counterfactual
   query for this exogenous model), so both sides run variable elimination on the same graphs.
3. Query timings are single-threaded on both sides (generation uses every core). Two per side: "from JSON" (network JSON to answer: build the model, mutilate or
   twin it, eliminate) and "prebuilt" (the query alone on an already built model).
The ratio is ours / pgmpy in queries per second.
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from pgmpy.factors.discrete import TabularCPD  # noqa: E402
from pgmpy.inference import VariableElimination  # noqa: E402
from pgmpy.models import DiscreteBayesianNetwork  # noqa: E402

import pgmpy  # noqa: E402

LEVELS = ["associational", "interventional", "counterfactual"]


def build(variables):
    """A pgmpy network from `variables` (our JSON shape, possibly with extra twin variables)."""
    model = DiscreteBayesianNetwork()
    model.add_nodes_from(v["name"] for v in variables)
    model.add_edges_from((p, v["name"]) for v in variables for p in v["parents"])
    values = {v["name"]: v["values"] for v in variables}
    cpds = []
    for v in variables:
        cpds.append(
            TabularCPD(
                v["name"],
                len(v["values"]),
                np.array(v["cpt"], dtype=float).T,
                evidence=v["parents"] or None,
                evidence_card=[len(values[p]) for p in v["parents"]] or None,
                state_names={v["name"]: v["values"], **{p: values[p] for p in v["parents"]}},
            )
        )
    model.add_cpds(*cpds)
    return model


def descendants(variables, start):
    children = {v["name"]: [] for v in variables}
    for v in variables:
        for p in v["parents"]:
            children[p].append(v["name"])
    seen, stack = set(), [c for s in start for c in children[s]]
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            stack.extend(children[v])
    return seen


def rows(variables, names):
    """Parent assignments of `names` in row-major order, as value indices."""
    cards = {v["name"]: len(v["values"]) for v in variables}
    return list(itertools.product(*[range(cards[n]) for n in names]))


def mutilated(variables, intervention):
    """The do-operator: intervened variables lose their parents and get a point-mass CPT."""
    out = []
    for v in variables:
        if v["name"] in intervention:
            k = v["values"].index(intervention[v["name"]])
            out.append({**v, "parents": [], "cpt": [[1.0 if i == k else 0.0 for i in range(len(v["values"]))]]})
        else:
            out.append(v)
    return out


def twin(variables, intervention):
    """The twin network: with one independent selector per (variable, parent assignment), the
    twin V* of a descendant V of the intervention has P(V*=b | V=a, pa, pa*) = [a = b] if
    pa = pa*, else P(b | pa*). Intervened twins are point masses; other variables are shared."""
    by = {v["name"]: v for v in variables}
    below = descendants(variables, list(intervention))
    cf = {n: n for n in by}
    out = list(variables)
    order = topological(variables)
    for name in order:
        v = by[name]
        if name in intervention:
            cf[name] = name + "*"
            k = v["values"].index(intervention[name])
            out.append({"name": cf[name], "values": v["values"], "parents": [],
                        "cpt": [[1.0 if i == k else 0.0 for i in range(len(v["values"]))]]})
        elif name in below:
            cf[name] = name + "*"
            parents = [name]
            for p in v["parents"] + [cf[p] for p in v["parents"]]:
                if p not in parents:
                    parents.append(p)
            values = {**{n: by[n]["values"] for n in by}, **{cf[n]: by[n]["values"] for n in by}}
            cards = [len(values[p]) for p in parents]
            pa_rows = rows(variables, v["parents"])
            cpt = []
            for assign in itertools.product(*[range(c) for c in cards]):
                a = dict(zip(parents, assign))
                pa = tuple(a[p] for p in v["parents"])
                pa_star = tuple(a[cf[p]] for p in v["parents"])
                if pa == pa_star:
                    cpt.append([1.0 if b == a[name] else 0.0 for b in range(len(v["values"]))])
                else:
                    cpt.append(v["cpt"][pa_rows.index(pa_star)])
            out.append({"name": cf[name], "values": v["values"], "parents": parents, "cpt": cpt})
    return out, cf


def topological(variables):
    done, order = set(), []
    pending = list(variables)
    while pending:
        rest = []
        for v in pending:
            if all(p in done for p in v["parents"]):
                done.add(v["name"])
                order.append(v["name"])
            else:
                rest.append(v)
        pending = rest
    return order


def prepare(task):
    """(model, target, evidence) on which plain VE answers the task's query."""
    variables, q = task["network"]["variables"], task["query"]
    if q["level"] == "associational":
        return build(variables), q["target"], q["evidence"]
    if q["level"] == "interventional":
        return build(mutilated(variables, q["intervention"])), q["target"], q["evidence"]
    tw, cf = twin(variables, q["intervention"])
    return build(tw), cf[q["target"]], q["evidence"]


def answer(model, target, evidence):
    factor = VariableElimination(model).query([target], evidence=evidence or None, show_progress=False)
    values = model.get_cpds(target).state_names[target]
    return [float(factor.get_value(**{target: s})) for s in values]


def per_second(items, fn, min_s=1.0):
    start, done = time.perf_counter(), 0
    while True:
        for it in items:
            fn(it)
        done += len(items)
        s = time.perf_counter() - start
        if s >= min_s:
            return done / s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="queries per level")
    ap.add_argument("--generate", type=int, default=100000, help="tasks for the generation timing")
    args = ap.parse_args()
    path = os.path.join(tempfile.mkdtemp(), "causal_bench.jsonl")
    cmd = ["cargo", "bench", "--bench", "causal", "--no-default-features", "--features", "causal", "--",
           "--n", str(args.n), "--generate", str(args.generate), "--out", path]
    print("$", " ".join(cmd), flush=True)
    run = subprocess.run(cmd, check=True, capture_output=True, text=True)
    print(run.stdout)
    ours = json.loads(next(l for l in run.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
    tasks = [json.loads(l) for l in open(path)]
    print(f"pgmpy {pgmpy.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    header = f"{'level':<15} {'ours JSON/s':>12} {'pgmpy JSON/s':>13} {'ratio':>7}   {'ours built/s':>12} {'pgmpy built/s':>13} {'ratio':>7}   max|diff|"
    print(header)
    for level in LEVELS:
        level_tasks = [t for t in tasks if t["query"]["level"] == level]
        prepared = [prepare(t) for t in level_tasks]
        worst = max(
            max(abs(a - b) for a, b in zip(answer(*p), t["answer"])) for p, t in zip(prepared, level_tasks)
        )
        pg_json = per_second(level_tasks, lambda t: answer(*prepare(t)))
        pg_built = per_second(prepared, lambda p: answer(*p))
        o = ours["levels"][level]
        print(
            f"{level:<15} {o['from_json_per_s']:>12.0f} {pg_json:>13.1f} {o['from_json_per_s'] / pg_json:>6.0f}x"
            f"   {o['prebuilt_per_s']:>12.0f} {pg_built:>13.1f} {o['prebuilt_per_s'] / pg_built:>6.0f}x   {worst:.1e}"
        )
        if worst > 1e-9:
            sys.exit(f"answers disagree on {level} queries by {worst}")
    print(f"generation: {ours['generate_tasks_per_s']:.0f} tasks/s on {ours['generate_threads']} threads (ours; pgmpy has no generator)")


if __name__ == "__main__":
    main()
