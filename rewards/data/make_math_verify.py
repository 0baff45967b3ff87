#!/usr/bin/env python3
"""Builds math_verify.jsonl: the gold/prediction cases of math-verify's public test suite.

Source: the tests/ directory of math-verify 0.9.0 (the `math-verify` Python package by Hugging
Face, repository huggingface/Math-Verify), as shipped in its source distribution
math_verify-0.9.0.tar.gz (SHA-256 45ac6c61344ba056b9e99a660a4bc8d044ed408f730aed68c60435aa5eec4645),
fetched with `python3 -m pip download --no-deps --no-binary :all: math-verify==0.9.0`.
Its licence file (named `LICENCE`) is the Apache License, Version 2.0, and pyproject.toml
declares "Apache 2.0"; some .py files still carry an "MIT License, Copyright (c) 2024 The
HuggingFace Team" header.
Only the test cases (gold string, prediction string, expected verdict and the options the
test passes) are kept here, as data; no code of math-verify is copied or imported.

Usage:
    python3 -m pip download --no-deps --no-binary :all: math-verify==0.9.0 -d /tmp/mv
    tar -xzf /tmp/mv/math_verify-0.9.0.tar.gz -C /tmp/mv
    python3 rewards/data/make_math_verify.py /tmp/mv/math_verify-0.9.0/tests [--out PATH]

The argument is the tests/ directory of a checkout or export (or the checkout root that
holds tests/). The test files are read with `ast` only; nothing is executed except the
evaluation of plain literals (strings, numbers, lists, tuples, f-strings over `math.*`).

Each output line is one case, in file order (files sorted by name, functions and cases in
source order), as a labelled row of `rlvr bench-rewards` for `math/equivalence`:
  task        {"answer": gold} plus the options the test passes, as task fields (see
              bench_row): match_types ["latex"] -> "extract": "latex", ["expr"] ->
              "extract": "last_number", precision -> "precision", strict=False ->
              "strict": false, allow_set_relation_comp=True -> "set_matches_relation": true.
              Tests call the helper compare_strings(gold, pred, match_types=[...],
              precision=6, strict=True, allow_set_relation_comp=False), which builds
              LatexExtractionConfig(boxed_match_priority=0) for "latex" and
              ExprExtractionConfig() for "expr"; the few direct verify(parse(gold),
              parse(pred)) calls use the library defaults.
  completion  the prediction string, as Python sees it (escapes resolved: a few tests hold
              accidental escapes, e.g. "$\\text{13}$" without r"" is TAB + "ext{13}").
  label       math-verify's expected verdict, 1 or 0, except in CORRECTIONS, where its
              expectation is wrong and the label is the right verdict.
  note        "tests/<file>::<test function>#<index>" (index within that function's
              parametrize list, or of the comparison call in the function), and for a
              corrected row, what math-verify expects and why that is wrong.

Check (not part of this script): replaying all 276 rows through math-verify 0.9.0 with each
test's options reproduces every expected value, and every label but the corrected one.

Tests that do not compare a gold string with a prediction string (extraction-only checks,
timeouts and error injection with mock.patch, direct sympy object comparisons) are skipped,
and a summary of what was skipped is printed to stderr.
"""
import argparse
import ast
import itertools
import json
import math
import os
import sys

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "math_verify.jsonl")

# Names of the comparison entry points recognised in the tests.
HELPERS = {"compare_strings"}
CONFIG_NAMES = {
    "LatexExtractionConfig": "latex",
    "ExprExtractionConfig": "expr",
    "StringExtractionConfig": "string",
}
MATH_FUNCS = {"sqrt", "exp", "log", "sin", "cos", "tan", "pi", "e", "factorial"}


class Unsupported(Exception):
    pass


class Param:
    """A pytest.param(...) entry: its values and any marks/id."""

    def __init__(self, values, kwargs):
        self.values = values
        self.kwargs = kwargs


def call_name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = call_name(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return None


def evaluate(node, env):
    """Evaluates a literal-like expression; env maps names to already evaluated values."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        out = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                out.extend(evaluate(elt.value, env))
            else:
                out.append(evaluate(elt, env))
        return out if isinstance(node, ast.List) else tuple(out)
    if isinstance(node, ast.Dict):
        return {evaluate(k, env): evaluate(v, env) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        raise Unsupported(f"unknown name {node.id}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        v = evaluate(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else (+v if isinstance(node.op, ast.UAdd) else not v)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult, ast.Sub, ast.Div)):
        a, b = evaluate(node.left, env), evaluate(node.right, env)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Sub):
            return a - b
        return a / b
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(v.value)
            else:
                parts.append(evaluate(v, env))
        return "".join(parts)
    if isinstance(node, ast.FormattedValue):
        value = evaluate(node.value, env)
        if node.conversion == ord("r"):
            value = repr(value)
        elif node.conversion == ord("s"):
            value = str(value)
        elif node.conversion == ord("a"):
            value = ascii(value)
        spec = evaluate(node.format_spec, env) if node.format_spec is not None else ""
        return format(value, spec)
    if isinstance(node, ast.Attribute):
        name = call_name(node)
        if name and name.startswith("math.") and node.attr in MATH_FUNCS:
            return getattr(math, node.attr)
        raise Unsupported(f"attribute {name}")
    if isinstance(node, ast.Call):
        name = call_name(node.func)
        if name and name.startswith("math.") and name.split(".")[1] in MATH_FUNCS:
            return getattr(math, name.split(".")[1])(*[evaluate(a, env) for a in node.args])
        if name in ("pytest.param", "param"):
            kwargs = {k.arg: ast.unparse(k.value) for k in node.keywords}
            return Param([evaluate(a, env) for a in node.args], kwargs)
        short = name.split(".")[-1] if name else None
        if short in CONFIG_NAMES:
            if node.args:
                raise Unsupported(f"positional arguments to {short}")
            return {CONFIG_NAMES[short]: {k.arg: to_json(evaluate(k.value, env)) for k in node.keywords}}
        raise Unsupported(f"call {name}")
    raise Unsupported(type(node).__name__)


def to_json(value):
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    if isinstance(value, list):
        # A list of config dicts ({"latex": {...}}, {"expr": {}}) becomes one dict.
        if value and all(isinstance(v, dict) and len(v) == 1 and next(iter(v)) in CONFIG_NAMES.values() for v in value):
            merged = {}
            for v in value:
                merged.update(v)
            return merged
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def norm_expected(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    return value


def parametrize_decorators(func):
    out = []
    for dec in func.decorator_list:
        if isinstance(dec, ast.Call) and call_name(dec.func) in ("pytest.mark.parametrize", "mark.parametrize", "parametrize"):
            out.append(dec)
    return out


def uses_patch(func):
    for dec in func.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if call_name(target) and call_name(target).split(".")[-1] in ("patch", "object"):
            return True
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and call_name(node.func) and call_name(node.func).split(".")[-1] == "patch":
            return True
    return False


def expand_parametrize(decs, env):
    """Returns (argnames, list of case tuples) for the parametrize decorators of a test."""
    all_names, all_cases = [], [()]
    for dec in reversed(decs):  # the decorator nearest the function is applied first
        names_node = dec.args[0] if dec.args else next(k.value for k in dec.keywords if k.arg == "argnames")
        values_node = dec.args[1] if len(dec.args) > 1 else next(k.value for k in dec.keywords if k.arg == "argvalues")
        names = evaluate(names_node, env)
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        values = evaluate(values_node, env)
        cases = []
        for v in values:
            if isinstance(v, Param):
                v = tuple(v.values)
            if len(names) == 1 and not (isinstance(v, tuple) and len(v) == 1):
                v = (v,)
            cases.append(tuple(v))
        all_cases = [a + b for a, b in itertools.product(all_cases, cases)]
        all_names = all_names + list(names)
    return all_names, all_cases


def find_comparisons(func):
    """Finds `assert <comparison>` statements whose comparison is a gold/pred check.

    Returns a list of (kind, call node, expected node or constant, negate) and a list of
    reasons for asserts that were not understood.
    """
    found, other = [], []
    for node in ast.walk(func):
        if not isinstance(node, ast.Assert):
            continue
        test = node.test
        negate = False
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test, negate = test.operand, True
        expected = None
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            lhs, expected = test.left, test.comparators[0]
        else:
            lhs = test
        call = lhs
        # unwrap int(...) / bool(...)
        if isinstance(call, ast.Call) and call_name(call.func) in ("int", "bool") and len(call.args) == 1:
            call = call.args[0]
        name = call_name(call.func) if isinstance(call, ast.Call) else None
        if name in HELPERS:
            found.append(("helper", call, expected, negate))
        elif name in ("verify", "math_verify.verify") and len(call.args) >= 2 and all(
            isinstance(a, ast.Call) and call_name(a.func) in ("parse", "math_verify.parse") for a in call.args[:2]
        ):
            found.append(("verify", call, expected, negate))
        else:
            other.append(name or ast.unparse(lhs)[:40])
    return found, other


def helper_signature(tree):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in HELPERS:
            return [a.arg for a in node.args.args]
    return None


# Rows where math-verify's expectation is mathematically wrong: the label here is the right
# verdict, and the note says what math-verify expects and why it is wrong. docs/rewards.md
# lists them.
CORRECTIONS = {
    "tests/test_yujianll.py::test_string_extraction#9": (
        0,
        (
            "math-verify expects 1: its normaliser turns \\mathrm{e} into \\text{e} and drops it as a "
            "unit, so both sides read 1 - 1/{ and 1 + 1/{; but 1 - 1/e is not 1 + 1/e"
        ),
    ),
}


def bench_row(r):
    """A case as a row of `rlvr bench-rewards`: the task carries the options the test passed.

    match_types ["latex"] is extract "latex", ["expr"] is extract "last_number", both (or the
    library defaults) is the default extraction; precision, strict and
    allow_set_relation_comp map to the task fields precision, strict and
    set_matches_relation."""
    task = {"answer": r["gold"]}
    o = r["options"]
    kinds = o.get("match_types")
    if kinds == ["latex"]:
        task["extract"] = "latex"
    elif kinds == ["expr"]:
        task["extract"] = "last_number"
    if "precision" in o and o["precision"] != 6:
        task["precision"] = o["precision"]
    if "strict" in o and not o["strict"]:
        task["strict"] = False
    if o.get("allow_set_relation_comp"):
        task["set_matches_relation"] = True
    label, note = r["expected"], r["source"]
    if r["source"] in CORRECTIONS:
        label, why = CORRECTIONS[r["source"]]
        note = f"{note}: {why}"
    return {"task": task, "completion": r["prediction"], "label": label, "reward": "math/equivalence", "note": note}


def write(rows, path):
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(bench_row(r), ensure_ascii=False) + "\n" for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tests_dir")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()

    tests_dir = args.tests_dir
    if os.path.isdir(os.path.join(tests_dir, "tests")):
        tests_dir = os.path.join(tests_dir, "tests")
    files = sorted(f for f in os.listdir(tests_dir) if f.startswith("test_") and f.endswith(".py"))

    # The helper's positional parameter names (gold, pred, match_types, precision, ...).
    signature = ["gold", "pred", "match_types", "precision", "strict", "allow_set_relation_comp"]
    for f in files:
        with open(os.path.join(tests_dir, f), encoding="utf-8") as fh:
            sig = helper_signature(ast.parse(fh.read()))
        if sig:
            signature = sig

    rows, skipped, counts = [], [], []
    for f in files:
        path = os.path.join(tests_dir, f)
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), filename=path)
        rel = f"tests/{f}"
        env = {}
        for node in tree.body:  # module-level literal assignments (parametrize lists in variables)
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    env[node.targets[0].id] = evaluate(node.value, env)
                except Unsupported:
                    pass
        for func in tree.body:
            if not (isinstance(func, ast.FunctionDef) and func.name.startswith("test_")):
                continue
            where = f"{rel}::{func.name}"
            found, other = find_comparisons(func)
            if not found:
                decs = parametrize_decorators(func)
                if uses_patch(func):
                    why = "mocks library internals with unittest.mock.patch (timeout / error-propagation test), no gold/prediction pair"
                elif any("parse" == o or o.endswith("len") for o in other) or "parse" in ast.unparse(func):
                    why = "checks extraction output only (parse(...) results / configs), no gold/prediction verification"
                else:
                    why = "no gold/prediction comparison call"
                n = 0
                if decs:
                    try:
                        n = len(expand_parametrize(decs, env)[1])
                    except Unsupported:
                        n = -1
                skipped.append((where, why, n))
                continue
            if other:
                skipped.append((where, f"{len(other)} assert(s) on other calls ({', '.join(sorted(set(other)))}): direct sympy-object checks", len(other)))
            decs = parametrize_decorators(func)
            if decs:
                names, cases = expand_parametrize(decs, env)
            else:
                names, cases = [], [()]
            idx = 0
            for case in cases:
                bind = dict(env)
                bind.update(dict(zip(names, case)))
                for kind, call, expected_node, negate in found:
                    try:
                        if kind == "helper":
                            params = {}
                            for i, a in enumerate(call.args):
                                params[signature[i]] = evaluate(a, bind)
                            for k in call.keywords:
                                params[k.arg] = evaluate(k.value, bind)
                            gold = params.pop(signature[0])
                            pred = params.pop(signature[1])
                            options = {k: to_json(v) for k, v in params.items()}
                        else:
                            g_call, p_call = call.args[0], call.args[1]
                            gold = evaluate(g_call.args[0], bind)
                            pred = evaluate(p_call.args[0], bind)
                            options = {}
                            for pc, who in ((g_call, "gold"), (p_call, "prediction")):
                                extra = {}
                                if len(pc.args) > 1:
                                    extra["extraction_config"] = to_json(evaluate(pc.args[1], bind))
                                for k in pc.keywords:
                                    extra[k.arg] = to_json(evaluate(k.value, bind))
                                if extra:
                                    options[f"parse_{who}"] = extra
                            if options.get("parse_gold") == options.get("parse_prediction") and "parse_gold" in options:
                                options["parse"] = options.pop("parse_gold")
                                options.pop("parse_prediction")
                            for i, a in enumerate(call.args[2:]):
                                options[f"verify_arg{i + 2}"] = to_json(evaluate(a, bind))
                            for k in call.keywords:
                                options[k.arg] = to_json(evaluate(k.value, bind))
                        if expected_node is None:
                            expected = 1
                        else:
                            expected = evaluate(expected_node, bind)
                        if negate:
                            expected = int(not expected) if isinstance(expected, (bool, int)) and expected in (0, 1) else expected
                    except Unsupported as e:
                        skipped.append((f"{where}#{idx}", f"could not evaluate: {e}", 1))
                        idx += 1
                        continue
                    if not isinstance(gold, str) or not isinstance(pred, str):
                        skipped.append((f"{where}#{idx}", "gold/prediction are not strings", 1))
                        idx += 1
                        continue
                    rows.append({
                        "source": f"{where}#{idx}",
                        "gold": gold,
                        "prediction": pred,
                        "expected": norm_expected(expected),
                        "options": options,
                    })
                    idx += 1
            counts.append((where, idx))

    write(rows, args.out)

    print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    for where, n in counts:
        print(f"  {n:4d}  {where}", file=sys.stderr)
    print("skipped:", file=sys.stderr)
    for where, why, n in skipped:
        extra = f" ({n} parametrized case(s))" if n > 0 and "::" in where and "#" not in where and "assert" not in why else ""
        print(f"  {where}: {why}{extra}", file=sys.stderr)


if __name__ == "__main__":
    main()
