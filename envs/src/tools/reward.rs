//! Tool-call rewards.
//!
//! - `tools/ast-match`: BFCL's AST checker on the model's calls. The task has BFCL's shape,
//!   `{"functions": [...], "ground_truth": [{"func": {"param": [acceptable values]}}],
//!   "category": "simple" | "multiple" | "parallel" | "parallel_multiple" | "live_..."}`; the
//!   completion is Python-call syntax or `<tool_call>` JSON. Term `ast_match` is 1 or 0, and its
//!   info names the failure: `category` (one of [`category::ALL`]), `bfcl_error_type` (BFCL's own
//!   name) and `error`. Metrics `error_<category>` are 1 when that category failed the match, so
//!   their means are per-category error rates.
//! - `tools/exec-match`: replays the calls of every assistant turn on the executable tools of a
//!   `tools/exec-v0` task and compares the final state and answer with the gold ones.

use rlvr_engine::{BoxError, Config, Registry, Reward, RewardError, Rubric, Task, Trajectory, parse_config};
use super::ast_check::{self, Mismatch, category};
use super::exec;
use super::parse::{Call, parse_calls};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Settings of `tools/ast-match` (none yet; unknown keys are rejected).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AstMatchConfig {}

/// The verdict of BFCL's checker on one completion: the calls read, and the mismatch if any.
pub fn ast_verdict(task: &Task, completion: &str) -> Result<(Vec<Call>, Option<Mismatch>), RewardError> {
    // The three fields in one pass over the task's keys rather than three lookups: about 120
    // fewer instructions per verdict (callgrind), some 2% of the whole.
    let (mut functions, mut truth, mut cat) = (None, None, None);
    if let Value::Object(m) = &task.data {
        for (k, v) in m {
            match k.as_str() {
                "functions" => functions = Some(v),
                "ground_truth" => truth = Some(v),
                "category" => cat = Some(v),
                _ => {}
            }
        }
    }
    let functions = array_field(task, "functions", functions)?;
    let truth = array_field(task, "ground_truth", truth)?;
    let cat = match cat {
        Some(Value::String(c)) => c.as_str(),
        _ => task.str_field("category")?,
    };
    let calls = match parse_calls(completion) {
        Ok(c) => c,
        Err(e) => {
            let m = Mismatch {
                category: category::MALFORMED_SYNTAX,
                bfcl_error_type: "ast_decoder:decoder_failed",
                message: format!("Invalid syntax. Failed to decode AST. {e}"),
            };
            return Ok((Vec::new(), Some(m)));
        }
    };
    let verdict =
        ast_check::check(functions, truth, cat, &calls).map_err(|e| RewardError(format!("task {}: {e}", task.id)))?;
    Ok((calls, verdict.err()))
}

fn array_field<'a>(task: &Task, key: &str, value: Option<&'a Value>) -> Result<&'a [Value], RewardError> {
    match value {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(RewardError(format!("task {}: field `{key}` must be an array", task.id))),
        None => Err(RewardError(format!("task {}: missing field `{key}`", task.id))),
    }
}

/// Builds `tools/ast-match`: `ast_match` (weight 1) and the metrics `error_<category>`, all
/// from one verdict per completion.
pub fn ast_rubric(config: &Config) -> Result<Rubric, BoxError> {
    let _: AstMatchConfig = parse_config(config)?;
    let terms = std::iter::once(("ast_match".to_string(), 1.0))
        .chain(category::ALL.iter().map(|cat| (format!("error_{cat}"), 0.0)));
    Ok(Rubric::new().group(terms, |task: &Task, tr: &Trajectory| {
        let (calls, mismatch) = ast_verdict(task, tr.final_answer())?;
        Ok(ast_rewards(&calls, mismatch.as_ref()))
    }))
}

/// The rewards of `tools/ast-match` from one verdict: `ast_match`, then one per category.
fn ast_rewards(calls: &[Call], mismatch: Option<&Mismatch>) -> Vec<Reward> {
    let calls: Vec<String> = calls.iter().map(Call::to_python).collect();
    let mut out = Vec::with_capacity(1 + category::ALL.len());
    out.push(match mismatch {
        None => Reward::with_info(1.0, json!({ "category": null, "calls": calls })),
        Some(m) => Reward::with_info(
            0.0,
            json!({ "category": m.category, "bfcl_error_type": m.bfcl_error_type, "error": m.message, "calls": calls }),
        ),
    });
    out.extend(category::ALL.iter().map(|cat| Reward::from(mismatch.is_some_and(|m| m.category == *cat))));
    out
}

/// Builds `tools/exec-match`: `exec_match` (weight 1: final state and answer equal the gold
/// ones), and the metrics `answer_match`, `state_match` and `tool_errors` (calls that failed).
pub fn exec_rubric(config: &Config) -> Result<Rubric, BoxError> {
    let _: AstMatchConfig = parse_config(config)?;
    let terms = [("exec_match", 1.0), ("answer_match", 0.0), ("state_match", 0.0), ("tool_errors", 0.0)];
    Ok(Rubric::new().group(terms, |task: &Task, tr: &Trajectory| {
        let turns: Vec<&str> = tr.assistant_messages().map(|m| m.content.as_str()).collect();
        let r = exec::replay(task, &turns).map_err(|e| RewardError(format!("task {}: {e}", task.id)))?;
        Ok(exec_rewards(&r))
    }))
}

/// The rewards of `tools/exec-match` from one replay, in the order of its terms.
fn exec_rewards(r: &exec::Replay) -> Vec<Reward> {
    let ok = r.answer_match && r.state_match;
    vec![
        Reward::with_info(f64::from(u8::from(ok)), serde_json::to_value(r).unwrap_or(Value::Null)),
        Reward::from(r.answer_match),
        Reward::from(r.state_match),
        Reward::from(r.errors.len() as f64),
    ]
}

/// Registers `tools/ast-match` and `tools/exec-match`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "tools/ast-match",
        "BFCL's AST checker: calls match the ground truth's acceptable values (simple, multiple, parallel)",
        ast_rubric,
    );
    registry.reward(
        "tools/exec-match",
        "replays the calls on the executable tools: final state and answer equal the gold ones",
        exec_rubric,
    );
    registry.defaults(rlvr_engine::Kind::Reward, "tools/ast-match", AstMatchConfig::default());
    registry.defaults(rlvr_engine::Kind::Reward, "tools/exec-match", AstMatchConfig::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task::new(
            "0",
            json!({
                "functions": [{"name": "area", "description": "", "parameters": {"type": "dict",
                    "properties": {"r": {"type": "float"}, "unit": {"type": "string"}}, "required": ["r"]}}],
                "ground_truth": [{"area": {"r": [2.0], "unit": ["cm", ""]}}],
                "category": "simple"
            }),
        )
    }

    fn score(completion: &str) -> rlvr_engine::Scored {
        ast_rubric(&Config::new()).unwrap().score(&task(), &Trajectory::from_completion(vec![], completion))
    }

    #[test]
    fn match_mismatch_and_categories() {
        assert_eq!(score("[area(r=2)]").total(), Some(1.0));
        assert_eq!(
            score("<tool_call>{\"name\": \"area\", \"arguments\": {\"r\": 2.0, \"unit\": \"CM\"}}</tool_call>").total(),
            Some(1.0)
        );
        let s = score("[area(r=3)]");
        assert_eq!(s.total(), Some(0.0));
        assert_eq!(s.terms[0].info["category"], "value_not_allowed");
        assert_eq!(s.terms[0].info["bfcl_error_type"], "value_error:others");
        assert_eq!(s.get("error_value_not_allowed"), Some(1.0));
        assert_eq!(s.get("error_wrong_type"), Some(0.0));
        let s = score("area(r=");
        assert_eq!(s.terms[0].info["category"], "malformed_syntax");
        assert_eq!(s.get("error_malformed_syntax"), Some(1.0));
    }

    /// The terms as they were computed before they shared one verdict: each on its own.
    fn per_term(task: &Task, completion: &str) -> Vec<(String, f64, Value)> {
        let (calls, mismatch) = ast_verdict(task, completion).unwrap();
        let calls: Vec<String> = calls.iter().map(Call::to_python).collect();
        let info = match &mismatch {
            None => json!({ "category": null, "calls": calls }),
            Some(m) => {
                json!({ "category": m.category, "bfcl_error_type": m.bfcl_error_type, "error": m.message, "calls": calls })
            }
        };
        let mut out = vec![("ast_match".to_string(), if mismatch.is_none() { 1.0 } else { 0.0 }, info)];
        for cat in category::ALL {
            let (_, m) = ast_verdict(task, completion).unwrap();
            out.push((
                format!("error_{cat}"),
                if m.is_some_and(|m| m.category == cat) { 1.0 } else { 0.0 },
                Value::Null,
            ));
        }
        out
    }

    #[test]
    fn terms_from_one_verdict_agree_with_terms_computed_alone() {
        let rubric = ast_rubric(&Config::new()).unwrap();
        let names: Vec<&str> = rubric.terms().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ast_match",
                "error_malformed_syntax",
                "error_unknown_tool",
                "error_wrong_tool",
                "error_missing_required",
                "error_wrong_type",
                "error_value_not_allowed",
                "error_extra_parameter",
                "error_wrong_count"
            ]
        );
        let weights: Vec<f64> = rubric.terms().iter().map(|t| t.weight).collect();
        assert_eq!(weights, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let fixture = include_str!("fixture/bfcl/cases.jsonl");
        let mut seen = std::collections::BTreeSet::new();
        for (i, line) in fixture.lines().enumerate() {
            let case: Value = serde_json::from_str(line).unwrap();
            let task = Task::new(i.to_string(), case["task"].clone());
            let completion = case["completion"].as_str().unwrap();
            let s = rubric.score(&task, &Trajectory::from_completion(vec![], completion));
            let got: Vec<(String, f64, Value)> =
                s.terms.iter().map(|t| (t.name.clone(), t.value.clone().unwrap(), t.info.clone())).collect();
            assert_eq!(got, per_term(&task, completion), "line {}", i + 1);
            seen.insert(s.terms[0].info["category"].as_str().unwrap_or("match").to_string());
        }
        assert!(seen.len() >= 6, "the fixture exercises most categories: {seen:?}");
    }

    /// `tools/exec-match` as it was computed before its terms shared one replay: each term
    /// replays the episode on its own.
    fn exec_per_term(task: &Task, tr: &Trajectory) -> Vec<(String, Result<f64, String>, Value)> {
        let replay = || {
            let turns: Vec<&str> = tr.assistant_messages().map(|m| m.content.as_str()).collect();
            exec::replay(task, &turns).map_err(|e| format!("task {}: {e}", task.id))
        };
        let term = |name: &str, r: Result<(f64, Value), String>| match r {
            Ok((v, info)) => (name.to_string(), Ok(v), info),
            Err(e) => (name.to_string(), Err(e), Value::Null),
        };
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        vec![
            term(
                "exec_match",
                replay().map(|r| (b(r.answer_match && r.state_match), serde_json::to_value(&r).unwrap())),
            ),
            term("answer_match", replay().map(|r| (b(r.answer_match), Value::Null))),
            term("state_match", replay().map(|r| (b(r.state_match), Value::Null))),
            term("tool_errors", replay().map(|r| (r.errors.len() as f64, Value::Null))),
        ]
    }

    #[test]
    fn exec_terms_from_one_replay_agree_with_terms_computed_alone() {
        use rlvr_engine::{Message, Split};
        let rubric = exec_rubric(&Config::new()).unwrap();
        let names: Vec<&str> = rubric.terms().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["exec_match", "answer_match", "state_match", "tool_errors"]);
        let weights: Vec<f64> = rubric.terms().iter().map(|t| t.weight).collect();
        assert_eq!(weights, [1.0, 0.0, 0.0, 0.0]);
        let spec = exec::spec(&toml::from_str("levels = [1, 2, 3]").unwrap(), 7).unwrap();
        let mut outcomes = std::collections::BTreeSet::new();
        for i in 0..40u64 {
            let task = spec.tasks.task(Split::Train, i).unwrap();
            let mut gold = vec![Message::user("q")];
            loop {
                let m = exec::gold(&task, &gold).unwrap();
                let done = m.starts_with("<answer>");
                gold.push(Message::assistant(m));
                if done {
                    break;
                }
                gold.push(Message::tool("tools", "ok"));
            }
            // The gold episode, then variants that fail in different ways.
            let n = gold.len();
            let mut episodes = vec![gold.clone()];
            episodes.push(gold[..n - 1].to_vec());
            let mut wrong = gold.clone();
            wrong[n - 1] = Message::assistant("<answer>-1</answer>");
            episodes.push(wrong);
            let mut broken = gold.clone();
            broken.insert(1, Message::assistant("[launch(x=1), inventory_remove(item='nope', quantity=-3)]"));
            broken.insert(2, Message::assistant("<tool_call>{\"name\": "));
            episodes.push(broken);
            if n > 2 {
                episodes.push([&gold[..1], &gold[n - 1..]].concat());
            }
            for messages in episodes {
                let tr = Trajectory { messages, ..Trajectory::default() };
                let s = rubric.score(&task, &tr);
                let got: Vec<(String, Result<f64, String>, Value)> =
                    s.terms.iter().map(|t| (t.name.clone(), t.value.clone(), t.info.clone())).collect();
                assert_eq!(got, exec_per_term(&task, &tr), "task {i}");
                outcomes.insert(got.iter().map(|t| t.1.clone().unwrap().to_string()).collect::<Vec<_>>().join(","));
            }
        }
        assert!(outcomes.len() >= 4, "the episodes reach several outcomes: {outcomes:?}");
        let broken = Task::new("b", json!({"tools": [], "answer": "1", "state": {}}));
        let tr = Trajectory::from_completion(vec![], "<answer>1</answer>");
        let s = rubric.score(&broken, &tr);
        let got: Vec<(String, Result<f64, String>, Value)> =
            s.terms.iter().map(|t| (t.name.clone(), t.value.clone(), t.info.clone())).collect();
        assert_eq!(got, exec_per_term(&broken, &tr));
        assert!(got.iter().all(|t| t.1.as_ref().is_err_and(|e| e.contains("gold_state"))), "{got:?}");
    }

    #[test]
    fn broken_task_is_a_reward_error() {
        let s = ast_rubric(&Config::new()).unwrap().score(
            &Task::new("1", json!({"functions": [], "category": "simple"})),
            &Trajectory::from_completion(vec![], "f()"),
        );
        assert_eq!(s.total(), None);
        assert!(s.error().unwrap().contains("ground_truth"));
    }
}
