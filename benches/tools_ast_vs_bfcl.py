#!/usr/bin/env python3
"""Side by side: parse + verify throughput of rlvr's `tools/ast-match` and BFCL's own checker.

Both run on the same cases (default: the BFCL fixture, `rlvr score` format) on one core:
BFCL decodes each completion with `default_decode_ast_prompting` (or, for `<tool_call>` JSON
blocks, `json.loads`), checks the format and runs `ast_checker`; rlvr runs `ast_verdict`. The
script prints both rates, their ratio, and any case where the verdicts differ.

How to run (from the repository root):

    python3 -m venv /tmp/bfcl-venv
    /tmp/bfcl-venv/bin/pip install --no-deps bfcl-eval==2026.3.23
    /tmp/bfcl-venv/bin/pip install filelock==3.20.0 tenacity
    /tmp/bfcl-venv/bin/python benches/tools_ast_vs_bfcl.py [--rounds N] [CASES.jsonl]
    /tmp/bfcl-venv/bin/python benches/tools_ast_vs_bfcl.py [--rounds N] --real [BFCL_DATA_DIR]

`--real` builds cases from BFCL's own data (default: the wheel installed in this venv) for the
eight categories: per task, the first acceptable values written as Python calls (should be
valid), the same with the last argument dropped, and with the calls reversed.

bfcl-eval's full dependency list pulls in model SDKs and tree-sitter that its AST checker does
not need; the modules that import them (the model registry, the Java/JavaScript parsers) are
replaced by stubs below. The Rust side is built and run with
`cargo bench --bench tools_ast --no-default-features --features tools`, or taken from the
binary named by `RLVR_TOOLS_AST_BENCH` (a release build of `benches/tools_ast.rs`).
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CASES = os.path.join(ROOT, "envs/src/tools/fixture/bfcl/cases.jsonl")


def stub(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m


class _NoRename:
    underscore_to_dot = False


class _AnyModel(dict):
    def __missing__(self, key):
        return _NoRename()


stub("bfcl_eval.constants.model_config", MODEL_CONFIG_MAPPING=_AnyModel())
stub("bfcl_eval.model_handler.parser.java_parser", parse_java_function_call=None)
stub("bfcl_eval.model_handler.parser.js_parser", parse_javascript_function_call=None)

from bfcl_eval.constants.enums import Language  # noqa: E402
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker  # noqa: E402
from bfcl_eval.model_handler.utils import default_decode_ast_prompting  # noqa: E402
from bfcl_eval.utils import is_function_calling_format_output  # noqa: E402

TAG = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)


def decode(text):
    if "<tool_call>" in text or "</tool_call>" in text:
        out = []
        for block in TAG.findall(text):
            b = json.loads(block)
            out.append({b["name"]: b.get("arguments", {})})
        return out
    return default_decode_ast_prompting(text)


def verdict(task, completion):
    try:
        decoded = decode(completion)
    except Exception:
        return "ast_decoder:decoder_failed"
    if not is_function_calling_format_output(decoded):
        return "ast_decoder:decoder_wrong_output_format"
    r = ast_checker(task["functions"], decoded, task["ground_truth"], Language.PYTHON, task["category"], "model")
    return "valid" if r["valid"] else r["error_type"]


CATEGORIES = ["simple", "multiple", "parallel", "parallel_multiple",
              "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"]


def first_value(acceptable):
    if not isinstance(acceptable, list) or not acceptable:
        return None
    v = acceptable[0]
    if v == "":
        return None
    if isinstance(v, dict):
        return {k: first_value(a) if isinstance(a, list) else a for k, a in v.items() if not (isinstance(a, list) and a and a[0] == "")}
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        return [{k: first_value(a) for k, a in d.items() if not (a and a[0] == "")} for d in v]
    return v


def render(calls):
    return "[" + ", ".join(f"{n}(" + ", ".join(f"{k}={v!r}" for k, v in a) + ")" for n, a in calls) + "]"


def build_real_cases(data_dir, out_path):
    with open(out_path, "w") as out:
        for cat in CATEGORIES:
            stem = "simple_python" if cat == "simple" else cat
            qs = [json.loads(l) for l in open(os.path.join(data_dir, f"BFCL_v4_{stem}.json"))]
            gts = {}
            for l in open(os.path.join(data_dir, "possible_answer", f"BFCL_v4_{stem}.json")):
                g = json.loads(l)
                gts[g["id"]] = g["ground_truth"]
            for q in qs:
                if q["id"] not in gts:
                    continue
                task = {"id": q["id"], "category": cat, "functions": q["function"], "ground_truth": gts[q["id"]]}
                calls = []
                for t in task["ground_truth"]:
                    name, params = next(iter(t.items()))
                    args = [(k, first_value(a)) for k, a in params.items() if first_value(a) is not None]
                    calls.append((name, args))
                variants = [calls, [(n, a[:-1]) for n, a in calls]]
                if len(calls) > 1:
                    variants.append(list(reversed(calls)))
                for v in variants:
                    out.write(json.dumps({"task": task, "completion": render(v)}) + "\n")


def python_round(cases, seconds):
    """Cases per second of BFCL's checker over `cases`, repeated for about `seconds`."""
    start, passes = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for c in cases:
            verdict(c["task"], c["completion"])
        passes += 1
    return len(cases) * passes / (time.perf_counter() - start)


def rust_round(path, seconds):
    """One run of the Rust side (`benches/tools_ast.rs`) for about `seconds`: its JSON report."""
    cmd = ["cargo", "bench", "-q", "--bench", "tools_ast", "--no-default-features", "--features", "tools", "--"]
    if os.environ.get("RLVR_TOOLS_AST_BENCH"):  # a prebuilt release binary of benches/tools_ast.rs
        cmd = [os.environ["RLVR_TOOLS_AST_BENCH"]]
    out = subprocess.run(cmd + [path, "--seconds", str(seconds)], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    args = sys.argv[1:]
    rounds = 9
    if "--rounds" in args:
        i = args.index("--rounds")
        rounds = int(args[i + 1])
        del args[i:i + 2]
    if args and args[0] == "--real":
        import bfcl_eval
        data_dir = args[1] if len(args) > 1 else os.path.join(os.path.dirname(bfcl_eval.__file__), "data")
        path = os.path.join(tempfile.gettempdir(), "rlvr_bfcl_real_cases.jsonl")
        build_real_cases(data_dir, path)
    else:
        path = args[0] if args else DEFAULT_CASES
    cases = [json.loads(line) for line in open(path) if line.strip()]
    verdicts = [verdict(c["task"], c["completion"]) for c in cases]

    # Rounds alternate between the two sides so that both see the same machine; each side's
    # best round is its rate (as `timeit` advises: slower rounds measure interference, not the
    # code). The median of the paired rounds' ratios is printed too.
    py_rates, ours = [], []
    for _ in range(rounds):
        py_rates.append(python_round(cases, 1.0))
        ours.append(rust_round(path, 1.0))
    rs_rates = [o["cases_per_s"] for o in ours]
    py_rate, rs_rate = max(py_rates), max(rs_rates)
    paired = sorted(r / p for r, p in zip(rs_rates, py_rates))

    calls_per_case = ours[0]["calls_per_pass"] / max(1, ours[0]["cases"])
    print(f"cases: {len(cases)} ({path}), best of {rounds} alternating rounds of 1 s")
    print(f"bfcl-eval (Python): {py_rate:12.0f} cases/s  {py_rate * calls_per_case:12.0f} calls/s")
    print(f"rlvr (Rust):        {rs_rate:12.0f} cases/s  {rs_rate * calls_per_case:12.0f} calls/s")
    print(f"ratio: {rs_rate / py_rate:.1f}x per core (paired rounds: {paired[0]:.1f}x to {paired[-1]:.1f}x, "
          f"median {paired[len(paired) // 2]:.1f}x)")
    diffs = [(i + 1, a, b) for i, (a, b) in enumerate(zip(verdicts, ours[0]["verdicts"])) if a != b]
    print(f"verdicts: {len(cases) - len(diffs)}/{len(cases)} agree")
    for line, a, b in diffs:
        print(f"  line {line}: bfcl {a}, rlvr {b}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
