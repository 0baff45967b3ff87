//! The server in-process on loopback, driven over real sockets: OpenEnv sessions played to the
//! end by the environments' gold players, capacity and idle limits, a panicking plugin, bad
//! input, the bearer token, and the sandbox's run_code.

use rlvr_engine::{Action, EnvError, Environment, Message, Registry, Step, Task, VecTasks};
use rlvr_server::{Options, app, serve};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use tungstenite::Message as Ws;

/// An environment whose step panics: a plugin bug the server must contain.
struct Panics;

impl Environment for Panics {
    fn reset(&mut self, _: &Task, _: u64) -> Result<Vec<Message>, EnvError> {
        Ok(vec![Message::user("go")])
    }

    fn step(&mut self, _: &Action) -> Result<Step, EnvError> {
        panic!("plugin bug");
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    rlvr_envs::register(&mut r);
    rlvr_rewards::register(&mut r);
    r.env("test/panics-v0", "panics on step", |_, _| {
        let tasks = Arc::new(VecTasks { train: vec![Task::new("t", json!({"answer": "1"}))], test: vec![] });
        Ok(rlvr_engine::EnvSpec::new(tasks, || Ok(Panics), "answer/exact"))
    });
    r
}

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(options: Options) -> Server {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let (router, signal) = app(Arc::new(registry()), options).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, router, signal, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("the server starts");
    Server { addr, stop: Some(stop), thread: Some(thread) }
}

/// One HTTP/1.1 request; returns the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.unwrap_or("");
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn connect(addr: SocketAddr, prefix: &str) -> Socket {
    let (socket, _) = tungstenite::connect(format!("ws://{addr}{prefix}/ws")).unwrap();
    socket
}

fn exchange(ws: &mut Socket, msg: Value) -> Value {
    ws.send(Ws::Text(msg.to_string().into())).unwrap();
    next_frame(ws).expect("a reply")
}

fn next_frame(ws: &mut Socket) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Ws::Text(t)) => return Some(json_of(&t)),
            Ok(Ws::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (_, text) = http(addr, "GET", "/metrics", None, &[]);
    let line = text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' ')).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Plays an episode of `env` over a session with its gold player; returns the final frame.
fn play_gold(addr: SocketAddr, env: &str, index: u64) -> Value {
    let registry = registry();
    let spec = registry.make_env(env, &Default::default(), 0).unwrap();
    let gold = spec.gold.expect("a gold player");
    let mut ws = connect(addr, &format!("/envs/{env}"));
    let first = exchange(&mut ws, json!({"type": "reset", "data": {"index": index, "episode_id": "ep-1"}}));
    assert_eq!(first["type"], "observation", "{first}");
    let meta = &first["data"]["observation"]["metadata"];
    let task = Task::new(meta["task_id"].as_str().unwrap(), meta["task"].clone());
    let mut messages: Vec<Message> = serde_json::from_value(first["data"]["observation"]["messages"].clone()).unwrap();
    for turn in 0..20 {
        let answer = gold(&task, &messages).unwrap();
        let frame = exchange(&mut ws, json!({"type": "step", "data": {"message": answer}}));
        assert_eq!(frame["type"], "observation", "turn {turn}: {frame}");
        messages.push(Message::assistant(answer));
        messages
            .extend(serde_json::from_value::<Vec<Message>>(frame["data"]["observation"]["messages"].clone()).unwrap());
        if frame["data"]["done"] == json!(true) {
            let state = exchange(&mut ws, json!({"type": "state"}));
            assert_eq!(state["data"]["episode_id"], "ep-1");
            assert_eq!(state["data"]["step_count"], json!(turn + 1));
            ws.send(Ws::Text(json!({"type": "close"}).to_string().into())).unwrap();
            assert!(next_frame(&mut ws).is_none(), "close gets no reply, only the close");
            return frame;
        }
        assert_eq!(frame["data"]["reward"], Value::Null, "no reward before the end");
    }
    panic!("{env}: the gold player did not finish in 20 turns");
}

#[test]
fn gold_players_finish_multi_turn_episodes_over_sessions_with_full_reward() {
    let server = start(Options::default());
    for env in ["tools/exec-v0", "sql/text2sql-v0", "arith/arith-v0"] {
        for index in 0..3 {
            let last = play_gold(server.addr, env, index);
            assert_eq!(last["data"]["reward"], json!(1.0), "{env} #{index}: {last}");
            assert_eq!(last["data"]["observation"]["metadata"]["score"]["error"], Value::Null);
        }
    }
    // Every environment was dropped with its episode.
    assert_eq!(metric(server.addr, "rlvr_envs_live"), 0.0);
    assert_eq!(metric(server.addr, "rlvr_sessions_live"), 0.0);
}

#[test]
fn http_is_stateless_and_a_step_replays_its_reset_and_history() {
    let server = start(Options::default());
    let (status, body) = http(server.addr, "POST", "/envs/arith/arith-v0/reset", Some(r#"{"seed": 5}"#), &[]);
    assert_eq!(status, 200, "{body}");
    let reset = json_of(&body);
    assert_eq!((reset["done"].clone(), reset["reward"].clone()), (json!(false), Value::Null));
    let answer = reset["metadata"]["task"]["answer"].as_str().unwrap().to_string();
    let step = json!({"seed": 5, "action": {"message": format!("<answer>{answer}</answer>")}});
    let (status, body) = http(server.addr, "POST", "/envs/arith/arith-v0/step", Some(&step.to_string()), &[]);
    assert_eq!(status, 200, "{body}");
    let out = json_of(&body);
    assert_eq!((out["done"].clone(), out["reward"].clone()), (json!(true), json!(1.0)), "{out}");
    // The state of a stateless server is a fresh one; the schema names the three models.
    let (_, body) = http(server.addr, "GET", "/envs/arith/arith-v0/state", None, &[]);
    assert_eq!(json_of(&body)["step_count"], json!(0));
    let (_, body) = http(server.addr, "GET", "/envs/arith/arith-v0/schema", None, &[]);
    let schema = json_of(&body);
    assert!(schema["action"].is_object() && schema["observation"].is_object() && schema["state"].is_object());
    // Over HTTP, an episode already over in its history cannot be stepped.
    let step = json!({"seed": 5, "history": [format!("<answer>{answer}</answer>")], "action": {"message": "x"}});
    let (status, body) = http(server.addr, "POST", "/envs/arith/arith-v0/step", Some(&step.to_string()), &[]);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("ended at history[0]"), "{body}");
}

#[test]
fn capacity_and_idle_sessions_are_refused_and_closed_with_openenvs_errors() {
    let server = start(Options { max_sessions: 2, idle_timeout: Duration::from_millis(1500), ..Options::default() });
    let mut a = connect(server.addr, "/envs/arith/arith-v0");
    let mut b = connect(server.addr, "/envs/arith/arith-v0");
    assert_eq!(exchange(&mut a, json!({"type": "reset"}))["type"], "observation");
    assert_eq!(exchange(&mut b, json!({"type": "reset"}))["type"], "observation");
    let mut c = connect(server.addr, "/envs/arith/arith-v0");
    let refused = next_frame(&mut c).unwrap();
    assert_eq!(refused["data"]["code"], "CAPACITY_REACHED", "{refused}");
    assert_eq!(
        (refused["data"]["active_sessions"].clone(), refused["data"]["max_sessions"].clone()),
        (json!(2), json!(2))
    );
    assert!(next_frame(&mut c).is_none(), "then closed");
    assert_eq!(metric(server.addr, "rlvr_envs_live"), 2.0);
    // Both idle past the timeout: each gets a SESSION_ERROR, is closed, and frees its slot.
    for ws in [&mut a, &mut b] {
        let idled = next_frame(ws).unwrap();
        assert_eq!(idled["data"]["code"], "SESSION_ERROR", "{idled}");
        assert!(next_frame(ws).is_none());
    }
    assert_eq!(metric(server.addr, "rlvr_envs_live"), 0.0);
    assert_eq!(metric(server.addr, "rlvr_sessions_idled_total"), 2.0);
    let mut d = connect(server.addr, "/envs/arith/arith-v0");
    assert_eq!(exchange(&mut d, json!({"type": "reset"}))["type"], "observation");
}

#[test]
fn a_panicking_plugin_answers_its_own_request_and_the_server_goes_on() {
    let server = start(Options::default());
    let mut ws = connect(server.addr, "/envs/test/panics-v0");
    assert_eq!(exchange(&mut ws, json!({"type": "reset"}))["type"], "observation");
    let e = exchange(&mut ws, json!({"type": "step", "data": {"message": "x"}}));
    assert_eq!(e["data"]["code"], "EXECUTION_ERROR", "{e}");
    assert!(e["data"]["message"].as_str().unwrap().contains("plugin bug"), "{e}");
    // The session goes on: a fresh reset works.
    assert_eq!(exchange(&mut ws, json!({"type": "reset"}))["type"], "observation");
    let (status, body) =
        http(server.addr, "POST", "/envs/test/panics-v0/step", Some(r#"{"action": {"message": "x"}}"#), &[]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("plugin bug"), "{body}");
    assert_eq!(http(server.addr, "GET", "/health", None, &[]).0, 200);
}

#[test]
fn bad_messages_get_openenvs_error_codes_and_the_session_stays_open() {
    let server = start(Options::default());
    let mut ws = connect(server.addr, "/envs/arith/arith-v0");
    let cases = [
        ("not json", "INVALID_JSON"),
        (r#"{"type": "nope"}"#, "UNKNOWN_TYPE"),
        (r#"{}"#, "UNKNOWN_TYPE"),
        (r#"{"type": "step"}"#, "VALIDATION_ERROR"),
        (r#"{"type": "step", "data": {"action": {"message": "x"}}}"#, "VALIDATION_ERROR"),
        (r#"{"type": "step", "data": {"message": 3}}"#, "VALIDATION_ERROR"),
        (r#"{"type": "state", "data": {}}"#, "VALIDATION_ERROR"),
        (r#"{"type": "reset", "data": {"seed": -1}}"#, "VALIDATION_ERROR"),
        (r#"{"type": "reset", "data": {"task_id": 3}}"#, "VALIDATION_ERROR"),
        (r#"{"type": "reset", "data": {}, "extra": 1}"#, "VALIDATION_ERROR"),
        (r#"{"type": "step", "data": {"message": "x"}}"#, "VALIDATION_ERROR"),
    ];
    for (msg, code) in cases {
        ws.send(Ws::Text(msg.into())).unwrap();
        let e = next_frame(&mut ws).unwrap();
        assert_eq!((e["type"].as_str(), e["data"]["code"].as_str()), (Some("error"), Some(code)), "{msg}: {e}");
    }
    // An explicit task replaces the generator's.
    let r = exchange(&mut ws, json!({"type": "reset", "data": {"task": {"question": "2 + 2", "answer": "4"}}}));
    assert_eq!(r["data"]["observation"]["metadata"]["task"]["answer"], "4", "{r}");
    let done = exchange(&mut ws, json!({"type": "step", "data": {"message": "<answer>4</answer>"}}));
    assert_eq!(done["data"]["reward"], json!(1.0), "{done}");
    let again = exchange(&mut ws, json!({"type": "step", "data": {"message": "<answer>4</answer>"}}));
    assert!(again["data"]["message"].as_str().unwrap().contains("episode is over"), "{again}");
}

#[test]
fn http_bad_input_is_refused_with_a_status_and_a_reason() {
    let server = start(Options { max_body_bytes: 4096, ..Options::default() });
    let a = server.addr;
    assert_eq!(http(a, "POST", "/envs/arith/arith-v0/step", Some("{"), &[]).0, 422);
    assert_eq!(http(a, "POST", "/envs/arith/arith-v0/step", Some(r#"{"action": {}}"#), &[]).0, 422);
    assert_eq!(http(a, "POST", "/envs/arith/arith-v0/reset", Some(r#"{"split": "dev"}"#), &[]).0, 422);
    assert_eq!(http(a, "POST", "/run_code", Some(r#"{"language": "python"}"#), &[]).0, 422);
    assert_eq!(
        http(
            a,
            "POST",
            "/run_code",
            Some(&format!(r#"{{"code": "{}", "language": "python"}}"#, "x".repeat(5000))),
            &[]
        )
        .0,
        413
    );
    assert_eq!(http(a, "POST", "/score", Some(r#"{"reward": "no/such", "items": []}"#), &[]).0, 422);
    // An environment whose config cannot build says why at first use (python/env-v0 needs a file).
    let (status, body) = http(a, "POST", "/envs/python/env-v0/reset", None, &[]);
    assert_eq!(status, 500);
    assert!(body.contains("python/env-v0"), "{body}");
    assert_eq!(http(a, "GET", "/no/such/path", None, &[]).0, 404);
}

#[test]
fn the_bearer_token_guards_everything_but_health() {
    let server = start(Options { token: Some("s3cret".into()), ..Options::default() });
    let a = server.addr;
    assert_eq!(http(a, "GET", "/health", None, &[]).0, 200);
    assert_eq!(http(a, "GET", "/metrics", None, &[]).0, 401);
    assert_eq!(http(a, "GET", "/metrics", None, &[("Authorization", "Bearer wrong!")]).0, 401);
    assert_eq!(http(a, "GET", "/metrics", None, &[("Authorization", "Bearer s3cret")]).0, 200);
    let body = r#"{"code": "print(1)", "language": "python"}"#;
    assert_eq!(http(a, "POST", "/run_code", Some(body), &[]).0, 401);
    assert!(tungstenite::connect(format!("ws://{a}/envs/arith/arith-v0/ws")).is_err(), "the handshake is refused");
}

#[test]
fn run_code_feeds_stdin_and_answers_in_sandbox_fusions_shape() {
    let server = start(Options::default());
    let req = json!({"code": "a, b = map(int, input().split())\nprint(a * b)", "language": "python", "stdin": "6 7\n"});
    let (status, body) = http(server.addr, "POST", "/run_code", Some(&req.to_string()), &[]);
    assert_eq!(status, 200);
    let r = json_of(&body);
    assert_eq!((r["status"].as_str(), r["message"].as_str()), (Some("Success"), Some("")), "{r}");
    assert_eq!(r["run_result"]["stdout"], "42\n");
    assert_eq!(r["compile_result"], Value::Null);
    let req = json!({"code": "print('x' * 3_000_000)", "language": "python"});
    let r = json_of(&http(server.addr, "POST", "/run_code", Some(&req.to_string()), &[]).1);
    assert_eq!(r["run_result"]["limit"], "output", "{}", r["run_result"]["status"]);
    assert_eq!(r["run_result"]["stdout"].as_str().unwrap().len(), 1 << 20, "1 MiB kept, as SandboxFusion keeps");
    assert_eq!(metric(server.addr, "rlvr_programs_live"), 0.0);
    assert_eq!(metric(server.addr, "rlvr_sandbox_limits_total{limit=\"output\"}"), 1.0);
}

#[test]
fn score_answers_rlvr_score_rows_in_order() {
    let server = start(Options::default());
    let req = json!({"reward": "answer/exact", "items": [
        {"id": "a", "task": {"answer": "4"}, "completion": "<answer>4</answer>"},
        {"task": {"answer": "4"}, "completion": "<answer>5</answer>"},
        {"task": 3, "completion": "x"},
        {"task": {"gold": "4"}, "completion": "<answer>4</answer>"},
    ]});
    let (status, body) = http(server.addr, "POST", "/score", Some(&req.to_string()), &[]);
    assert_eq!(status, 200, "{body}");
    let r = json_of(&body);
    let rows = r["results"].as_array().unwrap();
    assert_eq!((rows[0]["id"].as_str(), rows[0]["reward"].as_f64()), (Some("a"), Some(1.0)));
    assert_eq!(rows[1]["reward"], json!(0.0));
    assert_eq!(rows[2]["error"], "item 2: field `task` must be an object");
    assert_eq!(rows[3]["reward"], Value::Null, "a verifier error is never a silent zero");
    assert_eq!(r["errors"], json!(2));
}

#[test]
fn shutdown_finishes_requests_in_flight_closes_sessions_and_refuses_new_work() {
    let mut server = start(Options::default());
    let addr = server.addr;
    let mut ws = connect(addr, "/envs/arith/arith-v0");
    assert_eq!(exchange(&mut ws, json!({"type": "reset"}))["type"], "observation");
    let slow = std::thread::spawn(move || {
        let req = json!({"code": "import time\ntime.sleep(1.5)\nprint('done')", "language": "python"});
        http(addr, "POST", "/run_code", Some(&req.to_string()), &[])
    });
    std::thread::sleep(Duration::from_millis(500));
    let _ = server.stop.take().unwrap().send(());
    // The session is told the server is going away.
    assert!(next_frame(&mut ws).is_none());
    let (status, body) = slow.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["run_result"]["stdout"], "done\n");
    server.thread.take().unwrap().join().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "nothing listens after shutdown");
}

#[test]
fn a_bad_environment_or_config_stops_the_server_before_it_listens() {
    for (id, config) in [("no/such-v0", ""), ("arith/arith-v0", "nonsense = 1")] {
        let options = Options { env: Some((id.into(), toml::from_str(config).unwrap())), ..Options::default() };
        let Err(err) = app(Arc::new(registry()), options) else { panic!("{id} with {config:?} was accepted") };
        assert!(err.to_string().contains(id), "{err}");
    }
}

/// A model that writes `ok` and records the size of each batch it is given; its first call
/// waits, so that the requests arriving meanwhile queue.
struct Recorder(Arc<std::sync::Mutex<Vec<usize>>>);

impl rlvr_server::ServedModel for Recorder {
    fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, String> {
        Ok(messages.iter().flat_map(|m| m.content.bytes().map(u32::from)).collect())
    }
    fn encode_text(&self, text: &str) -> Result<Vec<u32>, String> {
        Ok(text.bytes().map(u32::from).collect())
    }
    fn token_text(&self, id: u32) -> String {
        char::from_u32(id).map(String::from).unwrap_or_default()
    }
    fn context_length(&self) -> usize {
        64
    }
    fn generate(&mut self, batch: &[rlvr_server::GenSpec]) -> Vec<Result<rlvr_server::GenOut, String>> {
        let first = {
            let mut sizes = self.0.lock().unwrap();
            sizes.push(batch.len());
            sizes.len() == 1
        };
        if first {
            std::thread::sleep(Duration::from_millis(500));
        }
        batch
            .iter()
            .map(|s| {
                let n = s.max_new_tokens.min(2);
                Ok(rlvr_server::GenOut {
                    text: "ok"[..n].to_string(),
                    tokens: vec![111, 107][..n].to_vec(),
                    logprobs: vec![-0.5; n],
                    length: n < 2,
                })
            })
            .collect()
    }
}

/// Concurrent requests share one `generate` call; a prompt past the context length and a bad
/// field are refused in OpenAI's error shape.
#[test]
fn openai_requests_that_arrive_together_are_batched() {
    let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = sizes.clone();
    let model = rlvr_server::ModelServer::start(
        "m",
        Box::new(move || Ok(Box::new(Recorder(recorder)) as Box<dyn rlvr_server::ServedModel>)),
        32,
    )
    .unwrap();
    let server = start(Options { model: Some(model), ..Options::default() });
    let addr = server.addr;
    let ask = move |n: u32| {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": n, "logprobs": true});
        http(addr, "POST", "/v1/chat/completions", Some(&body.to_string()), &[])
    };
    let first = std::thread::spawn(move || ask(1));
    std::thread::sleep(Duration::from_millis(150));
    let rest: Vec<_> = (0..6).map(|_| std::thread::spawn(move || ask(2))).collect();
    let (status, body) = first.join().unwrap();
    assert_eq!(status, 200, "{body}");
    for r in rest {
        let (status, body) = r.join().unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["choices"].as_array().unwrap().len(), 2);
        assert_eq!(v["choices"][0]["message"]["content"], "ok");
        assert_eq!(v["choices"][1]["logprobs"]["content"][1]["token"], "k");
        assert_eq!(v["usage"], json!({"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}));
    }
    assert_eq!(*sizes.lock().unwrap(), vec![1, 12], "the six requests that queued went as one batch");
    let long = json!({"model": "m", "prompt": "x".repeat(100)}).to_string();
    let (status, body) = http(addr, "POST", "/v1/completions", Some(&long), &[]);
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("context length is 64"), "{v}");
    let (status, body) = http(addr, "POST", "/v1/chat/completions", Some(r#"{"messages": [], "n": 0}"#), &[]);
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(addr, "GET", "/v1/models", None, &[]);
    assert_eq!(status, 200);
}

/// A model that always calls `add`.
struct Caller;

impl rlvr_server::ServedModel for Caller {
    fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, String> {
        Ok(messages.iter().flat_map(|m| m.content.bytes().map(u32::from)).collect())
    }
    fn encode_text(&self, text: &str) -> Result<Vec<u32>, String> {
        Ok(text.bytes().map(u32::from).collect())
    }
    fn token_text(&self, _: u32) -> String {
        String::new()
    }
    fn context_length(&self) -> usize {
        4096
    }
    fn generate(&mut self, batch: &[rlvr_server::GenSpec]) -> Vec<Result<rlvr_server::GenOut, String>> {
        // The system message the server renders from `tools` reaches the model.
        let text = |s: &rlvr_server::GenSpec| {
            let prompt: String = s.context.iter().filter_map(|&c| char::from_u32(c)).collect();
            if prompt.contains("\"name\":\"add\"") {
                "Adding.\n<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": [2, 3]}}</tool_call>"
                    .to_string()
            } else {
                "no tools".to_string()
            }
        };
        batch
            .iter()
            .map(|s| Ok(rlvr_server::GenOut { text: text(s), tokens: vec![1], logprobs: vec![-0.1], length: false }))
            .collect()
    }
}

/// With `tools` declared, the model's `<tool_call>` blocks come back as OpenAI `tool_calls`;
/// without, the text is returned as written.
#[test]
fn tool_calls_are_parsed_when_tools_are_declared() {
    let model =
        rlvr_server::ModelServer::start("m", Box::new(|| Ok(Box::new(Caller) as Box<dyn rlvr_server::ServedModel>)), 8)
            .unwrap();
    let server = start(Options { model: Some(model), ..Options::default() });
    let tools = json!([{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]);
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "1+2+3?"}], "tools": tools});
    let (status, text) = http(server.addr, "POST", "/v1/chat/completions", Some(&body.to_string()), &[]);
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Adding.");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!((call["id"].as_str(), call["function"]["name"].as_str()), (Some("call_0_0"), Some("add")));
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"a": 1, "b": [2, 3]}));
    let plain = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let (_, text) = http(server.addr, "POST", "/v1/chat/completions", Some(&plain.to_string()), &[]);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["choices"][0]["message"]["content"].as_str(), v["choices"][0]["finish_reason"].as_str()),
        (Some("no tools"), Some("stop"))
    );
    assert!(v["choices"][0]["message"].get("tool_calls").is_none());
}
