//! `POST /score`: `{"reward": ID, "config": {...}, "items": [{task, completion, id?}, ...]}`,
//! answered `{"results": [...], "errors": N}` where each result is the row `rlvr score` writes
//! for that item (the same type serialises both), in order.

use crate::{Shared, error};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rlvr_engine::{Config, Rubric, ScoreRow, Task, Trajectory};
use serde::Deserialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRequest {
    reward: String,
    #[serde(default)]
    config: serde_json::Map<String, Value>,
    items: Vec<Value>,
}

/// Rubrics already built, by reward id and config: building one can cost more than scoring
/// (a Python file compiled, a schema parsed), and clients send the same reward every call.
#[derive(Default)]
pub(crate) struct RubricCache(Mutex<Vec<(String, Arc<Rubric>)>>);

/// Distinct (reward, config) pairs kept.
const RUBRICS: usize = 32;

impl RubricCache {
    fn get(
        &self,
        shared: &Shared,
        reward: &str,
        config: &serde_json::Map<String, Value>,
    ) -> Result<Arc<Rubric>, String> {
        let key = format!("{reward}\u{0}{}", Value::Object(config.clone()));
        if let Some((_, r)) = self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(k, _)| *k == key) {
            return Ok(r.clone());
        }
        let table: Config = serde_json::from_value(Value::Object(config.clone()))
            .map_err(|e| format!("config: {e} (it must map to TOML: no nulls)"))?;
        let rubric = Arc::new(shared.registry.make_reward(reward, &table).map_err(|e| e.to_string())?);
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= RUBRICS {
            cache.remove(0);
        }
        cache.push((key, rubric.clone()));
        Ok(rubric)
    }
}

pub(crate) async fn score(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: ScoreRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid score request: {e}")),
    };
    let job_shared = shared.clone();
    let result = shared
        .job(shared.deadline(), move || -> Result<Vec<u8>, String> {
            let rubric = job_shared.rubrics.get(&job_shared, &request.reward, &request.config)?;
            Ok(score_items(&rubric, &request.items))
        })
        .await;
    match result {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => error(e.status(), e.message()),
    }
}

/// `{"results": [row, ...], "errors": N}` as bytes; a bad item gets an error row in place.
fn score_items(rubric: &Rubric, items: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * items.len() + 32);
    out.extend_from_slice(b"{\"results\":[");
    let mut errors = 0usize;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let id = item.get("id");
        let mut write = |row: ScoreRow<'_>| {
            // Serialising into a Vec cannot fail: every key is a string.
            let _ = serde_json::to_writer(&mut out, &row);
        };
        let task = item.get("task").filter(|t| t.is_object());
        let completion = item.get("completion").and_then(Value::as_str);
        match (task, completion) {
            (Some(task), Some(completion)) => {
                let task = Task::new(format!("item-{i}"), task.clone());
                let scored = rubric.score(&task, &Trajectory::from_completion(Vec::new(), completion));
                errors += usize::from(scored.error().is_some());
                write(ScoreRow { id, scored: Some(&scored), error: None });
            }
            _ => {
                errors += 1;
                let why = if task.is_none() {
                    "field `task` must be an object"
                } else {
                    "field `completion` must be a string"
                };
                write(ScoreRow { id, scored: None, error: Some(format!("item {i}: {why}")) });
            }
        }
    }
    out.extend_from_slice(format!("],\"errors\":{errors}}}").as_bytes());
    out
}
