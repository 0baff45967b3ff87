//! Rewards for `code/python-v0`: `code/unit-tests` (the task's tests run in the sandbox) and
//! `code/answer-match` (the final answer equals the reference), each with the episode's sandbox
//! metrics: executions, fuel used and limit hits by kind (from the environment's step infos).
//!
//! Task shapes read:
//! - `code/unit-tests`: `tests`, either a string of HumanEval-style test code defining
//!   `check(candidate)` (with `entry_point` naming the function to check; pass or fail as a
//!   whole), or an array of Python statements (`assert f(1) == 2`) each passing or failing on
//!   its own. `test` is accepted for `tests`, so raw HumanEval rows score as they are. Optional
//!   `prompt`: prepended when the program does not itself define `entry_point` (a completion
//!   that is only the function's body).
//! - `code/answer-match`: `answer`, the reference string.

use rlvr_engine::{BoxError, Config, Registry, Reward, RewardError, Rubric, Task, Trajectory, parse_config};
use super::{LimitKind, Limits, Sandbox, Session, python_blocks};
use rlvr_rewards::extract::answer_tag;
use crate::fetch::hex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Settings of `code/unit-tests`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnitTestsConfig {
    /// `"fraction"`: the share of tests passing; `"all"`: 1 only if every test passes.
    /// Default `"fraction"`.
    pub mode: String,
    /// Limits of each of the two executions (the program, then the tests).
    pub limits: Limits,
}

impl Default for UnitTestsConfig {
    fn default() -> Self {
        Self { mode: "fraction".into(), limits: Limits::default() }
    }
}

/// The program a completion gives: the last ```` ```python ```` block of its final message
/// (inside `<answer>` tags if there are any), else the answer tag's text, else the whole message.
pub fn program(completion: &str) -> &str {
    let scope = answer_tag(completion).unwrap_or(completion);
    python_blocks(scope).last().copied().unwrap_or(scope)
}

enum Tests {
    Check(String),
    List(Vec<String>),
}

fn tests_of(task: &Task) -> Result<Tests, RewardError> {
    let v = task.data.get("tests").or_else(|| task.data.get("test"));
    match v {
        Some(Value::String(s)) => Ok(Tests::Check(s.clone())),
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|t| t.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Tests::List)
            .ok_or_else(|| RewardError::new(format!("task {}: `tests` must hold only strings", task.id))),
        Some(_) => Err(RewardError::new(format!("task {}: `tests` must be a string or a non-empty array", task.id))),
        None => Err(RewardError::new(format!("task {}: missing field `tests`", task.id))),
    }
}

use super::{py_str, tail};

/// A `sys.excepthook` that prints a traceback's frames (file, line, function) and the exception
/// without importing `traceback`: that import (with `tokenize` and its regular expressions)
/// costs the guest about 90M fuel, 60 times a whole `print(1+1)`, and most programs scored in
/// RL fail. Source lines and chained exceptions are left out; the reward keeps stderr only as a
/// diagnostic. (Environments keep CPython's own printer: there the model reads the traceback.)
///
/// It binds no name the program could see (`sys` stays unimported in `__main__`): a program
/// that forgot an import must fail here as it fails anywhere else.
const EXCEPTHOOK: &str = r#"def __rlvr_excepthook(t, e, tb, _sys=__import__("sys")):
    w = _sys.stderr.write
    w("Traceback (most recent call last):\n")
    while tb is not None:
        c = tb.tb_frame.f_code
        w('  File "%s", line %s, in %s\n' % (c.co_filename, tb.tb_lineno, c.co_name))
        tb = tb.tb_next
    m = getattr(t, "__module__", "")
    name = t.__qualname__ if m in ("builtins", "__main__") else "%s.%s" % (m, t.__qualname__)
    try:
        s = str(e)
    except BaseException:
        s = "<str() failed>"
    w(name + (": " + s if s else "") + "\n")
__import__("sys").excepthook = __rlvr_excepthook
del __rlvr_excepthook
"#;

/// The turn that installs [`EXCEPTHOOK`]: its code object, compiled once per process by the
/// guest itself and loaded with `marshal` (compiling the source in every session would cost
/// 2.5 times more).
fn light_excepthook(sandbox: &Sandbox) -> Result<&'static str, RewardError> {
    static TURN: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    TURN.get_or_init(|| {
        let limits = Limits::default();
        let mut s = Session::new(sandbox, &limits, &[], 0).map_err(|e| e.to_string())?;
        let compile = format!(
            "import marshal\nprint(marshal.dumps(compile({}, '<rlvr>', 'exec')).hex())",
            py_str(EXCEPTHOOK)
        );
        let e = s.turn(&compile, &limits).map_err(|e| e.to_string())?;
        let hex = e.stdout.trim();
        if !e.ok() || hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("compiling the exception printer failed: {}", tail(&e.stderr, 400)));
        }
        Ok(format!("import marshal\nexec(marshal.loads(bytes.fromhex('{hex}')))\ndel marshal"))
    })
    .as_deref()
    .map_err(|e| RewardError::new(format!("sandbox: {e}")))
}

/// Runs the program, then (in a second turn that the program cannot see) the tests; the harness
/// prints a line with a nonce derived from the completion and the tests, so a program that
/// prints a fake result line, or exits early with status 0, passes nothing. Tests are inlined
/// as source (not `exec`'d) so replacing `exec` does not skip them. A program that deliberately
/// rewrites the interpreter (patching `print`) can still fool any in-process harness; the
/// sandbox keeps that from reaching the host, not from reaching the score.
fn unit_tests(task: &Task, tr: &Trajectory, cfg: &UnitTestsConfig) -> Result<Reward, RewardError> {
    let tests = tests_of(task)?;
    let completion = tr.final_answer();
    let mut code = program(completion).to_string();
    let entry = task.data.get("entry_point").and_then(Value::as_str);
    if let (Some(entry), Some(prompt)) = (entry, task.data.get("prompt").and_then(Value::as_str))
        && !code.contains(&format!("def {entry}"))
    {
        code = format!("{prompt}{code}");
    }
    let mut h = Sha256::new();
    h.update(task.id.as_bytes());
    h.update(completion.as_bytes());
    h.update(format!("{:?}", task.data.get("tests").or_else(|| task.data.get("test"))).as_bytes());
    let nonce = format!("__rlvr_{}", &hex(&h.finalize())[..24]);
    let (harness, total) = match &tests {
        Tests::Check(src) => {
            let entry = entry.ok_or_else(|| {
                RewardError::new(format!("task {}: HumanEval-style `tests` need `entry_point`", task.id))
            })?;
            (
                format!(
                    "{src}\n__rlvr_ok = 0\ntry:\n    check({entry})\n    __rlvr_ok = 1\nexcept BaseException:\n    \
                     __rlvr_sys = __import__('sys')\n    __rlvr_sys.excepthook(*__rlvr_sys.exc_info())\n\
                     print({nonce}, __rlvr_ok, 1)\n",
                    nonce = py_str(&nonce),
                ),
                1u32,
            )
        }
        Tests::List(list) => {
            let mut h = String::from("__rlvr_ok = 0\n");
            for t in list {
                h.push_str("try:\n");
                for line in t.lines() {
                    h.push_str("    ");
                    h.push_str(line);
                    h.push('\n');
                }
                h.push_str("    __rlvr_ok += 1\nexcept BaseException:\n    pass\n");
            }
            h.push_str(&format!("print({}, __rlvr_ok, {})\n", py_str(&nonce), list.len()));
            (h, list.len() as u32)
        }
    };
    let sandbox = Sandbox::shared().map_err(|e| RewardError::new(format!("sandbox: {e}")))?;
    let mut session =
        Session::new(&sandbox, &cfg.limits, &[], 0).map_err(|e| RewardError::new(format!("sandbox: {e}")))?;
    let hook = session.turn(light_excepthook(&sandbox)?, &cfg.limits).map_err(|e| RewardError::new(format!("sandbox: {e}")))?;
    if !hook.ok() {
        return Err(RewardError::new(format!("sandbox: installing the exception printer failed: {}", tail(&hook.stderr, 400))));
    }
    let run = session.turn(&code, &cfg.limits).map_err(|e| RewardError::new(format!("sandbox: {e}")))?;
    let tail = |s: &str| tail(s, 400);
    if !run.ok() {
        return Ok(Reward::with_info(
            0.0,
            json!({ "stage": "program", "passed": 0, "total": total, "exit_code": run.exit_code,
                    "limit": run.limit.map(LimitKind::name), "trap": run.trap, "stderr": tail(&run.stderr) }),
        ));
    }
    let t = session.turn(&harness, &cfg.limits).map_err(|e| RewardError::new(format!("sandbox: {e}")))?;
    let passed = t
        .stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{nonce} ")))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u32>().ok());
    let info = |passed: u32| {
        json!({ "stage": "tests", "passed": passed, "total": total, "exit_code": t.exit_code,
                "limit": t.limit.map(LimitKind::name), "trap": t.trap, "stderr": tail(&t.stderr) })
    };
    let Some(passed) = passed else {
        // The program ran and returned, so a harness that does not even compile is the task's fault.
        if t.exit_code == Some(1) && t.stderr.contains("SyntaxError") && t.stderr.contains("line ") {
            return Err(RewardError::new(format!("task {}: the tests do not compile: {}", task.id, tail(&t.stderr))));
        }
        return Ok(Reward::with_info(0.0, info(0)));
    };
    let value = match cfg.mode.as_str() {
        "all" => f64::from(u8::from(passed == total)),
        _ => f64::from(passed) / f64::from(total),
    };
    Ok(Reward::with_info(value, info(passed)))
}

/// Canonical form for comparing answers: trimmed, whitespace collapsed, lower-cased; integers
/// without sign noise or leading zeros.
fn canonical(s: &str) -> String {
    let t = s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let t = t.trim_end_matches('.').replace(',', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let d = digits.trim_start_matches('0');
        let d = if d.is_empty() { "0" } else { d };
        return if neg && d != "0" { format!("-{d}") } else { d.to_string() };
    }
    t
}

/// True when `given` matches `reference`: the same canonical text, or both non-integer numbers
/// within a relative 1e-9.
pub fn answers_match(given: &str, reference: &str) -> bool {
    let (g, r) = (canonical(given), canonical(reference));
    if g == r {
        return true;
    }
    match (g.parse::<f64>(), r.parse::<f64>()) {
        (Ok(a), Ok(b)) if a.is_finite() && b.is_finite() && (g.contains('.') || r.contains('.') || g.contains('e')) => {
            (a - b).abs() <= 1e-9 * b.abs().max(1.0)
        }
        _ => false,
    }
}

fn step_sum(tr: &Trajectory, key: &str) -> f64 {
    // A fold from +0.0: `Sum` for floats starts at -0.0, so an empty sum (scoring outside an
    // episode, as `rlvr score` does) printed `-0.0`.
    tr.steps.iter().filter_map(|s| s.get(key).and_then(Value::as_f64)).fold(0.0, |a, b| a + b)
}

fn limit_hits(tr: &Trajectory, kind: LimitKind) -> f64 {
    tr.steps
        .iter()
        .filter_map(|s| s.get("limits").and_then(Value::as_array))
        .flatten()
        .filter(|l| l.as_str() == Some(kind.name()))
        .count() as f64
}

/// The sandbox metrics (weight 0): `executions`, `fuel_used`, and `limit/<kind>` per kind.
pub fn metrics(mut rubric: Rubric) -> Rubric {
    rubric = rubric
        .metric("executions", |_: &Task, tr: &Trajectory| Ok(Reward::from(step_sum(tr, "executions"))))
        .metric("fuel_used", |_: &Task, tr: &Trajectory| Ok(Reward::from(step_sum(tr, "fuel_used"))));
    for kind in LimitKind::ALL {
        rubric = rubric.metric(format!("limit/{}", kind.name()), move |_: &Task, tr: &Trajectory| {
            Ok(Reward::from(limit_hits(tr, kind)))
        });
    }
    rubric
}

/// Builds `code/unit-tests`: the term `unit_tests` (weight 1) and the sandbox metrics.
pub fn unit_tests_rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: UnitTestsConfig = parse_config(config)?;
    if cfg.mode != "fraction" && cfg.mode != "all" {
        return Err(format!("unknown mode `{}`; use fraction or all", cfg.mode).into());
    }
    Ok(metrics(Rubric::new().term("unit_tests", 1.0, move |task: &Task, tr: &Trajectory| unit_tests(task, tr, &cfg))))
}

/// Settings of `code/answer-match` (none yet; the table must be empty).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerMatchConfig {}

/// Builds `code/answer-match`: the term `answer_match` (weight 1), the metric `format` (an
/// answer tag was given) and the sandbox metrics.
pub fn answer_match_rubric(config: &Config) -> Result<Rubric, BoxError> {
    let _: AnswerMatchConfig = parse_config(config)?;
    Ok(metrics(
        Rubric::new()
            .term("answer_match", 1.0, |task: &Task, tr: &Trajectory| {
                let reference = task.str_field("answer")?;
                let Some(given) = answer_tag(tr.final_answer()) else {
                    return Ok(Reward::with_info(0.0, json!({ "answer": null })));
                };
                Ok(Reward::with_info(f64::from(u8::from(answers_match(given, reference))), json!({ "answer": given })))
            })
            .metric("format", |_: &Task, tr: &Trajectory| Ok(Reward::from(answer_tag(tr.final_answer()).is_some()))),
    ))
}

/// Registers `code/unit-tests` and `code/answer-match`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "code/unit-tests",
        "the task's tests (HumanEval check() or a list of asserts) run against the answer's code in the sandbox",
        unit_tests_rubric,
    );
    registry.reward(
        "code/answer-match",
        "the <answer> equals the task's `answer` (integers canonical, decimals to 1e-9), plus sandbox metrics",
        answer_match_rubric,
    );
    registry.defaults(rlvr_engine::Kind::Reward, "code/unit-tests", UnitTestsConfig::default());
    registry.defaults(rlvr_engine::Kind::Reward, "code/answer-match", AnswerMatchConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_match_canonically() {
        assert!(answers_match(" 0042 ", "42"));
        assert!(answers_match("1,000", "1000"));
        assert!(answers_match("-0", "0"));
        assert!(answers_match("0.30000000000000004", "0.3"));
        assert!(!answers_match("43", "42"));
        assert!(answers_match("42.0", "42"));
        assert!(answers_match("4.2e1", "42"));
        assert!(answers_match("Paris", "paris"));
    }

    #[test]
    fn program_is_the_last_code_block_of_the_answer() {
        assert_eq!(
            program("```python\na=1\n```\n<answer>\n```python\ndef f(): pass\n```\n</answer>"),
            "def f(): pass\n"
        );
        assert_eq!(program("```python\nx\n```\n```python\ny\n```"), "y\n");
        assert_eq!(program("return 1"), "return 1");
    }

    #[test]
    fn missing_tests_is_a_verifier_error() {
        let r = unit_tests_rubric(&Config::new()).unwrap();
        let s = r.score(&Task::new("t", json!({})), &Trajectory::from_completion(vec![], "x"));
        assert_eq!(s.total(), None);
        assert!(s.error().unwrap().contains("missing field `tests`"));
    }

    #[test]
    fn metrics_read_step_infos() {
        let mut tr = Trajectory::from_completion(vec![], "<answer>1</answer>");
        tr.steps = vec![
            json!({"executions": 2, "fuel_used": 100, "limits": ["fuel", "deadline"]}),
            json!({"executions": 1, "fuel_used": 5, "limits": ["fuel"]}),
        ];
        let s = answer_match_rubric(&Config::new()).unwrap().score(&Task::new("t", json!({"answer": "1"})), &tr);
        assert_eq!(s.total(), Some(1.0));
        assert_eq!(s.get("executions"), Some(3.0));
        assert_eq!(s.get("fuel_used"), Some(105.0));
        assert_eq!(s.get("limit/fuel"), Some(2.0));
        assert_eq!(s.get("limit/deadline"), Some(1.0));
        assert_eq!(s.get("limit/memory"), Some(0.0));
        // Outside an episode (`rlvr score`) the sums are +0, never -0.
        let s = answer_match_rubric(&Config::new())
            .unwrap()
            .score(&Task::new("t", json!({"answer": "1"})), &Trajectory::from_completion(vec![], "1"));
        assert!(s.get("executions").unwrap().is_sign_positive() && s.get("fuel_used").unwrap().is_sign_positive());
    }

    fn score(tests: Value, completion: &str) -> rlvr_engine::Scored {
        let task = Task::new("t", json!({"tests": tests}));
        unit_tests_rubric(&Config::new()).unwrap().score(&task, &Trajectory::from_completion(vec![], completion))
    }

    #[test]
    fn failures_are_reported_without_the_cost_of_importing_traceback() {
        // The program raises: its traceback names the frame and the exception.
        let s = score(json!(["assert f() == 1"]), "```python\ndef f():\n    raise KeyError('k')\nf()\n```");
        let info = &s.terms[0].info;
        assert_eq!((s.total(), info["stage"].as_str()), (Some(0.0), Some("program")), "{info}");
        let stderr = info["stderr"].as_str().unwrap();
        assert!(stderr.contains(", line 2, in f") && stderr.ends_with("KeyError: 'k'\n"), "{stderr}");
        // A failing HumanEval-style check prints through the same light printer.
        let task = Task::new("t", json!({"tests": "def check(c):\n    assert c(1) == 2, 'off by one'", "entry_point": "f"}));
        let s = unit_tests_rubric(&Config::new())
            .unwrap()
            .score(&task, &Trajectory::from_completion(vec![], "```python\ndef f(x):\n    return x\n```"));
        let stderr = s.terms[0].info["stderr"].as_str().unwrap().to_string();
        assert_eq!(s.total(), Some(0.0));
        assert!(stderr.ends_with("AssertionError: off by one\n"), "{stderr}");
        // The printer binds no name: a program that forgot `import sys` fails as anywhere else.
        let s = score(json!(["assert v > 0"]), "```python\nv = len(sys.argv)\n```");
        assert_eq!(s.total(), Some(0.0));
        assert!(s.terms[0].info["stderr"].as_str().unwrap().contains("NameError"), "{:?}", s.terms[0].info);
        let s = score(json!(["assert v > 0"]), "```python\nimport sys\nv = len(sys.argv)\n```");
        assert_eq!(s.total(), Some(1.0));
    }
}
