//! `rlvr eval`, `openai/chat-v0` and `rlvr serve --model`: evaluation without training, of
//! any policy, a served model's included.

use rlvr::experiment::{EvalOptions, Experiment, eval};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

const ARITH: &str = r#"
[run]
name = "e"
iterations = 1
[env]
id = "arith/arith-v0"
[env.config]
max_digits = 1
ops = ["+"]
[rollout]
max_new_tokens = 32
"#;

fn exp(policy: &str) -> Experiment {
    Experiment::parse(&format!("{ARITH}\n{policy}"), "test", &[]).unwrap()
}

fn metrics(dir: &Path) -> std::collections::BTreeMap<String, f64> {
    let db = rlvr::store::RunStore::open_read_only(dir).unwrap();
    rlvr::store::read_metrics(&db).unwrap().into_iter().map(|(k, v)| (k, v[0].1)).collect()
}

#[test]
fn eval_scores_every_held_out_task_and_writes_a_run_db() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = exp("[policy]\nid = \"scripted/gold-v0\"\n[policy.config]\naccuracy = 0.0");
    let options = EvalOptions { split: rlvr::engine::Split::Test, n: Some(12), pass_k: 3 };
    let dir = tmp.path().join("out");
    let s = eval(&rlvr::builtin_registry(), &exp, &dir, &options).unwrap();
    // Greedy turns of the scripted player are gold when accuracy > 0.5 and wrong otherwise.
    assert_eq!((s.tasks, s.metrics["eval/accuracy"], s.metrics["eval/pass@3"]), (12, 0.0, 0.0));
    let stored = metrics(&dir);
    assert_eq!(stored["eval/tasks"], 12.0);
    assert_eq!(stored["eval/rollout/episodes"], 12.0);
    assert!(stored.contains_key("eval/reward/exact_match"), "{stored:?}");
    // The same directory is not overwritten.
    let again = eval(&rlvr::builtin_registry(), &exp, &dir, &options).unwrap_err().to_string();
    assert!(again.contains("already holds a run.db"), "{again}");
    // Through the binary, with the gold player right on every turn; `rlvr report` reads it.
    std::fs::write(
        tmp.path().join("e.toml"),
        format!("{ARITH}\n[policy]\nid = \"scripted/gold-v0\"\n[policy.config]\naccuracy = 1.0"),
    )
    .unwrap();
    let (code, out, err) = crate::rlvr(&["eval", "e.toml", "--n", "10", "--out", "cli"], tmp.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("10 tasks") && out.contains("accuracy (greedy)  1.0000"), "{out}");
    let (code, _, err) = crate::rlvr(&["report", "cli"], tmp.path());
    assert_eq!(code, 0, "{err}");
    // Bad input is refused before anything is written.
    let (code, _, err) = crate::rlvr(&["eval", "e.toml", "--n", "0", "--out", "zero"], tmp.path());
    assert_eq!(code, 2, "{err}");
    assert!(!tmp.path().join("zero").exists());
}

/// A stand-in OpenAI server: answers the first `answers` requests with `<answer>7</answer>`,
/// records their bodies, then goes away (the listener is closed: connections are refused).
fn mock_server(answers: usize) -> (String, std::thread::JoinHandle<Vec<Value>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for stream in listener.incoming().take(answers) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            let n = body["n"].as_u64().unwrap_or(1);
            let choices: Vec<Value> = (0..n)
                .map(|i| json!({"index": i, "message": {"role": "assistant", "content": "<answer>7</answer>"}, "finish_reason": "stop"}))
                .collect();
            bodies.push(body);
            let reply = json!({"id": "x", "object": "chat.completion", "choices": choices}).to_string();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            )
            .unwrap();
        }
        bodies
    });
    (url, handle)
}

/// The requests follow OpenAI's protocol, and a server that goes away mid-run fails the
/// rollouts it leaves unanswered: they are counted, and the evaluation ends cleanly.
#[test]
fn openai_policy_speaks_the_protocol_and_survives_the_server_going_away() {
    let (url, server) = mock_server(4);
    let tmp = tempfile::tempdir().unwrap();
    let exp = exp(&format!(
        "[policy]\nid = \"openai/chat-v0\"\n[policy.config]\nbase_url = \"{url}\"\nmodel = \"m\"\n\
         concurrency = 1\nretries = 1\nbackoff_s = 0.01\nstop = [\"</answer>x\"]"
    ));
    let options = EvalOptions { split: rlvr::engine::Split::Test, n: Some(10), pass_k: 0 };
    let s = eval(&rlvr::builtin_registry(), &exp, &tmp.path().join("o"), &options).unwrap();
    assert_eq!(s.metrics["eval/failed"], 6.0, "{:?}", s.metrics);
    assert_eq!(s.metrics["eval/rollout/episodes"], 10.0);
    let bodies = server.join().unwrap();
    assert_eq!(bodies.len(), 4);
    let b = &bodies[0];
    assert_eq!(
        (b["model"].as_str(), b["temperature"].as_f64(), b["max_tokens"].as_u64()),
        (Some("m"), Some(0.0), Some(32))
    );
    assert_eq!(b["stop"], json!(["</answer>x"]));
    assert!(b["seed"].is_i64(), "{b}");
    let roles: Vec<&str> = b["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles.last(), Some(&"user"), "{b}");
    // The failures say what happened, in the samples table.
    let db = rlvr::store::RunStore::open_read_only(&tmp.path().join("o")).unwrap();
    let errors: Vec<String> = db
        .prepare("SELECT failure FROM samples WHERE status = 'failed'")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(errors.len(), 6);
    assert!(errors[0].starts_with("Generate: ") && errors[0].contains(&url), "{}", errors[0]);
}

/// `rlvr serve --model`, started as a user starts it; stopped when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    fn start(model: &str, name: &str) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rlvr"))
            .args(["serve", "--port", "0", "--model", model, "--served-model-name", name])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("the server said where it listens").unwrap();
            if let Some(i) = line.find("listening on http://") {
                let rest = &line[i + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Served { child, url }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openai/chat-v0` against `rlvr serve --model preset:tiny` on loopback: an arithmetic and a
/// multi-turn tools evaluation finish with no failed rollout, the sampled token ids and
/// log-probabilities come back, and the server going away mid-way fails what is left.
#[test]
fn openai_policy_evaluates_a_model_served_by_rlvr_serve() {
    let mut server = Served::start("preset:tiny", "tiny");
    let tmp = tempfile::tempdir().unwrap();
    let policy = format!(
        "[policy]\nid = \"openai/chat-v0\"\n[policy.config]\nbase_url = \"{}/v1\"\nmodel = \"tiny\"\n\
         logprobs = true\nreturn_token_ids = true\nn = 4",
        server.url
    );
    let exp_a = exp(&policy);
    let options = EvalOptions { split: rlvr::engine::Split::Test, n: Some(8), pass_k: 4 };
    let s = eval(&rlvr::builtin_registry(), &exp_a, &tmp.path().join("a"), &options).unwrap();
    assert_eq!((s.metrics["eval/failed"], s.metrics["eval/sampled_failed"]), (0.0, 0.0), "{:?}", s.metrics);
    // 8 greedy episodes of up to 32 tokens: the tokens the server sampled are on the trajectories.
    let tokens = s.metrics["eval/rollout/policy_tokens"];
    assert!(tokens > 0.0 && tokens <= 8.0 * 32.0, "{tokens}");
    if cfg!(feature = "tools") {
        let tools = std::fs::read_to_string(crate::repo("examples/eval/tools-openai.toml"))
            .unwrap()
            .replace("http://127.0.0.1:8000", &server.url)
            .replace("preset:smollm2", "tiny");
        let mut exp_t = Experiment::parse(&tools, "tools", &[]).unwrap();
        exp_t.rollout.max_new_tokens = 24;
        for mode in ["text", "openai"] {
            exp_t.policy.config.insert("tools".into(), mode.into());
            let options = EvalOptions { split: rlvr::engine::Split::Test, n: Some(4), pass_k: 0 };
            let s = eval(&rlvr::builtin_registry(), &exp_t, &tmp.path().join(mode), &options).unwrap();
            assert_eq!((s.tasks, s.metrics["eval/failed"]), (4, 0.0), "{mode}: {:?}", s.metrics);
        }
    }
    // The server goes away: every rollout fails, is counted, and the evaluation still ends.
    let _ = server.child.kill();
    let _ = server.child.wait();
    let dead = exp(&format!("{policy}\nretries = 0"));
    let options = EvalOptions { split: rlvr::engine::Split::Test, n: Some(3), pass_k: 0 };
    let s = eval(&rlvr::builtin_registry(), &dead, &tmp.path().join("dead"), &options).unwrap();
    assert_eq!(s.metrics["eval/failed"], 3.0);
    // Training refuses a policy it cannot update.
    let mut train = exp(&policy);
    train.train = Some(Default::default());
    let e = rlvr::experiment::run(&rlvr::builtin_registry(), &train, &tmp.path().join("t"), false, &mut ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("trainable"), "{e}");
}

/// `run.eval_by` splits every evaluation by a field of the task: here causal queries by level,
/// with training drawn from one level only (`train_levels`) and the held-out split from all three,
/// the setup of the causal-RLVR paper's generalisation experiment.
#[test]
fn eval_by_splits_accuracy_by_a_task_field() {
    const CAUSAL: &str = r#"
[run]
name = "levels"
iterations = 1
eval_by = "query.level"
[env]
id = "causal/query-v0"
[env.config]
variables = 7
train_levels = ["associational"]
test_size = 30
[rollout]
max_tokens = 8192
max_new_tokens = 1024
[policy]
id = "scripted/gold-v0"
[policy.config]
accuracy = 0.6
"#;
    let registry = rlvr::builtin_registry();
    let tmp = tempfile::tempdir().unwrap();
    let exp = Experiment::parse(CAUSAL, "test", &[]).unwrap();
    let options = EvalOptions { split: rlvr::engine::Split::Test, n: Some(30), pass_k: 4 };
    let m = eval(&registry, &exp, &tmp.path().join("test"), &options).unwrap().metrics;
    let levels = ["associational", "interventional", "counterfactual"];
    let mut tasks = 0.0;
    let mut sampled_right = 0.0;
    for level in levels {
        // The scripted player's greedy turns are gold; its samples are right 60% of the time.
        assert_eq!(m[&format!("eval/accuracy/{level}")], 1.0, "{m:?}");
        let n = m[&format!("eval/tasks/{level}")];
        tasks += n;
        sampled_right += m[&format!("eval/sampled_accuracy/{level}")] * n * 4.0;
    }
    assert_eq!(tasks, 30.0, "every held-out task is in one level: {m:?}");
    assert!((sampled_right / 120.0 - m["eval/sampled_accuracy"]).abs() < 1e-9, "{m:?}");
    assert!(levels.iter().any(|l| m[&format!("eval/sampled_accuracy/{l}")] < 1.0), "{m:?}");
    // The training split holds the one training level.
    let options = EvalOptions { split: rlvr::engine::Split::Train, n: Some(20), pass_k: 0 };
    let m = eval(&registry, &exp, &tmp.path().join("train"), &options).unwrap().metrics;
    let by_level: Vec<&String> = m.keys().filter(|k| k.starts_with("eval/tasks/")).collect();
    assert_eq!(by_level, ["eval/tasks/associational"], "{m:?}");
    // A path with an empty key is refused before anything is written; a field the tasks lack
    // is named.
    let bad = Experiment::parse(CAUSAL, "test", &["run.eval_by=\"query.\"".into()]).unwrap();
    let err = eval(&registry, &bad, &tmp.path().join("bad"), &options).unwrap_err().to_string();
    assert!(err.contains("run.eval_by") && !tmp.path().join("bad").exists(), "{err}");
    let missing = Experiment::parse(CAUSAL, "test", &["run.eval_by=\"query.rung\"".into()]).unwrap();
    let err = eval(&registry, &missing, &tmp.path().join("missing"), &options).unwrap_err().to_string();
    assert!(err.contains("no field \"rung\""), "{err}");
}
