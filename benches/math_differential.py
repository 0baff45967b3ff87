#!/usr/bin/env python3
"""Differential test of rlvr's `math/equivalence` against math-verify, hunting false positives.

It builds a deterministic corpus (seeded random) of (gold, completion) pairs, each with a true
label computed here, independently of both verifiers: exact rationals (`fractions`/SymPy
`Rational`), SymPy for radicals, polynomials, rational functions and solution sets of
inequalities, high-precision evaluation at random points for identities, and explicit
construction for the structured answers (sets, tuples, intervals, matrices, text). Every gold
gets predictions that are equal but written differently (1/2, 0.5, \\frac{2}{4}; a reordered set;
an expanded polynomial; `5 \\ge x` for `x \\le 5`; a scaled equation) and near misses that must
score 0 (off by one, a flipped sign, an open for a closed bracket, a moved boundary, a swapped
tuple, a missing set element, `1 + \\sqrt2` for `1 \\pm \\sqrt2`, 0.333 for 1/3, a renamed
variable, x^3 for x^2, a changed matrix entry, 2^{64} against 18446744073709551617, ...). Each
prediction is wrapped in realistic model text (`\\boxed{}`, Minerva's "Final Answer: The final
answer is $X$. I hope it is correct.", "the answer is $X$", a bare number sentence), sometimes
after working that mentions other values, including the gold itself before a wrong answer.

A few rows are labelled by rlvr's documented rules rather than by exact mathematics (their
kind is `spec`): a percentage matching its bare number or its fraction (`25\\%` = 25 = 0.25), a
decimal rounded to 6 places matching (`0.333333` = 1/3), a base subscript matching its value
(`204_5` = 54); see docs/rewards.md, section "math/equivalence".

Both verifiers score every row:
  ours:        `rlvr score --reward math/equivalence --workers 1 --input rows.jsonl`
  math-verify: `verify(parse("$" + gold + "$"), parse(completion))`, default configs (0.9.0)

It prints the rows per family, each verifier's agreement with the true labels, and lists
(a) every row where ours says 1 and the label is 0 (false positives), (b) ours 0 where the label
is 1 (false negatives), (c) rows where ours reports an error, and (d) rows where math-verify
and ours disagree, grouped by generator family.

How to run, from the repository root (needs sympy and math-verify==0.9.0, and a built rlvr):

    python3 benches/math_differential.py [--n 4000] [--seed 7] [--rlvr target/release/rlvr]
        [--jobs 2] [--show 12] [--dump rows.jsonl]

`--show` caps the rows listed per family in (d) (0: all); (a)-(c) are always listed in full.
The exit status is 1 when ours has a false positive, else 0.
"""
import argparse
import collections
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
from decimal import Decimal

import mpmath
import sympy
from sympy import Rational, S, sqrt

X, Y, Z, T = sympy.symbols("x y z t", real=True)
PI = sympy.pi

# --------------------------------------------------------------------------------------------
# Truth: comparisons computed here, never by either verifier.
# --------------------------------------------------------------------------------------------


def num_eq(a, b):
    """Exact equality of two SymPy constants (rationals exactly, algebraics via simplify and
    a 100-digit check)."""
    a, b = sympy.sympify(a), sympy.sympify(b)
    if a.is_Rational and b.is_Rational:
        return bool(a == b)
    d = sympy.nsimplify(sympy.simplify(a - b))
    if d == 0:
        return True
    v = sympy.N(d, 100)
    return bool(abs(v) < sympy.Float("1e-80"))


def fn_eq(a, b, syms=(X,), points=10, seed=0):
    """Equality of two expressions as functions: 50-digit evaluation at random points."""
    rng = random.Random(seed)
    fa = sympy.lambdify(syms, a, modules="mpmath")
    fb = sympy.lambdify(syms, b, modules="mpmath")
    mpmath.mp.dps = 50
    for _ in range(points):
        # both signs: a verifier that samples positive points only cannot tell |x| from x
        # and well past pi: |sin x| = sin |x| on (-pi, pi)
        span = 3.3 if rng.random() < 0.5 else 12.0
        args = [mpmath.mpf(rng.uniform(-span, span)) + mpmath.sqrt(rng.randint(2, 7)) / 100
                for _ in syms]
        try:
            va, vb = fa(*args), fb(*args)
        except (ZeroDivisionError, ValueError):
            continue
        if abs(va - vb) > mpmath.mpf(10) ** -35 * max(1, abs(va)):
            return False
    if (a.free_symbols | b.free_symbols) - set(syms):
        return sympy.simplify(a - b) == 0
    return True


def set_eq(a, b):
    """Two collections of constants as sets (order and duplicates ignored)."""
    return all(any(num_eq(x, y) for y in b) for x in a) and all(any(num_eq(x, y) for x in a) for y in b)


def tuple_eq(a, b):
    return len(a) == len(b) and all(num_eq(x, y) for x, y in zip(a, b))


def real_set_eq(a, b):
    """Two subsets of the reals (SymPy sets) are equal."""
    return a.symmetric_difference(b) == S.EmptySet


def lin_eq_same(g, p):
    """Two equations (lhs - rhs expressions) have the same solution set: one is a nonzero
    constant multiple of the other (they are linear in our corpus)."""
    r = sympy.cancel(sympy.together(g / p))
    return not r.free_symbols and r != 0


def round6_eq(a, b):
    """rlvr's (and math-verify's) rule for non-integers: equal when both round alike to 6
    places."""
    fa, fb = sympy.N(a, 60), sympy.N(b, 60)
    return round(float(fa), 6) == round(float(fb), 6)


# --------------------------------------------------------------------------------------------
# LaTeX formatting
# --------------------------------------------------------------------------------------------


def frac_tex(q, style="frac"):
    q = Rational(q)
    if q.q == 1:
        return str(q.p)
    p, d = abs(q.p), q.q
    sign = "-" if q < 0 else ""
    if style == "slash":
        return f"{sign}{p}/{d}"
    if style == "negnum":
        return f"\\frac{{{sign}{p}}}{{{d}}}"
    if style == "dfrac":
        return f"{sign}\\dfrac{{{p}}}{{{d}}}"
    return f"{sign}\\frac{{{p}}}{{{d}}}"


def dec_tex(q, places=None):
    """A rational as a decimal: exact when it terminates (places None), else rounded or
    truncated to `places`."""
    q = Rational(q)
    if places is None:
        d = q.q
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d != 1:
            raise ValueError("does not terminate")
        places = 0
        while (q * 10 ** places).q != 1:
            places += 1
    s = sympy.N(q, 60)
    txt = f"{float(s):.{places}f}" if abs(q) < 1e12 else str(sympy.Float(s, places + 20))
    return txt


def terminates(q):
    d = Rational(q).q
    for f in (2, 5):
        while d % f == 0:
            d //= f
    return d == 1


def poly_tex(expr, var=X, ascending=False):
    """An expanded polynomial with integer coefficients, terms by degree."""
    poly = sympy.Poly(sympy.expand(expr), X)
    terms = [(m[0], c) for m, c in zip(poly.monoms(), poly.coeffs())]
    if ascending:
        terms.reverse()
    v = str(var)
    out = ""
    for i, (deg, c) in enumerate(terms):
        c = int(c)
        sign = "-" if c < 0 else "+"
        a = abs(c)
        mono = "" if deg == 0 else (v if deg == 1 else f"{v}^{{{deg}}}" if deg > 9 else f"{v}^{deg}")
        coef = str(a) if (a != 1 or deg == 0) else ""
        term = coef + mono
        if i == 0:
            out = ("-" if c < 0 else "") + term
        else:
            out += f" {sign} {term}"
    return out or "0"


def lin_tex(c, var="x"):
    """`(x - c)` style factor."""
    c = int(c)
    if c == 0:
        return var
    return f"({var} - {c})" if c > 0 else f"({var} + {-c})"


# --------------------------------------------------------------------------------------------
# Completion wrappers
# --------------------------------------------------------------------------------------------

WORK = [
    "We start by writing down what is given and simplify step by step.",
    "Let me set up the equation carefully. Combining the terms, we get a simpler form.",
    "First, note that the expression is symmetric, so we can pair up the terms.",
    "Using the formula from the problem statement and substituting the values,",
    "I'll check each case in turn; the second case gives a contradiction.",
    "Multiplying both sides by the common denominator and collecting like terms:",
]


def work_text(rng):
    s = rng.choice(WORK)
    if rng.random() < 0.5:
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        s += f" For instance ${a} + {b} = {a + b}$, and ${a} \\cdot {b} = {a * b}$."
    return s


def is_plain_number(p):
    return re.fullmatch(r"-?\d+(\.\d+)?", p) is not None


def wrap(rng, pred, gold=None, decoy=None):
    """Realistic model text around `pred`. `gold` (for near misses) is mentioned in the working
    before the wrong final answer; `decoy` (for equal rows) is a wrong value mentioned first."""
    w = work_text(rng)
    if gold is not None:
        w += f" At first I thought the answer was ${gold}$, but that misses a case."
    if decoy is not None:
        w += f" A first attempt gave ${decoy}$, which fails the check."
    choices = ["boxed", "minerva", "answer_is", "display_box", "boxed_sentence"]
    if is_plain_number(pred):
        choices += ["bare", "bare_total"]
    style = rng.choice(choices)
    if style == "boxed":
        return f"{w}\nSo the answer is $\\boxed{{{pred}}}$."
    if style == "minerva":
        return f"{w}\nFinal Answer: The final answer is ${pred}$. I hope it is correct."
    if style == "answer_is":
        return f"{w}\nTherefore, the answer is ${pred}$."
    if style == "display_box":
        return f"{w}\n\\[\n\\boxed{{{pred}}}\n\\]"
    if style == "boxed_sentence":
        return f"{w} Hence the final result is $\\boxed{{{pred}}}$, as required."
    if style == "bare":
        return f"{w}\nThe answer is {pred}."
    return f"{w}\nSo there are {pred} in total."


# --------------------------------------------------------------------------------------------
# Generators: each returns (gold, [(pred, label, kind, note), ...]); kind is equal, miss, spec
# --------------------------------------------------------------------------------------------




def numeric_row(t, w, v, note):
    """A numeric candidate's row: a `spec` one labelled by the 6-place rule, others by value."""
    if "spec" in note:
        return (t, int(round6_eq(w, v)), "spec", note)
    eq = num_eq(w, v)
    return (t, int(eq), "equal" if eq else "miss", note)

def labelled(cands, same):
    """Each candidate (text, value, note) with its label: 1 when `same(text, value)` holds."""
    out = []
    for t, e, n in cands:
        eq = same(t, e)
        out.append((t, int(eq), "equal" if eq else "miss", n))
    return out

def g_int(rng):
    n = rng.choice([rng.randint(-60, 250), rng.randint(1000, 10 ** 6), -rng.randint(1000, 10 ** 5)])
    gold = str(n)
    preds = [(str(n), "same")]
    if abs(n) >= 1000:
        s = f"{abs(n):,}".replace(",", "{,}")
        preds.append((("-" if n < 0 else "") + s, "{,} grouping"))
    preds += [(f"{n}.0", "trailing .0"), (f"\\frac{{{2 * n}}}{{2}}", "unreduced fraction"),
              (f"{n}\\text{{ cm}}", "unit"), (f"x = {n}", "assignment")]
    misses = [n + 1, n - 1, n * 10]
    if n != 0:
        misses.append(-n)
    r = str(abs(n))
    if len(r) > 1 and r[::-1] != r:
        misses.append(int(r[::-1]) * (1 if n >= 0 else -1))
    out = [(p, 1, "equal", note) for p, note in preds]
    out += [(str(m), int(m == n), "miss", f"{m - n:+d}" if abs(m - n) < 3 else "changed") for m in misses]
    out += [(format(Decimal(n) + Decimal("1e-7"), "f"), 0, "miss", "int vs 1e-7 over"),
            (format(Decimal(n) - Decimal("1e-7"), "f"), 0, "miss", "int vs 1e-7 under"),
            (format(Decimal(n) + Decimal("1e-12"), "f"), 0, "miss", "int vs 1e-12 over")]
    return gold, out


def g_bigint(rng):
    c = rng.randrange(7)
    if c == 0:
        e = rng.choice([53, 63, 64, 65, 100, 127, 128])
        v = 2 ** e
        gold = f"2^{{{e}}}"
        cands = [(str(v), 1, "equal", "expanded power"), (str(v + 1), 0, "miss", "value + 1"),
                 (str(v - 1), 0, "miss", "value - 1"), (f"2^{{{e + 1}}}", 0, "miss", "exponent + 1"),
                 (f"2^{{{e - 1}}} \\cdot 2", 1, "equal", "split power"), (f"4^{{{e // 2}}}", int(e % 2 == 0), "equal" if e % 2 == 0 else "miss", "base 4")]
    elif c == 1:
        e = rng.randint(15, 40)
        gold = f"10^{{{e}}}"
        v = 10 ** e
        cands = [(str(v), 1, "equal", "expanded"), (str(v + 1), 0, "miss", "+1"),
                 (str(10 ** (e - 1)), 0, "miss", "one zero fewer"), (f"10^{{{e + 1}}}", 0, "miss", "exponent + 1")]
    elif c == 2:
        v = rng.randint(10 ** 20, 10 ** 30)
        gold = str(v)
        cands = [(str(v), 1, "equal", "same"), (str(v + 1), 0, "miss", "+1"), (str(v - 10), 0, "miss", "-10"),
                 (str(v)[:-1], 0, "miss", "dropped digit"), (f"-{v}", 0, "miss", "sign")]
    elif c == 3:
        v = 2 ** 53 + rng.choice([1, 3, 5])
        gold = str(v)
        cands = [(str(v - 1), 0, "miss", "f64 neighbour"), (str(v + 1), 0, "miss", "f64 neighbour"),
                 (str(v), 1, "equal", "same"), (f"2^{{53}} + {v - 2 ** 53}", 1, "equal", "power sum")]
    elif c == 4:
        k = rng.randint(15, 25)
        v = sympy.factorial(k)
        gold = f"{k}!"
        cands = [(str(v), 1, "equal", "expanded factorial"), (str(v + 1), 0, "miss", "+1"),
                 (f"{k + 1}!", 0, "miss", "k+1"), (f"{k} \\cdot {k - 1}!", 1, "equal", "recursion")]
    elif c == 5:
        a, b = rng.randint(3, 9), rng.randint(20, 40)
        gold = f"{a}^{{{b}}}"
        v = a ** b
        cands = [(str(v), 1, "equal", "expanded"), (str(v - 1), 0, "miss", "-1"), (f"{b}^{{{a}}}", int(a ** b == b ** a), "miss", "swapped base/exp")]
    else:
        v = rng.randint(10 ** 15, 10 ** 17)
        gold = str(v)
        cands = [(f"{v}.0", 1, "equal", "trailing .0"), (f"{v}.5", 0, "miss", "+0.5"),
                 (str(v + 2), 0, "miss", "+2 (close in f64)"), (f"{v:,}", 1, "equal", "1,000 grouping")]
    return gold, cands


def g_frac(rng):
    q = Rational(rng.randint(-40, 40) or 1, rng.randint(2, 24))
    while q.q == 1:
        q = Rational(rng.randint(-40, 40) or 1, rng.randint(2, 24))
    gold = frac_tex(q, rng.choice(["frac", "frac", "dfrac"]))
    k = rng.randint(2, 5)
    cands = [(frac_tex(q, "frac"), q), (frac_tex(q, "slash"), q), (frac_tex(q, "negnum"), q),
             (f"\\frac{{{q.p * k}}}{{{q.q * k}}}", q), (f"\\tfrac{{{q.p}}}{{{q.q}}}", q)]
    if terminates(q):
        cands.append((dec_tex(q), q))
    misses = [(frac_tex(q + Rational(1, q.q)), q + Rational(1, q.q)), (frac_tex(-q), -q),
              (frac_tex(1 / q), 1 / q), (f"\\frac{{{q.p}}}{{{q.q + 1}}}", Rational(q.p, q.q + 1)),
              (f"\\frac{{{q.q}}}{{{q.p}}}", Rational(q.q, q.p))]
    out = [(t, int(num_eq(v, q)), "equal" if num_eq(v, q) else "miss", "rewrite") for t, v in cands]
    out += [(t, int(num_eq(v, q)), "miss", "changed") for t, v in misses]
    if not terminates(q):
        for places in (2, 3, 4):
            t = dec_tex(q, places)
            out.append((t, 0, "miss", f"rounded to {places} places"))
        t = f"{float(q):.6f}"
        out.append((t, 1, "spec", "rounded to 6 places (spec)"))
        trunc = sympy.floor(abs(q) * 10 ** 6) / 10 ** 6 * (1 if q > 0 else -1)
        tt = f"{float(trunc):.6f}"
        if round(float(q), 6) != round(float(trunc), 6):
            out.append((tt, 0, "miss", "truncated to 6 places"))
    return gold, out


def g_decimal(rng):
    places = rng.randint(1, 3)
    v = Rational(rng.randint(-3000, 9000), 10 ** places)
    while v.q == 1 or v == 0:
        v = Rational(rng.randint(-3000, 9000), 10 ** places)
    gold = dec_tex(v)
    cands = [(gold + "0", v, "trailing zero"), (frac_tex(v), v, "fraction"),
             (f"\\frac{{{v.p * 2}}}{{{v.q * 2}}}", v, "unreduced fraction")]
    if abs(v) < 1 and v > 0:
        cands.append((gold[1:], v, "no leading zero"))
    misses = [(dec_tex(v * 10), v * 10, "shifted point"), (dec_tex(-v), -v, "sign"),
              (dec_tex(v + Rational(1, v.q)), v + Rational(1, v.q), "last digit + 1")]
    if v.q > 10:
        misses.append((dec_tex(v, 1), sympy.nsimplify(dec_tex(v, 1)), "rounded to 1 place"))
    s = gold.lstrip("-")
    if "." in s:
        a, b = s.split(".")
        if len(b) >= 2 and b[0] != b[1]:
            sw = a + "." + b[1] + b[0] + b[2:]
            misses.append((("-" if v < 0 else "") + sw, sympy.nsimplify(("-" if v < 0 else "") + sw), "swapped digits"))
    out = [(t, int(num_eq(w, v)), "equal", n) for t, w, n in cands]
    out += [(t, int(num_eq(w, v)), "miss", n) for t, w, n in misses]
    return gold, out


SQUAREFREE = [2, 3, 5, 6, 7, 10, 11, 13]


def g_root(rng):
    c = rng.randrange(3)
    if c == 0:
        k, m = rng.randint(1, 9), rng.choice(SQUAREFREE)
        v = k * sqrt(m)
        kt = "" if k == 1 else str(k)
        gold = f"{kt}\\sqrt{{{m}}}"
        cands = [(f"\\sqrt{{{k * k * m}}}", v, "under the root"), (f"{k} \\cdot \\sqrt{{{m}}}", v, "cdot"),
                 (f"\\frac{{{k * m}}}{{\\sqrt{{{m}}}}}", v, "unrationalised"), (f"{k} \\cdot {m}^{{\\frac{{1}}{{2}}}}", v, "power 1/2"),
                 (f"{kt}\\sqrt{{{m + 1}}}", k * sqrt(m + 1), "radicand + 1"), (f"{k + 1}\\sqrt{{{m}}}", (k + 1) * sqrt(m), "coefficient + 1"),
                 (f"\\sqrt{{{k * m}}}", sqrt(k * m), "coefficient under the root"), (f"{m}\\sqrt{{{k}}}", m * sqrt(k), "swapped"),
                 (f"{float(v):.2f}", sympy.nsimplify(f"{float(v):.2f}"), "2 places"), (f"-{kt}\\sqrt{{{m}}}", -v, "sign"),
                 (f"\\sqrt[3]{{{k * k * m}}}", sympy.root(k * k * m, 3), "cube root")]
    elif c == 1:
        m = rng.choice(SQUAREFREE)
        b = rng.randint(2, 6)
        v = sqrt(m) / b
        gold = f"\\frac{{\\sqrt{{{m}}}}}{{{b}}}"
        cands = [(f"\\frac{{{m}}}{{{b}\\sqrt{{{m}}}}}", v, "unrationalised"), (f"\\frac{{1}}{{{b}}}\\sqrt{{{m}}}", v, "coefficient first"),
                 (f"\\sqrt{{\\frac{{{m}}}{{{b * b}}}}}", v, "root of fraction"), (f"\\frac{{\\sqrt{{{m}}}}}{{{b + 1}}}", sqrt(m) / (b + 1), "denominator + 1"),
                 (f"\\frac{{{b}}}{{\\sqrt{{{m}}}}}", b / sqrt(m), "reciprocal-ish"), (f"\\frac{{\\sqrt{{{m}}}}}{{{b * b}}}", sqrt(m) / b ** 2, "squared denominator"),
                 (f"{float(v):.6f}", sympy.nsimplify(f"{float(v):.6f}"), "6 places (spec)"), (f"{float(v):.3f}", sympy.nsimplify(f"{float(v):.3f}"), "3 places")]
    else:
        a = rng.choice([2, 3, 5, 6])
        k = rng.randint(2, 4)
        v = k * sympy.root(a, 3)
        gold = f"{k}\\sqrt[3]{{{a}}}"
        cands = [(f"\\sqrt[3]{{{k ** 3 * a}}}", v, "under the root"), (f"\\sqrt{{{k * k * a}}}", k * sqrt(a), "square root"),
                 (f"{k}\\sqrt[3]{{{a + 1}}}", k * sympy.root(a + 1, 3), "radicand + 1"), (f"{k} \\cdot {a}^{{1/3}}", v, "power 1/3"),
                 (f"\\sqrt[3]{{{k * k * a}}}", sympy.root(k * k * a, 3), "k^2 under root")]
    out = []
    for t, w, n in cands:
        out.append(numeric_row(t, w, v, n))
    return gold, out


def g_pi(rng):
    k, n = rng.randint(1, 7), rng.randint(1, 8)
    q = Rational(k, n)
    v = q * PI
    kt = "" if q.p == 1 else str(q.p)
    gold = f"{kt}\\pi" if q.q == 1 else f"\\frac{{{kt}\\pi}}{{{q.q}}}"
    cands = [(f"\\frac{{{q.p}}}{{{q.q}}}\\pi", v, "coefficient first"), (f"\\pi \\cdot {frac_tex(q)}", v, "pi first"),
             (f"\\frac{{{2 * q.p}\\pi}}{{{2 * q.q}}}", v, "unreduced"), (f"{kt}\\pi/{q.q}", v, "slash"),
             (f"\\frac{{{kt}\\pi}}{{{q.q + 1}}}", Rational(q.p, q.q + 1) * PI, "denominator + 1"),
             (f"\\frac{{{q.p + 1}\\pi}}{{{q.q}}}", Rational(q.p + 1, q.q) * PI, "numerator + 1"),
             (frac_tex(q), q, "pi missing"), (f"\\frac{{{kt}\\pi^2}}{{{q.q}}}", q * PI ** 2, "pi squared"),
             (f"{float(v):.2f}", sympy.nsimplify(f"{float(v):.2f}"), "2 places"),
             (f"{float(v):.6f}", sympy.nsimplify(f"{float(v):.6f}"), "6 places (spec)"),
             (f"{q.p * 180 // q.q}^\\circ" if (q.p * 180) % q.q == 0 else f"{float(v):.4f}", None, "degrees")]
    out = []
    for t, w, nt in cands:
        if w is None:
            if t.endswith("^\\circ"):
                continue  # degrees vs radians: no agreed truth
            w = sympy.nsimplify(t)
            nt = "4 places"
        out.append(numeric_row(t, w, v, nt))
    return gold, out


def g_power(rng):
    c = rng.randrange(3)
    if c == 0:
        a, b = rng.randint(2, 9), rng.randint(2, 12)
        v = Rational(a) ** b
        gold = f"{a}^{{{b}}}"
        cands = [(str(v), v, "value"), (str(v + 1), v + 1, "value + 1"), (str(v - 1), v - 1, "value - 1"),
                 (f"{a}^{{{b + 1}}}", Rational(a) ** (b + 1), "exponent + 1"), (f"{b}^{{{a}}}", Rational(b) ** a, "swapped"),
                 (f"({a}^{{{b}}})", v, "parenthesised"), (f"{a * a}^{{{b // 2}}} \\cdot {a}^{{{b % 2}}}", v, "regrouped")]
    elif c == 1:
        a, b = rng.randint(2, 5), rng.randint(1, 4)
        v = Rational(1, a ** b)
        gold = f"{a}^{{-{b}}}"
        cands = [(frac_tex(v), v, "fraction"), (f"\\frac{{1}}{{{a}^{b}}}", v, "1 over power"), (f"-{a ** b}", Rational(-(a ** b)), "negated value"),
                 (str(a ** b), Rational(a ** b), "reciprocal"), (f"{a}^{{{b}}}", Rational(a ** b), "sign of exponent")]
        if terminates(v):
            cands.append((dec_tex(v), v, "decimal"))
    else:
        a, b, c2 = rng.randint(2, 7), rng.randint(2, 4), rng.randint(2, 3)
        gold = f"x^{{{b * c2}}}"
        cands = [(f"(x^{{{b}}})^{{{c2}}}", None, "power of power"), (f"x^{{{b}}} \\cdot x^{{{b * c2 - b}}}", None, "product"),
                 (f"x^{{{b + c2}}}", None, "exponents added"), (f"x^{{{b * c2 + 1}}}", None, "exponent + 1"),
                 (f"{a}x^{{{b * c2}}}", None, "coefficient")]
        exprs = {f"(x^{{{b}}})^{{{c2}}}": (X ** b) ** c2, f"x^{{{b}}} \\cdot x^{{{b * c2 - b}}}": X ** b * X ** (b * c2 - b),
                 f"x^{{{b + c2}}}": X ** (b + c2), f"x^{{{b * c2 + 1}}}": X ** (b * c2 + 1), f"{a}x^{{{b * c2}}}": a * X ** (b * c2)}
        gv = X ** (b * c2)
        return gold, labelled(cands, lambda t, _: fn_eq(gv, exprs[t]))
    return gold, labelled(cands, lambda t, w: num_eq(w, v))


def g_percent(rng):
    """Readings: a percentage p% is {p, p/100} (rlvr's documented rule, and math-verify 0.9.0's)."""
    if rng.random() < 0.7:
        v = Rational(rng.randint(1, 99)) if rng.random() < 0.7 else Rational(rng.randint(1, 999), 10)
        gold_is_pct = True
        gold = f"{dec_tex(v)}\\%"
    else:
        v = Rational(rng.randint(1, 99), 100)
        gold_is_pct = False
        gold = dec_tex(v)
    greads = {v, v / 100} if gold_is_pct else {v}
    pv = v if gold_is_pct else v * 100  # the percentage number of the gold
    cands = [(f"{dec_tex(pv)}\\%", True, pv, "same percentage"), (f"{dec_tex(pv)}\\,\\%", True, pv, "thin space"),
             (dec_tex(pv / 100), False, pv / 100, "fraction of one"), (dec_tex(pv), False, pv, "bare number"),
             (f"{dec_tex(pv + 1)}\\%", True, pv + 1, "+1 percent"), (f"{dec_tex(pv / 10)}\\%", True, pv / 10, "/10"),
             (dec_tex(pv / 1000), False, pv / 1000, "/1000"), (f"{dec_tex(pv * 10)}\\%", True, pv * 10, "x10"),
             (dec_tex(pv + 1), False, pv + 1, "bare + 1"), (f"{dec_tex(pv / 100)}\\%", True, pv / 100, "/100 percent"),
             (f"{dec_tex(pv * 100)}\\%", True, pv * 100, "x100 percent")]
    if terminates(pv / 100):
        cands.append((frac_tex(pv / 100), False, pv / 100, "fraction"))
    out = []
    for t, is_pct, w, n in cands:
        preads = {w, w / 100} if is_pct else {w}
        if is_pct and gold_is_pct:  # two percentages: their numbers must be equal
            exact = num_eq(w, v)
        else:
            exact = any(num_eq(a, b) for a in preads for b in greads)
        # exactly equal values are 'equal'; a match only through a percent reading is 'spec'
        same_value = (w / 100 if is_pct else w) == (v / 100 if gold_is_pct else v)
        kind = "equal" if exact and same_value else "spec" if exact else "miss"
        out.append((t, int(exact), kind, n))
    return gold, out


def g_poly(rng):
    r1, r2 = rng.randint(-6, 6), rng.randint(-6, 6)
    a = rng.choice([1, 1, 2, -1, 3])
    cubic = rng.random() < 0.3
    r3 = rng.randint(-4, 4)
    expr = a * (X - r1) * (X - r2) * ((X - r3) if cubic else 1)
    at = "" if a == 1 else "-" if a == -1 else str(a)
    factored = at + lin_tex(r1) + lin_tex(r2) + (lin_tex(r3) if cubic else "")
    expanded = poly_tex(expr)
    gold_factored = rng.random() < 0.4
    gold = factored if gold_factored else expanded
    cands = [(expanded if gold_factored else factored, expr, "other form"),
             (poly_tex(expr, ascending=True), expr, "ascending order")]
    p = sympy.Poly(sympy.expand(expr), X)
    coeffs = [int(c) for c in p.all_coeffs()]
    deg = len(coeffs) - 1
    # near misses
    e2 = sympy.expand(expr) + 1
    cands.append((poly_tex(e2), e2, "constant + 1"))
    e3 = sympy.expand(expr) - 2 * X
    cands.append((poly_tex(e3), e3, "linear coefficient - 2"))
    e4 = a * (X + r1) * (X - r2) * ((X - r3) if cubic else 1)
    cands.append((poly_tex(e4), e4, "root sign flipped"))
    e5 = sympy.expand(expr) - coeffs[0] * X ** deg + coeffs[0] * X ** (deg + 1)
    cands.append((poly_tex(e5), e5, f"x^{deg + 1} for x^{deg}"))
    cands.append((poly_tex(expr, var=Y), expr.subs(X, Y), "variable renamed to y"))
    if a != 1:
        cands.append((poly_tex(expr / a), expr / a, "leading coefficient dropped"))
    return gold, labelled(cands, lambda t, e: sympy.expand(e - expr) == 0)


def g_rational(rng):
    c = rng.randrange(3)
    a, b = rng.randint(-5, 5), rng.randint(1, 6)
    if c == 0:
        # (x + a)/(x - b) = 1 + (a + b)/(x - b)
        g = (X + a) / (X - b)
        gold = f"\\frac{{{poly_tex(X + a)}}}{{{poly_tex(X - b)}}}"
        cands = [(f"1 + \\frac{{{a + b}}}{{{poly_tex(X - b)}}}", 1 + Rational(a + b) / (X - b), "divided out"),
                 (f"1 + \\frac{{{a + b}}}{{{poly_tex(X + b)}}}", 1 + Rational(a + b) / (X + b), "wrong pole"),
                 (f"\\frac{{{poly_tex(X - a)}}}{{{poly_tex(X - b)}}}", (X - a) / (X - b), "numerator sign"),
                 (f"\\frac{{{poly_tex((X + a) * (X + 1))}}}{{{poly_tex((X - b) * (X + 1))}}}", (X + a) * (X + 1) / ((X - b) * (X + 1)), "common factor"),
                 (f"\\frac{{{poly_tex(X - b)}}}{{{poly_tex(X + a)}}}", (X - b) / (X + a), "reciprocal")]
    elif c == 1:
        # 1/(x(x+b)) = (1/b)(1/x - 1/(x+b))
        g = 1 / (X * (X + b))
        gold = f"\\frac{{1}}{{x(x + {b})}}"
        bt = "" if b == 1 else f"\\frac{{1}}{{{b}}}"
        cands = [(f"{bt}\\left(\\frac{{1}}{{x}} - \\frac{{1}}{{x + {b}}}\\right)", (1 / X - 1 / (X + b)) / b, "partial fractions"),
                 (f"{bt}\\left(\\frac{{1}}{{x}} + \\frac{{1}}{{x + {b}}}\\right)", (1 / X + 1 / (X + b)) / b, "partial fractions, sign"),
                 (f"\\frac{{1}}{{{poly_tex(X * (X + b))}}}", 1 / (X * (X + b)), "expanded denominator"),
                 (f"\\frac{{1}}{{x^2 + {b}}}", 1 / (X ** 2 + b), "dropped x"),
                 (f"\\frac{{1}}{{x(x - {b})}}", 1 / (X * (X - b)), "denominator sign")]
    else:
        # (x^2 - b^2)/(x - b) = x + b
        g = X + b
        gold = poly_tex(X + b)
        cands = [(f"\\frac{{{poly_tex(X ** 2 - b * b)}}}{{{poly_tex(X - b)}}}", (X ** 2 - b * b) / (X - b), "unsimplified"),
                 (f"\\frac{{{poly_tex(X ** 2 + b * b)}}}{{{poly_tex(X - b)}}}", (X ** 2 + b * b) / (X - b), "sum of squares"),
                 (f"\\frac{{{poly_tex(X ** 2 - b * b)}}}{{{poly_tex(X + b)}}}", (X ** 2 - b * b) / (X + b), "other factor"),
                 (poly_tex(X - b), X - b, "sign")]
    return gold, labelled(cands, lambda t, e: sympy.cancel(sympy.together(e - g)) == 0)


def g_equation(rng):
    """Single assignments x = v."""
    c = rng.randrange(3)
    if c == 0:
        v = Rational(rng.randint(-20, 20))
    elif c == 1:
        v = Rational(rng.randint(-20, 20) or 1, rng.randint(2, 9))
        while v.q == 1:
            v = Rational(rng.randint(-20, 20) or 1, rng.randint(2, 9))
    else:
        v = rng.randint(1, 4) * sqrt(rng.choice(SQUAREFREE))
    vt = frac_tex(v) if v.is_Rational else sympy.latex(v)
    gold = f"x = {vt}"
    cands = [(vt, v, "value only"), (f"x={vt}", v, "no spaces"), (f"{vt} = x", v, "sides swapped"),
             (f"x = {vt}" if not v.is_Rational or v.q == 1 else f"x = {frac_tex(v, 'slash')}", v, "rewritten")]
    if v.is_Rational and terminates(v):
        cands.append((f"x = {dec_tex(v)}", v, "decimal"))
    cands += [(f"x = {frac_tex(v + 1) if v.is_Rational else sympy.latex(v + 1)}", v + 1, "+1"),
              (f"x = {frac_tex(-v) if v.is_Rational else sympy.latex(-v)}", -v, "sign")]
    if v != 0:
        cands.append((f"x = {frac_tex(1 / v) if v.is_Rational else sympy.latex(1 / v)}", 1 / v, "reciprocal"))
    cands.append((f"x = {vt}, x = {frac_tex(v + 2) if v.is_Rational else sympy.latex(v + 2)}", None, "extra root"))
    out = []
    for t, w, n in cands:
        if w is None:
            out.append((t, 0, "miss", n))
            continue
        eq = num_eq(w, v)
        out.append((t, int(eq), "equal" if eq else "miss", n))
    return gold, out


def g_line(rng):
    m = rng.choice([rng.randint(-5, 5), Rational(rng.randint(-5, 5) or 1, rng.randint(2, 4))])
    m = Rational(m)
    b = rng.randint(-9, 9)
    while m == 0:
        m = Rational(rng.randint(-5, 5))

    def lt(m, b, var="x", first="y"):
        mt = "" if m == 1 else "-" if m == -1 else frac_tex(m)
        s = f"{first} = {mt}{var}"
        if b:
            s += f" + {b}" if b > 0 else f" - {-b}"
        return s
    gold = lt(m, b)
    g = Y - m * X - b
    k = rng.choice([2, 3, -2])
    cands = []
    bt = "" if b == 0 else f"{b} + "
    mt = "" if m == 1 else "-" if m == -1 else frac_tex(m)
    cands.append((f"y = {bt}{mt}x" if b else gold, g, "terms swapped"))
    # scaled: k*y = k*m*x + k*b
    km, kb = k * m, k * b
    rhs = f"{frac_tex(km)}x" + (f" + {kb}" if kb > 0 else f" - {-kb}" if kb < 0 else "")
    cands.append((f"{k}y = {rhs}", k * Y - km * X - kb, "scaled"))
    # general form: m x - y + b = 0 with integer coefficients
    d = m.q
    A, B, C = m.p, -d, b * d  # A x + B y + C = 0
    gen = f"{A}x {'-' if B < 0 else '+'} {abs(B) if abs(B) != 1 else ''}y" + (f" + {C}" if C > 0 else f" - {-C}" if C < 0 else "") + " = 0"
    cands.append((gen, A * X + B * Y + C, "general form"))
    cands.append((f"y - {b} = {mt}x" if b > 0 else f"y + {-b} = {mt}x" if b < 0 else f"y = {mt}x", Y - b - m * X, "moved constant"))
    # misses
    if b:
        cands.append((lt(m, -b), Y - m * X + b, "intercept sign"))
    cands.append((lt(-m, b), Y + m * X - b, "slope sign"))
    cands.append((lt(m, b + 1), Y - m * X - b - 1, "intercept + 1"))
    if m.q == 1 and m != b and b != 0:
        cands.append((lt(Rational(b), int(m)), Y - b * X - m, "slope and intercept swapped"))
    cands.append((lt(m, b, var="y", first="x"), X - m * Y - b, "x and y swapped"))
    return gold, labelled(cands, lambda t, e: lin_eq_same(g, e))


def interval_tex(a, b, lo, ro, style=""):
    at = "-\\infty" if a == -sympy.oo else frac_tex(a)
    bt = "\\infty" if b == sympy.oo else frac_tex(b)
    lb, rb = ("(" if lo else "["), (")" if ro else "]")
    if style == "left":
        return f"\\left{lb} {at}, {bt} \\right{rb}"
    return f"{lb}{at}, {bt}{rb}"


def interval_set(a, b, lo, ro):
    return sympy.Interval(a, b, lo, ro)


REL = {"<": (sympy.Lt, "<"), ">": (sympy.Gt, ">"), "le": (sympy.Le, "\\le"), "ge": (sympy.Ge, "\\ge")}
FLIP = {"<": ">", ">": "<", "le": "ge", "ge": "le"}


def solve_set(rel):
    return sympy.solveset(rel, X, domain=S.Reals)


def g_inequality(rng):
    op = rng.choice(list(REL))
    a = Rational(rng.randint(-60, 60)) if rng.random() < 0.8 else Rational(rng.randint(-60, 60) or 1, rng.randint(2, 5))
    f, sym = REL[op]
    gold = f"x {sym} {frac_tex(a)}"
    gs = solve_set(f(X, a))
    cands = []
    fs, ss = REL[FLIP[op]]
    cands.append((f"{frac_tex(a)} {ss} x", fs(a, X), "flipped"))
    cands.append((f"2x {sym} {frac_tex(2 * a)}", f(2 * X, 2 * a), "scaled by 2"))
    cands.append((f"-x {ss} {frac_tex(-a)}", fs(-X, -a), "scaled by -1"))
    cands.append((f"x - {frac_tex(a)} {sym} 0" if a > 0 else f"x + {frac_tex(-a)} {sym} 0" if a < 0 else f"x {sym} 0",
                  f(X - a, 0), "moved"))
    lo = op in ("<", ">")
    iv = interval_tex(-sympy.oo, a, True, lo) if op in ("<", "le") else interval_tex(a, sympy.oo, lo, True)
    ivs = interval_set(-sympy.oo, a, True, lo) if op in ("<", "le") else interval_set(a, sympy.oo, lo, True)
    cands.append((iv, ivs, "interval"))
    cands.append((f"x \\in {iv}", ivs, "membership"))
    # misses
    strict_toggle = {"<": "le", "le": "<", ">": "ge", "ge": ">"}[op]
    f2, s2 = REL[strict_toggle]
    cands.append((f"x {s2} {frac_tex(a)}", f2(X, a), "strictness"))
    cands.append((f"x {ss} {frac_tex(a)}", fs(X, a), "direction"))
    cands.append((f"x {sym} {frac_tex(a + 1)}", f(X, a + 1), "bound + 1"))
    if a != 0:
        cands.append((f"x {sym} {frac_tex(-a)}", f(X, -a), "bound sign"))
    cands.append((f"-x {sym} {frac_tex(-a)}", f(-X, -a), "negated without flipping"))
    iv2 = interval_tex(-sympy.oo, a, True, not lo) if op in ("<", "le") else interval_tex(a, sympy.oo, not lo, True)
    ivs2 = interval_set(-sympy.oo, a, True, not lo) if op in ("<", "le") else interval_set(a, sympy.oo, not lo, True)
    cands.append((iv2, ivs2, "interval bracket"))
    out = []
    for t, e, n in cands:
        ps = e if isinstance(e, sympy.Set) else solve_set(e)
        eq = real_set_eq(gs, ps)
        out.append((t, int(eq), "equal" if eq else "miss", n))
    return gold, out


def g_chain(rng):
    a = rng.randint(-10, 5)
    b = a + rng.randint(1, 12)
    lo, ro = rng.choice([(False, False), (True, False), (False, True), (True, True)])
    ls, rs = ("<" if lo else "\\le"), ("<" if ro else "\\le")
    gold = f"{a} {ls} x {rs} {b}"
    gs = sympy.Interval(a, b, lo, ro)
    gts, lts = (">" if ro else "\\ge"), (">" if lo else "\\ge")
    rs_t = "\\le" if ro else "<"
    cands = [(f"{b} {gts} x {lts} {a}", gs, "reversed chain"), (interval_tex(a, b, lo, ro), gs, "interval"),
             (f"x \\in {interval_tex(a, b, lo, ro, 'left')}", gs, "membership"),
             (interval_tex(a, b, not lo, ro), sympy.Interval(a, b, not lo, ro), "left bracket"),
             (interval_tex(a, b, lo, not ro), sympy.Interval(a, b, lo, not ro), "right bracket"),
             (interval_tex(a - 1, b, lo, ro), sympy.Interval(a - 1, b, lo, ro), "left end - 1"),
             (interval_tex(a, b + 1, lo, ro), sympy.Interval(a, b + 1, lo, ro), "right end + 1"),
             (f"{a} {ls} x {rs_t} {b}", sympy.Interval(a, b, lo, not ro), "chain strictness"),
             (f"{-b} {ls} x {rs} {-a}", sympy.Interval(-b, -a, lo, ro), "negated ends")]
    if lo == ro:
        cands.append((f"{2 * a} {ls} 2x {rs} {2 * b}", gs, "scaled chain"))
    return gold, labelled(cands, lambda t, e: real_set_eq(gs, e))


def g_abs_chain(rng):
    c = rng.randrange(2)
    if c == 0:
        a = rng.randint(1, 4)
        b = a + rng.randint(1, 4)
        lo, ro = rng.choice([(False, False), (True, False), (False, True)])
        ls, rs = ("<" if lo else "\\le"), ("<" if ro else "\\le")
        gold = f"{a} {ls} |z| {rs} {b}"
        ls_t = "\\le" if lo else "<"
        gs = sympy.Union(sympy.Interval(-b, -a, ro, lo), sympy.Interval(a, b, lo, ro))

        def two(l_open, r_open, a=a, b=b):
            return interval_tex(-b, -a, r_open, l_open) + " \\cup " + interval_tex(a, b, l_open, r_open)
        cands = [(two(lo, ro), gs, "union"),
                 (interval_tex(a, b, lo, ro) + " \\cup " + interval_tex(-b, -a, ro, lo), gs, "union reordered"),
                 (interval_tex(a, b, lo, ro), sympy.Interval(a, b, lo, ro), "positive half only"),
                 (interval_tex(-b, b, ro, ro), sympy.Interval(-b, b, ro, ro), "filled in"),
                 (two(not lo, ro), sympy.Union(sympy.Interval(-b, -a, ro, not lo), sympy.Interval(a, b, not lo, ro)), "inner brackets"),
                 (interval_tex(-b, -a, ro, lo) + " \\cup " + interval_tex(a, b, not lo, ro),
                  sympy.Union(sympy.Interval(-b, -a, ro, lo), sympy.Interval(a, b, not lo, ro)), "one bracket"),
                 (f"{a} {ls_t} |z| {rs} {b}", None, "strictness"),
                 (f"|z| {rs} {b}", sympy.Interval(-b, b, ro, ro), "lower bound dropped"),
                 (f"{a} {ls} |z| {rs} {b + 1}", sympy.Union(sympy.Interval(-b - 1, -a, ro, lo), sympy.Interval(a, b + 1, lo, ro)), "bound + 1")]
        out = []
        for t, e, n in cands:
            if e is None:
                e = sympy.Union(sympy.Interval(-b, -a, ro, not lo), sympy.Interval(a, b, not lo, ro))
            eq = real_set_eq(gs, e)
            out.append((t, int(eq), "equal" if eq else "miss", n))
        return gold, out
    cc, r = rng.randint(-5, 5), rng.randint(1, 5)
    strict = rng.random() < 0.5
    sym = "<" if strict else "\\le"
    inner = "x" if cc == 0 else f"x - {cc}" if cc > 0 else f"x + {-cc}"
    gold = f"|{inner}| {sym} {r}"
    gs = sympy.Interval(cc - r, cc + r, strict, strict)
    cands = [(interval_tex(cc - r, cc + r, strict, strict), gs, "interval"),
             (f"{cc - r} {sym} x {sym} {cc + r}", gs, "chain"),
             (interval_tex(cc - r, cc + r, not strict, not strict), sympy.Interval(cc - r, cc + r, not strict, not strict), "brackets"),
             (interval_tex(cc - r, cc + r, strict, not strict), sympy.Interval(cc - r, cc + r, strict, not strict), "one bracket"),
             (interval_tex(-cc - r, -cc + r, strict, strict), sympy.Interval(-cc - r, -cc + r, strict, strict), "centre sign"),
             (interval_tex(cc - r - 1, cc + r, strict, strict), sympy.Interval(cc - r - 1, cc + r, strict, strict), "left end - 1"),
             (f"x {sym} {cc + r}", sympy.Interval(-sympy.oo, cc + r, True, strict), "one side only")]
    return gold, labelled(cands, lambda t, e: real_set_eq(gs, e))


def g_interval(rng):
    c = rng.randrange(2)
    if c == 0:
        a = Rational(rng.randint(-10, 6))
        b = a + rng.randint(1, 9)
        if rng.random() < 0.3:
            a = a + Rational(1, 2)
        lo, ro = rng.random() < 0.5, rng.random() < 0.5
        gold = interval_tex(a, b, lo, ro)
        gs = sympy.Interval(a, b, lo, ro)
        cands = [(interval_tex(a, b, lo, ro, "left"), gs, "\\left \\right")]
        if not a.is_integer and terminates(a):
            cands.append((("(" if lo else "[") + dec_tex(a) + ", " + frac_tex(b) + (")" if ro else "]"), gs, "decimal end"))
        cands.append(((f"({frac_tex(a)}, {frac_tex(b)}]" if lo else f"[{frac_tex(a)}, {frac_tex(b)}]") if ro else (f"({frac_tex(a)}, {frac_tex(b)})" if lo else f"[{frac_tex(a)}, {frac_tex(b)})"),
                      sympy.Interval(a, b, lo, not ro), "right bracket"))
        cands.append((interval_tex(a, b, not lo, ro), sympy.Interval(a, b, not lo, ro), "left bracket"))
        cands.append((interval_tex(a, b + 1, lo, ro), sympy.Interval(a, b + 1, lo, ro), "right end + 1"))
        cands.append((interval_tex(-b, -a, ro, lo), sympy.Interval(-b, -a, ro, lo), "negated"))
        cands.append((interval_tex(a, sympy.oo, lo, True), sympy.Interval(a, sympy.oo, lo, True), "unbounded"))
        if rng.random() < 0.3 and b - a >= 2:
            m = a + 1
            cands.append((interval_tex(a, m, lo, False) + " \\cup " + interval_tex(m, b, False, ro), gs, "split in two (same set)"))
    else:
        a = rng.randint(-8, 3)
        b = a + rng.randint(1, 8)
        lo, ro = rng.random() < 0.5, rng.random() < 0.5
        gold = f"(-\\infty, {a}{')' if lo else ']'} \\cup {'(' if ro else '['}{b}, \\infty)"
        gs = sympy.Union(sympy.Interval(-sympy.oo, a, True, lo), sympy.Interval(b, sympy.oo, ro, True))

        def u(a, b, lo, ro):
            return (f"(-\\infty, {a}{')' if lo else ']'} \\cup {'(' if ro else '['}{b}, \\infty)",
                    sympy.Union(sympy.Interval(-sympy.oo, a, True, lo), sympy.Interval(b, sympy.oo, ro, True)))
        cands = [(f"{'(' if ro else '['}{b}, \\infty) \\cup (-\\infty, {a}{')' if lo else ']'}", gs, "reordered union"),
                 (f"\\left(-\\infty, {a}\\right{')' if lo else ']'} \\cup \\left{'(' if ro else '['}{b}, \\infty\\right)", gs, "\\left \\right")]
        for (aa, bb, l2, r2, n) in [(a, b, not lo, ro, "first bracket"), (a, b, lo, not ro, "second bracket"),
                                    (a - 1, b, lo, ro, "first end - 1"), (a, b + 1, lo, ro, "second end + 1"),
                                    (b, a, lo, ro, "ends swapped")]:
            t, e = u(aa, bb, l2, r2)
            cands.append((t, e, n))
        cands.append((f"(-\\infty, {a}{')' if lo else ']'}", sympy.Interval(-sympy.oo, a, True, lo), "second piece missing"))
        cands.append((f"({a}, {b})", sympy.Interval(a, b, True, True), "complement"))
    return gold, labelled(cands, lambda t, e: real_set_eq(gs, e))


def rand_vals(rng, k, fracs=True):
    # A list, not a set: a set's order follows hashing, which would make the corpus differ
    # from run to run.
    out = []
    while len(out) < k:
        if fracs and rng.random() < 0.25:
            v = Rational(rng.randint(-9, 9) or 1, rng.randint(2, 5))
        else:
            v = Rational(rng.randint(-15, 25))
        if v not in out:
            out.append(v)
    rng.shuffle(out)
    return out


def g_set(rng):
    k = rng.randint(2, 5)
    vals = rand_vals(rng, k)
    gold = "\\{" + ", ".join(frac_tex(v) for v in vals) + "\\}"
    perm = vals[:]
    while len(perm) > 1 and perm == vals:
        rng.shuffle(perm)

    def st(vs, bare=False, styles=None):
        body = ", ".join(frac_tex(v, (styles or {}).get(v, "frac")) for v in vs)
        return body if bare else "\\{" + body + "\\}"
    cands = [(st(perm), perm, "reordered"), (st(perm, bare=True), perm, "bare list"),
             (st(vals + [vals[0]]), vals + [vals[0]], "duplicate"),
             ("\\left\\{" + ", ".join(frac_tex(v, "slash") for v in perm) + "\\right\\}", perm, "slash fractions")]
    cands.append((st(perm[:-1]), perm[:-1], "one element missing"))
    extra = max(vals) + 1
    cands.append((st(perm + [extra]), perm + [extra], "extra element"))
    ch = perm[:]
    ch[0] = ch[0] + 1
    cands.append((st(ch), ch, "element changed"))
    ng = perm[:]
    ng[-1] = -ng[-1]
    cands.append((st(ng), ng, "sign of one element"))
    return gold, labelled(cands, lambda t, e: set_eq(vals, e))


def g_tuple(rng):
    k = rng.randint(2, 4)
    vals = rand_vals(rng, k)
    gold = "(" + ", ".join(frac_tex(v) for v in vals) + ")"

    def tt(vs, style="frac", left=False):
        body = ", ".join(frac_tex(v, style) for v in vs)
        return f"\\left( {body} \\right)" if left else f"({body})"
    sw = vals[:]
    sw[0], sw[1] = sw[1], sw[0]
    ch = vals[:]
    ch[-1] = ch[-1] - 1
    ng = vals[:]
    ng[0] = -ng[0]
    cands = [(tt(vals, left=True), vals, "\\left \\right"), (tt(vals, "slash"), vals, "slash fractions"),
             (tt(sw), sw, "first two swapped"), (tt(ch), ch, "last - 1"), (tt(ng), ng, "first sign"),
             (tt(vals[:-1]), vals[:-1], "last missing"), (tt(vals + [Rational(0)]), vals + [Rational(0)], "extra 0"),
             (tt(vals[::-1]), vals[::-1], "reversed")]
    if k == 2:
        cands.append((f"(x, y) = {tt(vals)}", vals, "named"))
        cands.append((f"(x, y) = {tt(sw)}", sw, "named, swapped"))
    return gold, labelled(cands, lambda t, e: tuple_eq(vals, e))


def g_pm(rng):
    c = rng.randrange(3)
    if c == 2:
        k = rng.randint(1, 9)
        gold = f"\\pm {k}"
        vals = [Rational(k), Rational(-k)]
        cands = [(f"{k}, -{k}", vals, "listed"), (f"-{k}, {k}", vals, "listed reversed"), (f"\\{{{k}, -{k}\\}}", vals, "set"),
                 (f"x = \\pm {k}", vals, "assignment"), (str(k), [Rational(k)], "positive only"), (f"-{k}", [Rational(-k)], "negative only"),
                 (f"\\pm {k + 1}", [Rational(k + 1), Rational(-k - 1)], "+1")]
    else:
        a = rng.randint(-6, 6) or 2
        m = rng.choice(SQUAREFREE)
        kk = rng.randint(1, 3)
        r = kk * sqrt(m)
        rt = ("" if kk == 1 else str(kk)) + f"\\sqrt{{{m}}}"
        vals = [a + r, a - r]
        if c == 0:
            gold = f"{a} \\pm {rt}"

            def show(v):
                return v
        else:
            d = rng.randint(2, 4)
            gold = f"\\frac{{{a} \\pm {rt}}}{{{d}}}"
            vals = [v / d for v in vals]

            def show(v, d=d):
                return f"\\frac{{{v}}}{{{d}}}"
        div = 1 if c == 0 else d
        cands = [(f"{show(f'{a} + {rt}')}, {show(f'{a} - {rt}')}", vals, "listed"),
                 (f"{show(f'{a} - {rt}')}, {show(f'{a} + {rt}')}", vals, "listed reversed"),
                 (f"x = {gold}", vals, "assignment"),
                 (f"\\left\\{{{show(f'{a} + {rt}')}, {show(f'{a} - {rt}')}\\right\\}}", vals, "set"),
                 (show(f"{a} + {rt}"), [vals[0]], "plus only"),
                 (show(f"{a} - {rt}"), [vals[1]], "minus only"),
                 (show(f"{a} \\pm {('' if kk == 1 else str(kk))}\\sqrt{{{m + 1}}}"), [(a + kk * sqrt(m + 1)) / div, (a - kk * sqrt(m + 1)) / div], "radicand + 1"),
                 (show(f"{-a} \\pm {rt}"), [(-a + r) / div, (-a - r) / div], "centre sign"),
                 (show(f"{rt} \\pm {a}"), [(r + a) / div, (r - a) / div], "swapped around \\pm"),
                 (show(f"{a} \\pm {2 * kk}\\sqrt{{{m}}}"), [(a + 2 * r) / div, (a - 2 * r) / div], "root doubled")]
    return gold, labelled(cands, lambda t, e: set_eq(vals, e))


def mat_tex(M, env="pmatrix", style="frac"):
    rows = [" & ".join(frac_tex(M[i, j], style) for j in range(M.cols)) for i in range(M.rows)]
    return f"\\begin{{{env}}} " + " \\\\ ".join(rows) + f" \\end{{{env}}}"


def g_matrix(rng):
    r, c = rng.choice([(2, 2), (2, 2), (3, 3), (2, 3), (2, 1), (3, 1)])
    M = sympy.Matrix(r, c, lambda i, j: Rational(rng.randint(-9, 9)) if rng.random() < 0.85 else Rational(rng.randint(-9, 9), 2))
    gold = mat_tex(M)
    ch = M.copy()
    i, j = rng.randrange(r), rng.randrange(c)
    ch[i, j] = ch[i, j] + rng.choice([1, -1, 2])
    ng = M.copy()
    i2, j2 = rng.randrange(r), rng.randrange(c)
    ng[i2, j2] = -ng[i2, j2]
    cands = [(mat_tex(M, "bmatrix"), M, "bmatrix"), (mat_tex(M, style="slash"), M, "slash fractions"),
             (mat_tex(ch), ch, "one entry changed"), (mat_tex(ng), ng, "one entry negated"),
             (mat_tex(M.T), M.T, "transposed"), (mat_tex(2 * M), 2 * M, "doubled")]
    if r > 1:
        sw = M.copy()
        sw.row_swap(0, 1)
        cands.append((mat_tex(sw), sw, "rows swapped"))
        cands.append((mat_tex(M[:r - 1, :]), M[:r - 1, :], "last row missing"))
    if M.rows == M.cols == 2 and all(v.is_integer for v in M):
        # 2 * (M/2) written as a scalar times a matrix of halves
        cands.append((f"2 {mat_tex(M / 2)}", M, "scalar times matrix"))
    return gold, labelled(cands, lambda t, e: e.shape == M.shape and all(num_eq(a, b) for a, b in zip(e, M)))


def to_base(n, b):
    digits = ""
    while n:
        digits = str(n % b) + digits
        n //= b
    return digits or "0"


def g_base(rng):
    b = rng.randint(2, 9)
    n = rng.randint(b + 1, 600)
    d = to_base(n, b)
    gold = f"{d}_{b}" if rng.random() < 0.6 else f"{d}_{{{b}}}"
    cands = [(f"{d}_{{{b}}}", n, "braced base", "equal"), (str(n), n, "decimal value (spec)", "spec")]
    # one digit changed, still a valid numeral
    pos = rng.randrange(len(d))
    if pos == 0 and b == 2:
        pos = 1  # a binary numeral's leading 1 has no other nonzero digit
    nd = next(x for x in list(range(int(d[pos]) + 1, b)) + list(range(b)) if x != int(d[pos]) and (pos or x))
    d2 = d[:pos] + str(nd) + d[pos + 1:]
    cands.append((f"{d2}_{b}", int(d2, b), "digit changed", "miss"))
    if b < 9:
        cands.append((f"{d}_{b + 1}", int(d, b + 1), "other base", "miss"))
    cands.append((str(n + 1), n + 1, "decimal value + 1", "miss"))
    if d != str(n):
        cands.append((d, int(d), "base dropped (read as decimal)", "miss"))
    out = []
    for t, v, note, kind in cands:
        eq = v == n
        out.append((t, int(eq), kind if eq else "miss", note))
    return gold, out


NAMES = ["Evelyn", "Bob", "Alice", "Charlie", "Diana", "Eve", "Evelina", "Marcus", "Sophia", "Tom", "Tomas", "Yolanda"]
WORDS = ["Tuesday", "Wednesday", "north", "south", "even", "odd", "triangle", "square", "yes", "no"]


def g_text(rng):
    c = rng.randrange(2)
    if c == 0:
        w = rng.choice(NAMES + WORDS)
        gold = f"\\text{{{w}}}"
        other = rng.choice([v for v in NAMES + WORDS if v != w])
        typo = w[:-1] + ("a" if w[-1] != "a" else "e")
        cands = [(f"\\text{{{w}}}", w, "same"), (f"\\text{{ {w} }}", w, "spaces"), (f"\\mathrm{{{w}}}", w, "mathrm"),
                 (f"\\textbf{{{w}}}", w, "textbf"), (f"\\text{{{other}}}", other, "other word"),
                 (f"\\text{{{typo}}}", typo, "typo"), (f"\\text{{{w[:3]}}}", w[:3], "prefix")]
        return gold, labelled(cands, lambda t, v: v == w)
    letter = rng.choice("ABCDE")
    gold = f"\\text{{({letter})}}"
    others = [ch for ch in "ABCDE" if ch != letter]
    o = rng.choice(others)
    cands = [(f"\\text{{({letter})}}", letter, "same"), (f"({letter})", letter, "no \\text"), (f"\\textbf{{({letter})}}", letter, "textbf"),
             (letter, letter, "bare letter"), (f"\\text{{({o})}}", o, "other choice"), (f"({o})", o, "other choice, bare"),
             (o, o, "other letter"), (f"\\text{{({o}) and ({letter})}}", "both", "two choices")]
    return gold, labelled(cands, lambda t, v: v == letter)


TRIG = [
    ("\\sin 2x", sympy.sin(2 * X), [("2\\sin x \\cos x", 2 * sympy.sin(X) * sympy.cos(X)), ("2 \\cos x \\sin x", 2 * sympy.cos(X) * sympy.sin(X)),
                                     ("2\\sin x", 2 * sympy.sin(X)), ("\\sin x \\cos x", sympy.sin(X) * sympy.cos(X)), ("2\\sin^2 x", 2 * sympy.sin(X) ** 2)]),
    ("\\cos 2x", sympy.cos(2 * X), [("\\cos^2 x - \\sin^2 x", sympy.cos(X) ** 2 - sympy.sin(X) ** 2), ("1 - 2\\sin^2 x", 1 - 2 * sympy.sin(X) ** 2),
                                     ("2\\cos^2 x - 1", 2 * sympy.cos(X) ** 2 - 1), ("1 - \\sin^2 x", 1 - sympy.sin(X) ** 2),
                                     ("2\\sin^2 x - 1", 2 * sympy.sin(X) ** 2 - 1), ("\\sin^2 x - \\cos^2 x", sympy.sin(X) ** 2 - sympy.cos(X) ** 2)]),
    ("\\tan x", sympy.tan(X), [("\\frac{\\sin x}{\\cos x}", sympy.sin(X) / sympy.cos(X)), ("\\frac{\\cos x}{\\sin x}", sympy.cos(X) / sympy.sin(X)),
                               ("\\frac{1}{\\cot x}", 1 / sympy.cot(X)), ("\\cot x", sympy.cot(X))]),
    ("1", S(1), [("\\sin^2 x + \\cos^2 x", sympy.sin(X) ** 2 + sympy.cos(X) ** 2), ("\\sec^2 x - \\tan^2 x", sympy.sec(X) ** 2 - sympy.tan(X) ** 2),
                 ("\\sin^2 x - \\cos^2 x", sympy.sin(X) ** 2 - sympy.cos(X) ** 2), ("\\sec^2 x + \\tan^2 x", sympy.sec(X) ** 2 + sympy.tan(X) ** 2)]),
    ("\\sec^2 x", sympy.sec(X) ** 2, [("1 + \\tan^2 x", 1 + sympy.tan(X) ** 2), ("\\frac{1}{\\cos^2 x}", 1 / sympy.cos(X) ** 2),
                                      ("1 - \\tan^2 x", 1 - sympy.tan(X) ** 2), ("\\frac{1}{\\sin^2 x}", 1 / sympy.sin(X) ** 2)]),
    ("\\sin x", sympy.sin(X), [("\\cos\\left(\\frac{\\pi}{2} - x\\right)", sympy.cos(PI / 2 - X)), ("\\cos\\left(x - \\frac{\\pi}{2}\\right)", sympy.cos(X - PI / 2)),
                               ("\\cos\\left(\\frac{\\pi}{2} + x\\right)", sympy.cos(PI / 2 + X)), ("\\sin(\\pi - x)", sympy.sin(PI - X)),
                               ("\\sin(\\pi + x)", sympy.sin(PI + X)), ("\\sin(-x)", sympy.sin(-X))]),
    ("\\sin^2 x", sympy.sin(X) ** 2, [("\\frac{1 - \\cos 2x}{2}", (1 - sympy.cos(2 * X)) / 2), ("\\frac{1 + \\cos 2x}{2}", (1 + sympy.cos(2 * X)) / 2),
                                      ("1 - \\cos^2 x", 1 - sympy.cos(X) ** 2), ("\\sin x^2", sympy.sin(X ** 2)), ("\\cos^2 x", sympy.cos(X) ** 2)]),
    ("\\cos x", sympy.cos(X), [("\\sin\\left(x + \\frac{\\pi}{2}\\right)", sympy.sin(X + PI / 2)), ("\\sin\\left(x - \\frac{\\pi}{2}\\right)", sympy.sin(X - PI / 2)),
                               ("\\cos(-x)", sympy.cos(-X)), ("-\\cos(\\pi - x)", -sympy.cos(PI - X)), ("\\cos(\\pi - x)", sympy.cos(PI - X))]),
    ("\\tan 2x", sympy.tan(2 * X), [("\\frac{2\\tan x}{1 - \\tan^2 x}", 2 * sympy.tan(X) / (1 - sympy.tan(X) ** 2)),
                                     ("\\frac{2\\tan x}{1 + \\tan^2 x}", 2 * sympy.tan(X) / (1 + sympy.tan(X) ** 2)), ("2\\tan x", 2 * sympy.tan(X))]),
]

TRIG_VALUES = [
    ("\\frac{\\sqrt{3}}{2}", sqrt(3) / 2, [("\\sin\\frac{\\pi}{3}", sympy.sin(PI / 3)), ("\\cos\\frac{\\pi}{6}", sympy.cos(PI / 6)), ("\\sin\\frac{\\pi}{6}", sympy.sin(PI / 6)),
                                           ("\\cos\\frac{\\pi}{3}", sympy.cos(PI / 3)), ("\\frac{\\sqrt{2}}{2}", sqrt(2) / 2), ("\\tan\\frac{\\pi}{3}", sympy.tan(PI / 3))]),
    ("\\frac{1}{2}", Rational(1, 2), [("\\sin\\frac{\\pi}{6}", sympy.sin(PI / 6)), ("\\cos\\frac{\\pi}{3}", sympy.cos(PI / 3)), ("\\cos\\frac{\\pi}{6}", sympy.cos(PI / 6)),
                                      ("\\sin\\frac{\\pi}{3}", sympy.sin(PI / 3))]),
    ("\\frac{\\sqrt{2}}{2}", sqrt(2) / 2, [("\\frac{1}{\\sqrt{2}}", 1 / sqrt(2)), ("\\sin\\frac{\\pi}{4}", sympy.sin(PI / 4)), ("\\sqrt{2}", sqrt(2)),
                                           ("\\frac{\\sqrt{3}}{3}", sqrt(3) / 3), ("\\tan\\frac{\\pi}{4}", sympy.tan(PI / 4))]),
    ("\\sqrt{3}", sqrt(3), [("\\tan\\frac{\\pi}{3}", sympy.tan(PI / 3)), ("\\frac{3}{\\sqrt{3}}", 3 / sqrt(3)), ("\\tan\\frac{\\pi}{6}", sympy.tan(PI / 6)),
                            ("\\cot\\frac{\\pi}{3}", sympy.cot(PI / 3)), ("\\frac{1}{\\sqrt{3}}", 1 / sqrt(3))]),
    ("-1", S(-1), [("\\cos\\pi", sympy.cos(PI)), ("\\sin\\frac{3\\pi}{2}", sympy.sin(3 * PI / 2)), ("\\cos 0", S(1)), ("\\tan\\frac{3\\pi}{4}", sympy.tan(3 * PI / 4)),
                   ("\\sin\\frac{\\pi}{2}", S(1))]),
    ("\\frac{\\pi}{6}", PI / 6, [("\\arcsin\\frac{1}{2}", sympy.asin(Rational(1, 2))), ("\\arccos\\frac{\\sqrt{3}}{2}", sympy.acos(sqrt(3) / 2)),
                                 ("\\arcsin\\frac{\\sqrt{3}}{2}", sympy.asin(sqrt(3) / 2)), ("\\arctan 1", sympy.atan(1)), ("\\arctan\\frac{1}{\\sqrt{3}}", sympy.atan(1 / sqrt(3)))]),
]


def g_trig_identity(rng):
    gold, gv, preds = rng.choice(TRIG)
    out = []
    for t, e in preds:
        eq = fn_eq(gv, e)
        out.append((t, int(eq), "equal" if eq else "miss", "identity" if eq else "not an identity"))
    return gold, out


def g_trig_value(rng):
    gold, gv, preds = rng.choice(TRIG_VALUES)
    out = []
    for t, e in preds:
        eq = num_eq(gv, e)
        out.append((t, int(eq), "equal" if eq else "miss", "exact value" if eq else "other value"))
    return gold, out

def lin_str(a, b, var="x"):
    """`a x + b` as LaTeX."""
    at = "" if a == 1 else "-" if a == -1 else str(a)
    s = f"{at}{var}"
    if b:
        s += f" + {b}" if b > 0 else f" - {-b}"
    return s


def g_abs_expr(rng):
    """Absolute values and even roots of expressions in x: equal only where the sign is right,
    so a check at positive points alone cannot tell |x| from x."""
    c = rng.randrange(7)
    a, b = rng.choice([1, 1, 2, 3]), rng.randint(-5, 5)
    if c == 0:
        inner = a * X + b
        g = sympy.Abs(inner)
        gold = f"|{lin_str(a, b)}|"
        cands = [(lin_str(a, b), inner, "bars dropped"), (f"-({lin_str(a, b)})", -inner, "negated"),
                 (f"|{lin_str(-a, -b)}|", sympy.Abs(-inner), "inside negated"), (f"\\sqrt{{({lin_str(a, b)})^2}}", sympy.Abs(inner), "root of square"),
                 (f"\\left| {lin_str(a, b)} \\right|", g, "\\left| \\right|"), (f"|{lin_str(a, b + 1)}|", sympy.Abs(inner + 1), "constant + 1"),
                 (f"({lin_str(a, b)})^2", inner ** 2, "squared")]
    elif c == 1:
        k = rng.randint(1, 9)
        g = sympy.Abs(X) + k
        gold = f"|x| + {k}"
        cands = [(f"x + {k}", X + k, "bars dropped"), (f"{k} + |x|", g, "reordered"), (f"\\sqrt{{x^2}} + {k}", g, "root of square"),
                 (f"|x + {k}|", sympy.Abs(X + k), "bars around the sum"), (f"|x| - {k}", sympy.Abs(X) - k, "sign")]
    elif c == 2:
        n = rng.choice([1, 3, 5])
        g = sympy.Abs(X ** n)
        gold = f"|x^{n}|" if n > 1 else "\\sqrt{x^2}"
        cands = [(f"x^{n}" if n > 1 else "x", X ** n, "bars dropped"), (f"|x|^{n}" if n > 1 else "|x|", sympy.Abs(X) ** n, "power outside"),
                 (f"-x^{n}" if n > 1 else "-x", -X ** n, "negated"), (f"x^{{{n - 1}}}|x|" if n > 1 else "|-x|", sympy.Abs(X) ** n, "split")]
    elif c == 3:
        f, ft = rng.choice([(sympy.sin, "\\sin"), (sympy.cos, "\\cos"), (sympy.tan, "\\tan")])
        g = sympy.Abs(f(X))
        gold = f"|{ft} x|"
        cands = [(f"{ft} x", f(X), "bars dropped"), (f"\\left|{ft}(x)\\right|", g, "\\left| \\right|"), (f"{ft} |x|", f(sympy.Abs(X)), "bars inside")]
    elif c == 6:
        k = rng.randint(2, 9)
        g = k * sympy.Abs(X)
        gold = f"{k}|x|"
        cands = [(f"|{k}x|", g, "factor inside"), (f"{k}x", k * X, "bars dropped"), (f"{k}\\left|x\\right|", g, "\\left| \\right|"),
                 (f"|x| \\cdot {k}", g, "factor after"), (f"|x|^{k}", sympy.Abs(X) ** k, "power")]
    elif c == 4:
        g = sympy.Abs(X) / X
        gold = "\\frac{|x|}{x}"
        cands = [("1", S(1), "bars dropped"), ("\\frac{x}{|x|}", X / sympy.Abs(X), "reciprocal"), ("-1", S(-1), "minus one"),
                 ("\\frac{\\sqrt{x^2}}{x}", g, "root of square")]
    else:
        kk = rng.choice([2, 4, 6])  # even: ln x^k is defined for x < 0 too, k ln x is not
        g = sympy.log(X ** kk)
        gold = f"\\ln x^{kk}"
        cands = [(f"{kk} \\ln |x|", kk * sympy.log(sympy.Abs(X)), "log of |x|"), (f"{kk}\\ln x", kk * sympy.log(X), "log of x (domain)"),
                 (f"\\ln(x^{kk})", g, "parenthesised"), (f"(\\ln x)^{kk}", sympy.log(X) ** kk, "power of log")]
        return gold, labelled(cands, lambda t, e: fn_eq(g, e))
    return gold, labelled(cands, lambda t, e: fn_eq(g, e))


def g_abs_relation(rng):
    """|x - c| < r and friends against one-sided relations that agree at positive x."""
    c = rng.choice([0, 0, rng.randint(-4, 4)])
    r = rng.randint(1, 6)
    strict = rng.random() < 0.5
    f, sym = (sympy.Lt, "<") if strict else (sympy.Le, "\\le")
    inner = "x" if c == 0 else f"x - {c}" if c > 0 else f"x + {-c}"
    gold = f"|{inner}| {sym} {r}"
    gs = solve_set(f(sympy.Abs(X - c), r))
    cands = [(f"x {sym} {c + r}", solve_set(f(X, c + r)), "bars dropped"),
             (f"{inner} {sym} {r}", solve_set(f(X - c, r)), "bars dropped, same shape"),
             (f"{c - r} {sym} x {sym} {c + r}", gs, "chain"), (interval_tex(c - r, c + r, strict, strict), gs, "interval"),
             (f"x {'>' if strict else chr(92) + 'ge'} {c - r}", solve_set((sympy.Gt if strict else sympy.Ge)(X, c - r)), "lower side only"),
             (f"|{inner}| {sym} {r + 1}", solve_set(f(sympy.Abs(X - c), r + 1)), "bound + 1"),
             (f"|x| {sym} {r}" if c else f"|x - 1| {sym} {r}", solve_set(f(sympy.Abs(X - (0 if c else 1)), r)), "centre changed")]
    return gold, labelled(cands, lambda t, e: real_set_eq(gs, e))


def g_abs_equation(rng):
    r = rng.randint(1, 9)
    gold = f"|x| = {r}"
    # solution set {r, -r}
    cands = [(f"x = {r}", [r], "positive root only"), (f"x = -{r}", [-r], "negative root only"),
             (f"x = \\pm {r}", [r, -r], "both roots"), (f"|-x| = {r}", [r, -r], "inside negated"),
             (f"|x| - {r} = 0", [r, -r], "moved"), (f"|x| = {r + 1}", [r + 1, -r - 1], "value + 1")]
    return gold, labelled(cands, lambda t, sol: set_eq([r, -r], sol))


def g_narrow_chain(rng):
    """Chains whose interval is narrow and far from 0, where sampling on a coarse grid sees
    nothing."""
    a = rng.randint(5, 5000) * rng.choice([1, -1])
    w = rng.choice([1, 1, 2, Rational(1, 2)])
    b = a + w
    gold = f"{frac_tex(a)} < x < {frac_tex(b)}"
    gs = sympy.Interval(a, b, True, True)
    sh = rng.randint(2, 60)
    cands = [(f"({frac_tex(a)}, {frac_tex(b)})", gs, "interval"), (f"{frac_tex(b)} > x > {frac_tex(a)}", gs, "reversed"),
             (f"{frac_tex(a + sh)} < x < {frac_tex(b + sh)}", sympy.Interval(a + sh, b + sh, True, True), f"shifted by {sh}"),
             (f"{frac_tex(-b)} < x < {frac_tex(-a)}", sympy.Interval(-b, -a, True, True), "negated ends"),
             (f"{frac_tex(a)} \\le x \\le {frac_tex(b)}", sympy.Interval(a, b), "closed"),
             (f"{frac_tex(a)} < x < {frac_tex(b + 1)}", sympy.Interval(a, b + 1, True, True), "right end + 1"),
             (f"({frac_tex(a + sh)}, {frac_tex(b + sh)})", sympy.Interval(a + sh, b + sh, True, True), "shifted interval")]
    return gold, labelled(cands, lambda t, e: real_set_eq(gs, e))


def g_func_arg(rng):
    """How far a function's argument reaches: \\sin 2x is sin(2x), not sin(2) x."""
    c = rng.randrange(4)
    k = rng.randint(2, 6)
    if c == 0:
        f, ft = rng.choice([(sympy.sin, "\\sin"), (sympy.cos, "\\cos")])
        g = f(k * X)
        gold = f"{ft} {k}x"
        cands = [(f"{ft}({k}x)", g, "parenthesised"), (f"{ft}\\left({k}x\\right)", g, "\\left( \\right)"),
                 (f"x {ft} {k}", x_f(f, k), "x times f(k)"), (f"{ft}({k})x", x_f(f, k), "f(k) times x"),
                 (f"{k}{ft} x", k * f(X), "k f(x)"), (f"{ft} {k + 1}x", f((k + 1) * X), "k + 1")]
    elif c == 1:
        g = sympy.log(k * X)
        gold = f"\\ln {k}x"
        cands = [(f"\\ln({k}x)", g, "parenthesised"), (f"\\ln {k} + \\ln x", sympy.log(k) + sympy.log(X), "split"),
                 (f"x \\ln {k}", X * sympy.log(k), "x times ln k"), (f"{k} \\ln x", k * sympy.log(X), "k ln x")]
    elif c == 2:
        g = sympy.sin(PI * X)
        gold = "\\sin \\pi x"
        cands = [("\\sin(\\pi x)", g, "parenthesised"), ("x \\sin \\pi", S(0), "x sin(pi) = 0"), ("\\pi \\sin x", PI * sympy.sin(X), "pi sin x")]
    else:
        f, ft = rng.choice([(sympy.sin, "\\sin"), (sympy.cos, "\\cos")])
        g = f(X ** 2)
        gold = f"{ft} x^2"
        cands = [(f"{ft}(x^2)", g, "parenthesised"), (f"{ft}^2 x", f(X) ** 2, "power of the function"),
                 (f"({ft} x)^2", f(X) ** 2, "square of f")]
    return gold, labelled(cands, lambda t, e: fn_eq(g, e))


def x_f(f, k):
    return X * f(k)


def g_hedge(rng):
    """Completions that hedge between answers, or mention the gold and end elsewhere."""
    n = rng.randint(-20, 99)
    gold = str(n)
    w = work_text(rng)
    rows = [
        (f"{w} The answer is $\\boxed{{{n}}}$ or $\\boxed{{{n + 1}}}$.", 0, "miss", "two boxes, hedged"),
        (f"{w} So $\\boxed{{{n}}}$... wait, recomputing gives $\\boxed{{{n + 2}}}$.", 0, "miss", "corrected to a later box"),
        (f"{w} We get $x = {n}$ at first, but the final answer is $\\boxed{{{n - 3}}}$.", 0, "miss", "gold earlier in $..$"),
        (f"{w} Final Answer: The final answer is ${n}$. I hope it is correct.", 1, "equal", "minerva"),
        (f"{w} Checking ${n + 5}$ fails, so the answer is $\\boxed{{{n}}}$.", 1, "equal", "decoy before"),
        (f"{w} Therefore the answer is $\\boxed{{{n}, {n + 1}}}$.", 0, "miss", "list in one box"),
    ]
    return gold, [("\u0000" + c, lab, kind, note) for c, lab, kind, note in rows]


FAMILIES = {
    "int": g_int, "bigint": g_bigint, "frac": g_frac, "decimal": g_decimal, "root": g_root, "pi": g_pi,
    "power": g_power, "percent": g_percent, "poly": g_poly, "rational_fn": g_rational, "equation": g_equation,
    "line": g_line, "inequality": g_inequality, "chain": g_chain, "abs_chain": g_abs_chain, "interval": g_interval,
    "set": g_set, "tuple": g_tuple, "pm": g_pm, "matrix": g_matrix, "base": g_base, "text": g_text,
    "trig_identity": g_trig_identity, "trig_value": g_trig_value, "hedge": g_hedge, "abs_expr": g_abs_expr,
    "abs_equation": g_abs_equation, "abs_relation": g_abs_relation, "narrow_chain": g_narrow_chain, "func_arg": g_func_arg,
}


def build_corpus(n, seed):
    rng = random.Random(seed)
    rows = []
    names = list(FAMILIES)
    i = 0
    while len(rows) < n:
        fam = names[i % len(names)]
        i += 1
        gold, cands = FAMILIES[fam](rng)
        for pred, label, kind, note in cands:
            if pred.startswith("\u0000"):
                completion, pred = pred[1:], "(whole completion)"
            else:
                gmention = gold if kind == "miss" and rng.random() < 0.12 else None
                decoy = None
                if kind != "miss" and rng.random() < 0.12:
                    decoy = f"{rng.randint(-9, 99)}"
                completion = wrap(rng, pred, gold=gmention, decoy=decoy)
            rows.append({"id": len(rows), "family": fam, "gold": gold, "pred": pred, "label": int(label),
                         "kind": kind, "note": note, "completion": completion})
    return rows


# --------------------------------------------------------------------------------------------
# Running the verifiers
# --------------------------------------------------------------------------------------------


def run_ours(rows, rlvr):
    with tempfile.TemporaryDirectory() as d:
        inp = os.path.join(d, "rows.jsonl")
        with open(inp, "w") as f:
            f.writelines(json.dumps({"id": r["id"], "task": {"answer": r["gold"]}, "completion": r["completion"]}) + "\n"
                         for r in rows)
        out = subprocess.run([rlvr, "score", "--reward", "math/equivalence", "--workers", "1", "--input", inp],
                             check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        if line.strip():
            o = json.loads(line)
            res[o["id"]] = o
    return res


def _mv_one(args):
    gold, completion = args
    from math_verify import parse, verify
    try:
        return int(bool(verify(parse("$" + gold + "$"), parse(completion))))
    except Exception as e:  # noqa: BLE001 -- a crash of the peer counts as 0, shown in the disagreements
        return f"exception: {e!r}"[:120]


def run_math_verify(rows, jobs):
    args = [(r["gold"], r["completion"]) for r in rows]
    if jobs <= 1:
        return [_mv_one(a) for a in args]
    with multiprocessing.Pool(jobs) as pool:
        return pool.map(_mv_one, args, chunksize=16)


def ours_extracted(o):
    acc = ((o.get("details") or {}).get("accuracy") or {})
    return acc.get("answer", acc.get("error", ""))


def show(r, extra=""):
    tail = r["completion"][-110:].replace("\n", " | ")
    return (f"  #{r['id']} [{r['kind']}: {r['note']}] gold={r['gold']!r} pred={r['pred']!r} label={r['label']} "
            f"ours={r['ours']} mv={r['mv']}{extra}\n      completion tail: ...{tail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="minimum number of rows")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rlvr", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "target", "release", "rlvr"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for math-verify")
    ap.add_argument("--show", type=int, default=12, help="rows listed per family in (d); 0 for all")
    ap.add_argument("--dump", help="write every row with both verdicts to this JSONL file")
    args = ap.parse_args()

    rows = build_corpus(args.n, args.seed)
    ours = run_ours(rows, args.rlvr)
    mv = run_math_verify(rows, args.jobs)
    for r, m in zip(rows, mv):
        o = ours.get(r["id"], {})
        rew = o.get("reward")
        r["ours"] = None if rew is None else int(rew >= 0.5)
        r["ours_error"] = o.get("error")
        r["ours_answer"] = ours_extracted(o)
        r["mv"] = m if isinstance(m, int) else 0
        r["mv_exc"] = None if isinstance(m, int) else m

    fams = collections.OrderedDict((f, [r for r in rows if r["family"] == f]) for f in FAMILIES)
    n = len(rows)
    print(f"rows: {n} (seed {args.seed}); true 1: {sum(r['label'] for r in rows)}, true 0: {sum(1 - r['label'] for r in rows)}; "
          f"kinds: " + ", ".join(f"{k} {v}" for k, v in collections.Counter(r["kind"] for r in rows).items()))
    print(f"{'family':<14}{'rows':>6}{'ours ok':>9}{'mv ok':>8}{'our FP':>8}{'our FN':>8}{'mv FP':>7}{'mv FN':>7}{'err':>5}{'disagree':>10}")
    tot = collections.Counter()
    for f, rs in fams.items():
        c = collections.Counter()
        for r in rs:
            c["rows"] += 1
            c["ours ok"] += r["ours"] == r["label"]
            c["mv ok"] += r["mv"] == r["label"]
            c["our FP"] += r["ours"] == 1 and r["label"] == 0
            c["our FN"] += r["ours"] == 0 and r["label"] == 1
            c["mv FP"] += r["mv"] == 1 and r["label"] == 0
            c["mv FN"] += r["mv"] == 0 and r["label"] == 1
            c["err"] += r["ours"] is None
            c["disagree"] += r["ours"] != r["mv"]
        tot.update(c)
        print(f"{f:<14}{c['rows']:>6}{c['ours ok']:>9}{c['mv ok']:>8}{c['our FP']:>8}{c['our FN']:>8}{c['mv FP']:>7}{c['mv FN']:>7}{c['err']:>5}{c['disagree']:>10}")
    print(f"{'total':<14}{tot['rows']:>6}{tot['ours ok']:>9}{tot['mv ok']:>8}{tot['our FP']:>8}{tot['our FN']:>8}{tot['mv FP']:>7}{tot['mv FN']:>7}{tot['err']:>5}{tot['disagree']:>10}")
    print(f"agreement with the true labels: ours {tot['ours ok'] / n:.2%}, math-verify {tot['mv ok'] / n:.2%}; "
          f"ours vs math-verify {1 - tot['disagree'] / n:.2%}")
    spec = [r for r in rows if r["kind"] != "spec"]
    print(f"  without the {n - len(spec)} spec-labelled rows: ours {sum(r['ours'] == r['label'] for r in spec) / len(spec):.2%}, "
          f"math-verify {sum(r['mv'] == r['label'] for r in spec) / len(spec):.2%}")

    def section(title, pick, cap=0):
        sel = [r for r in rows if pick(r)]
        print(f"\n{title}: {len(sel)}")
        for f, rs in fams.items():
            mine = [r for r in rs if pick(r)]
            if not mine:
                continue
            print(f" [{f}] {len(mine)}")
            for r in mine[: cap or len(mine)]:
                print(show(r, f" ours_extracted={r['ours_answer']!r}" + (f" ours_error={r['ours_error']!r}" if r["ours_error"] else "")))
            if cap and len(mine) > cap:
                print(f"  ... {len(mine) - cap} more")
        return sel

    fp = section("(a) OUR FALSE POSITIVES (ours 1, label 0)", lambda r: r["ours"] == 1 and r["label"] == 0)
    section("(b) our false negatives (ours 0, label 1)", lambda r: r["ours"] == 0 and r["label"] == 1)
    section("(c) our errors (reward null)", lambda r: r["ours"] is None)
    section("(d) math-verify and ours disagree", lambda r: r["ours"] != r["mv"], args.show)
    exc = [r for r in rows if r["mv_exc"]]
    if exc:
        print(f"\nmath-verify raised on {len(exc)} rows (counted as 0), e.g. {exc[0]['mv_exc']}")
    if args.dump:
        with open(args.dump, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    return 1 if fp else 0


if __name__ == "__main__":
    sys.exit(main())
