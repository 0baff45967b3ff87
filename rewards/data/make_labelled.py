#!/usr/bin/env python3
"""Builds labelled.jsonl, the bundled labelled set of the math and answer verifiers.

Run from the repository root: python3 rewards/data/make_labelled.py > rewards/data/labelled.jsonl

Every label is decided here, never by the verifier under test: the hand-written rows carry
the label a careful grader gives (with the rule they pin in `note`), and the generated
families compute the truth with exact rational arithmetic (`fractions.Fraction`). Where a
label depends on a convention (a decimal rounded to 6 places equals the fraction; `50%`
equals 0.5 and 50; `x = 5` equals 5), the convention is math-verify's, and docs/rewards.md
lists it. Deterministic: the same script gives the same file.
"""
import json
import random
from fractions import Fraction

R = random.Random(8)
rows = []


def add(reward, answer, completion, label, note, **extra):
    task = {"answer": answer}
    task.update(extra)
    rows.append({"task": task, "completion": completion, "label": label,
                 "reward": reward, "note": note})


M = "math/equivalence"
N = "answer/numeric"

# Hand-written math rows: (gold, completion, label, rule).
HAND = [
    (r"\frac{1}{2}", r"\boxed{0.5}", 1, "fraction = terminating decimal"),
    (r"\frac{1}{3}", r"\boxed{0.333}", 0, "3 decimals are not 6"),
    (r"\frac{1}{3}", r"\boxed{0.333333}", 1, "6-place rounding"),
    (r"\frac{2}{3}", r"\boxed{0.666667}", 1, "6-place rounding, rounded up"),
    (r"\frac{2}{3}", r"\boxed{0.666666}", 0, "6-place truncation is not rounding"),
    (r"50\%", r"\boxed{0.5}", 1, "percent as fraction"),
    (r"50\%", r"\boxed{50}", 1, "percent as its number"),
    ("0.5", r"\boxed{50\%}", 1, "answer in percent"),
    (r"50\%", r"\boxed{5}", 0, "percent off by 10x"),
    ("1000", r"\boxed{1,000}", 1, "thousands separator"),
    ("1234567", r"\boxed{1,234,567}", 1, "thousands separators"),
    (r"\{1,2\}", r"\boxed{\{2,1\}}", 1, "set order"),
    (r"\{1,2\}", r"\boxed{\{1,2,2\}}", 1, "set duplicates"),
    (r"\{1,2\}", r"\boxed{\{1,3\}}", 0, "set element differs"),
    (r"\{1,2,3\}", r"\boxed{\{1,2\}}", 0, "set element missing"),
    ("(1,2)", r"\boxed{(2,1)}", 0, "tuple order"),
    ("(1,2)", r"\boxed{(1,2)}", 1, "tuple"),
    ("(1,2)", r"\boxed{1,2}", 1, "bare list vs tuple"),
    ("1,2", r"\boxed{2,1}", 1, "bare lists as sets"),
    (r"\{1\}", r"\boxed{1}", 1, "singleton set vs number"),
    ("(1,2]", r"\boxed{(1,2)}", 0, "interval end open vs closed"),
    ("(1,2]", r"\boxed{(1,2]}", 1, "interval"),
    ("[1,2]", r"\boxed{[1,2]}", 1, "closed interval"),
    ("[1,2]", r"\boxed{(1,2)}", 0, "closed vs open"),
    ("(1,2)", r"\boxed{[1,2)}", 0, "open vs half-open"),
    (r"(-\infty, 3)", r"\boxed{(-\infty,3)}", 1, "infinite end"),
    (r"(-\infty, 3)", r"\boxed{\left(-\infty, 3\right)}", 1, "left/right dropped"),
    (r"(-\infty, 3) \cup (4, 5]", r"\boxed{(4,5] \cup (-\infty,3)}", 1, "union order"),
    (r"(-\infty, 3) \cup (4, 5]", r"\boxed{(-\infty,3) \cup [4,5]}", 0, "union end differs"),
    (r"[\frac{1}{2}, \infty)", r"\boxed{[0.5, \infty)}", 1, "interval end as decimal"),
    ("x^2+2x+1", r"\boxed{(x+1)^2}", 1, "polynomial expansion"),
    ("x^2-1", r"\boxed{(x-1)(x+1)}", 1, "difference of squares"),
    ("x^2-1", r"\boxed{(x-1)(x-1)}", 0, "wrong factor"),
    ("x^3-6x^2+11x-6", r"\boxed{(x-1)(x-2)(x-3)}", 1, "cubic expansion"),
    ("a+b", r"\boxed{b+a}", 1, "commutativity"),
    ("2xy", r"\boxed{2yx}", 1, "implicit products"),
    (r"\frac{x}{2}", r"\boxed{0.5x}", 1, "coefficient as decimal"),
    ("x", r"\boxed{y}", 0, "different variable"),
    (r"\sqrt{8}", r"\boxed{2\sqrt{2}}", 1, "root simplification"),
    (r"\sqrt{12}", r"\boxed{3\sqrt{2}}", 0, "wrong root simplification"),
    (r"\sqrt[3]{27}", r"\boxed{3}", 1, "cube root"),
    (r"\frac{\sqrt{3}}{2}", r"\boxed{\frac{1}{2}\sqrt{3}}", 1, "root in fraction"),
    (r"\sqrt{2}", r"\boxed{1.414214}", 1, "irrational to 6 places"),
    (r"\sqrt{2}", r"\boxed{1.41}", 0, "irrational to 2 places"),
    (r"\pi/2", r"\boxed{\frac{\pi}{2}}", 1, "pi fraction forms"),
    (r"\pi", r"\boxed{3.141593}", 1, "pi to 6 places"),
    (r"\pi", r"\boxed{3.14159}", 0, "pi to 5 places"),
    (r"\pi", r"\boxed{3.14}", 0, "pi to 2 places"),
    (r"2\pi", r"\boxed{\pi \cdot 2}", 1, "pi product"),
    (r"\frac{3\pi}{4}", r"\boxed{0.75\pi}", 1, "pi coefficient"),
    ("2^{10}", r"\boxed{1024}", 1, "power"),
    ("2^{10}", r"\boxed{1000}", 0, "power wrong"),
    ("5", r"\boxed{x=5}", 1, "assignment dropped"),
    ("5", r"\boxed{5\text{ cm}}", 1, "units dropped"),
    ("10", r"\boxed{10^\circ}", 1, "degrees dropped"),
    ("3", r"\boxed{3.0000001}", 0, "exact integer compared exactly"),
    ("3.0", r"\boxed{3.0000001}", 1, "decimals rounded to 6 places"),
    ("2", r"\boxed{2.0}", 1, "integer vs decimal"),
    ("123456789", r"\boxed{123456789.4}", 0, "large integer exact"),
    (r"-\frac{1}{2}", r"\boxed{\frac{-1}{2}}", 1, "sign placement"),
    (r"\dfrac{3}{4}", r"\boxed{3/4}", 1, "dfrac vs slash"),
    (r"\frac{3}{4}", r"\boxed{\frac34}", 1, "frac without braces"),
    ("2", r"\boxed{\sqrt{4}}", 1, "root of perfect square"),
    (r"\infty", r"\boxed{\infty}", 1, "infinity"),
    (r"\infty", r"\boxed{-\infty}", 0, "infinity sign"),
    ("y=2x+1", r"\boxed{y=1+2x}", 1, "equation"),
    ("7", r"so \boxed{7} is it", 1, "boxed in prose"),
    ("7", r"\boxed{6} no wait \boxed{7}", 0, "boxes under 10 characters apart are one answer, {6, 7} (math-verify's rule): a hedge"),
    ("7", r"\boxed{7} no wait \boxed{6}", 0, "last box wins (wrong)"),
    ("12", "<answer>12</answer>", 1, "answer tag"),
    ("12", "work...\nANSWER: 12", 1, "answer line"),
    ("12", "so the total is 12.", 1, "last number"),
    ("12", "12 apples, 13 pears", 0, "last number is another"),
    ("12", "I do not know", 0, "no answer"),
    (r"\frac{1}{2}", r"\boxed{\frac{1}{2}", 1, "unclosed box: the fraction in it is still found (as math-verify finds it)"),
    ("4", r"\boxed{\boxed{4}}", 1, "nested box"),
    (r"\{\frac{1}{2}, -3\}", r"\boxed{-3, 0.5}", 1, "roots as list"),
    (r"\frac{1}{7}", r"\boxed{0.142857}", 1, "1/7 to 6 places"),
    (r"\frac{1}{7}", r"\boxed{0.1428}", 0, "1/7 to 4 places"),
    ("0.1", r"\boxed{0.1000001}", 1, "decimals within rounding"),
    ("2.5", r"\boxed{2.50}", 1, "trailing zero"),
    ("-4", r"\boxed{-4}", 1, "negative"),
    ("-4", r"\boxed{4}", 0, "sign error"),
    (r"|{-3}|", r"\boxed{3}", 1, "absolute value"),
    ("5!", r"\boxed{120}", 1, "factorial"),
    (r"\log_{2} 8", r"\boxed{3}", 1, "log base"),
]
for g, c, l, note in HAND:
    add(M, g, c, l, note)

def frac_tex(f):
    if f.denominator == 1:
        return str(f.numerator)
    s = "-" if f < 0 else ""
    return rf"{s}\frac{{{abs(f.numerator)}}}{{{f.denominator}}}"

def round6(f):
    return format(round(float(f), 6), ".6f").rstrip("0").rstrip(".")

# Family: a fraction, unreduced in the gold, answered reduced / as a decimal / wrongly.
for _ in range(40):
    b = R.randint(2, 12)
    a = R.randint(1, 3 * b)
    k = R.randint(2, 4)
    f = Fraction(a, b)
    gold = rf"\frac{{{a * k}}}{{{b * k}}}"
    add(M, gold, rf"\boxed{{{frac_tex(f)}}}", 1, "family: reduced fraction")
    add(M, gold, rf"\boxed{{{round6(f)}}}", 1, "family: decimal to 6 places")
    wrong = f + Fraction(1, b)
    add(M, gold, rf"\boxed{{{frac_tex(wrong)}}}", 0, "family: off by 1/b")
    if f.denominator not in (1, 2, 4, 5, 8, 10, 20, 25, 40, 50):
        add(M, gold, rf"\boxed{{{float(f):.2f}}}", 0, "family: decimal to 2 places")

# Family: factored quadratics against their expansion.
for _ in range(30):
    p, q = R.randint(-9, 9), R.randint(-9, 9)
    s = lambda v: f"+{v}" if v >= 0 else f"{v}"
    gold = f"x^2{s(p + q)}x{s(p * q)}"
    add(M, gold, rf"\boxed{{(x{s(p)})(x{s(q)})}}", 1, "family: factored form")
    add(M, gold, rf"\boxed{{(x{s(p)})(x{s(-q if q else 1)})}}", 0, "family: wrong factor")

# Family: intervals, every pair of ends.
for _ in range(10):
    lo, hi = sorted(R.sample(range(-20, 20), 2))
    ends = [("(", ")"), ("[", "]"), ("(", "]"), ("[", ")")]
    gl, gr = R.choice(ends)
    gold = f"{gl}{lo}, {hi}{gr}"
    for al, ar in ends:
        label = int((al, ar) == (gl, gr))
        add(M, gold, rf"\boxed{{{al}{lo},{hi}{ar}}}", label, "family: interval ends")

# Family: sets of roots in any order, and with an element changed.
for _ in range(15):
    xs = R.sample(range(-10, 11), 3)
    gold = r"\{" + ", ".join(map(str, xs)) + r"\}"
    perm = xs[:]
    R.shuffle(perm)
    add(M, gold, r"\boxed{\{" + ",".join(map(str, perm)) + r"\}}", 1, "family: set order")
    changed = perm[:-1] + [max(xs) + 1]
    add(M, gold, r"\boxed{\{" + ",".join(map(str, changed)) + r"\}}", 0, "family: set element")

# Family: square roots, simplified and not.
for _ in range(15):
    k, m = R.randint(2, 6), R.choice([2, 3, 5, 6, 7])
    gold = rf"\sqrt{{{k * k * m}}}"
    add(M, gold, rf"\boxed{{{k}\sqrt{{{m}}}}}", 1, "family: root simplified")
    add(M, gold, rf"\boxed{{{k + 1}\sqrt{{{m}}}}}", 0, "family: root wrong coefficient")

# Numeric rows (answer/numeric).
NUM_HAND = [
    ("1234.5", "<answer>1,234.5</answer>", 1, "thousands separator", {}),
    ("1234.5", "<answer>1.234,5</answer>", 0, "European grouping is not read", {}),
    ("0.125", r"\boxed{12.5\%}", 1, "percent"),
    ("12.5%", "The rate is 0.125", 1, "percent gold, fraction answer"),
    ("12.5%", "The rate is 12.5", 1, "percent gold, number answer"),
    ("12.5%", "The rate is 1.25", 0, "percent gold, wrong"),
    ("6.02e23", "about 6.02e23 atoms", 1, "scientific notation"),
    ("6.02e23", r"\boxed{6.02 \times 10^{23}}", 1, "LaTeX scientific notation"),
    ("6.02e23", r"\boxed{6.2 \times 10^{23}}", 0, "mantissa wrong"),
    ("0.75", r"\boxed{\frac{3}{4}}", 1, "fraction"),
    ("0.75", "ANSWER: 3/4", 1, "slash fraction"),
    ("-0.5", r"\boxed{-\frac{1}{2}}", 1, "negative fraction"),
    ("100", "<answer>100.5</answer>", 1, "atol 0.5", {"atol": 0.5}),
    ("100", "<answer>100.6</answer>", 0, "outside atol 0.5", {"atol": 0.5}),
    ("200", "ANSWER: 202", 1, "rtol 1%", {"rtol": 0.01}),
    ("200", "ANSWER: 202.1", 0, "outside rtol 1%", {"rtol": 0.01}),
    ("42", "<answer>42 apples</answer>", 1, "number inside the answer"),
    ("42", "<answer>forty-two</answer>", 0, "words are not numbers"),
    ("3", "3.0000001", 0, "default rtol is tight"),
    ("$15", "It costs $15.", 1, "currency sign"),
]
for g, c, l, note, *extra in NUM_HAND:
    add(N, g, c, l, note, **(extra[0] if extra else {}))

# Family: integers with thousands separators, right and off by one.
for _ in range(30):
    n = R.randint(1000, 10_000_000)
    add(N, str(n), f"The total is {n:,}.", 1, "family: thousands")
    add(N, str(n), f"The total is {n + 1:,}.", 0, "family: thousands off by one")

# Family: percentages of a base.
for _ in range(20):
    p = R.randint(1, 99)
    add(N, f"{p}%", rf"\boxed{{{p / 100}}}", 1, "family: percent as fraction")
    add(N, f"{p}%", rf"\boxed{{{p + 1}\%}}", 0, "family: percent off by one")

# Exact and choice rows.
for g, c, l, note in [
    ("Paris", "<answer> paris </answer>", 1, "normalized case and space"),
    ("Paris", "<answer>Lyon</answer>", 0, "different string"),
    ("New York", "<answer>new   york</answer>", 1, "whitespace runs"),
    ("Paris", "Paris", 0, "no answer tag"),
]:
    add("answer/exact", g, c, l, note)
for g, c, l, note in [
    ("C", r"\boxed{C}", 1, "boxed letter"),
    ("C", "I rule out (A), so (C).", 1, "last bracketed letter"),
    ("C", "Answer: c) 12", 1, "answer line, lower case"),
    ("C", "<answer>D</answer>", 0, "wrong letter"),
    ("C", "<answer>Because</answer>", 0, "a word is not a letter"),
    ("A", "<answer>(A)</answer>", 1, "bracketed in tag"),
]:
    add("answer/choice", g, c, l, note, choices=4)

for r in rows:
    print(json.dumps(r, ensure_ascii=False))
