//! `answer/json_schema`: the completion holds JSON valid under the task's JSON Schema.
//!
//! Task: `{"schema": {...}}` (or the schema as `answer`). The JSON is the last ```` ```json ````
//! block, else the `<answer>` contents, else the whole completion. A completion that holds no
//! valid JSON, or JSON the schema rejects, scores 0 with the first violation (and its JSON
//! pointer) in `info`; a schema that is malformed or uses a keyword outside the subset is a
//! verifier error, never a silent pass.
//!
//! The subset (JSON Schema 2020-12 validation keywords): `type`, `enum`, `const`,
//! `properties`, `required`, `additionalProperties`, `minProperties`, `maxProperties`,
//! `items`, `minItems`, `maxItems`, `uniqueItems`, `minLength`, `maxLength`, `pattern`,
//! `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `allOf`,
//! `anyOf`, `oneOf`, `not`; annotations (`title`, `description`, `default`, `examples`,
//! `$schema`, `$id`, `$comment`, `format`) are ignored, as the spec allows. `$ref` is refused.

use crate::extract;
use crate::pattern;
use crate::shaping::{self, Check, Checked, Shaping};
use rlvr_engine::{BoxError, Config, Registry, RewardError, Rubric, Task, parse_config};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Deepest schema nesting followed.
pub const MAX_DEPTH: usize = 64;

/// Settings of the reward's config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// Shaping terms and gating.
    pub shaping: Shaping,
}

/// A schema fault (the task's) or an instance violation (the model's).
#[derive(Debug, PartialEq)]
pub enum Invalid {
    /// The schema itself is broken or outside the subset.
    Schema(String),
    /// The instance breaks the schema at a JSON pointer.
    Instance {
        /// JSON pointer to the offending value.
        at: String,
        /// What rule it broke.
        why: String,
    },
}

fn schema_err<T>(msg: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid::Schema(msg.into()))
}

fn fail(at: &str, why: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid::Instance { at: if at.is_empty() { "/".into() } else { at.into() }, why: why.into() })
}

fn type_ok(t: &str, v: &Value) -> Result<bool, Invalid> {
    Ok(match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|x| x.fract() == 0.0),
        other => return schema_err(format!("unknown type `{other}`")),
    })
}

fn num(schema: &Value, key: &str) -> Result<Option<f64>, Invalid> {
    match schema.get(key) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| Invalid::Schema(format!("`{key}` must be a number"))),
    }
}

fn count(schema: &Value, key: &str) -> Result<Option<usize>, Invalid> {
    match schema.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| Invalid::Schema(format!("`{key}` must be a non-negative integer"))),
    }
}

fn subschemas<'a>(schema: &'a Value, key: &str) -> Result<Option<&'a Vec<Value>>, Invalid> {
    match schema.get(key) {
        None => Ok(None),
        Some(Value::Array(a)) if !a.is_empty() => Ok(Some(a)),
        Some(_) => schema_err(format!("`{key}` must be a non-empty array of schemas")),
    }
}

const KNOWN: &[&str] = &[
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "format",
];

/// Validates `v` against `schema`.
pub fn validate(schema: &Value, v: &Value) -> Result<(), Invalid> {
    validate_at(schema, v, "", 0)
}

fn validate_at(schema: &Value, v: &Value, at: &str, depth: usize) -> Result<(), Invalid> {
    if depth > MAX_DEPTH {
        return schema_err(format!("schema nested deeper than {MAX_DEPTH}"));
    }
    let s = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return fail(at, "the schema `false` accepts nothing"),
        Value::Object(s) => s,
        _ => return schema_err("a schema must be an object or a boolean"),
    };
    if let Some(k) = s.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return schema_err(format!("keyword `{k}` is outside the supported subset"));
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&Value> = match t {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut ok = false;
        for t in types {
            let name = t.as_str().ok_or_else(|| Invalid::Schema("`type` must be a string".into()))?;
            ok |= type_ok(name, v)?;
        }
        if !ok {
            return fail(at, format!("type is not {t}"));
        }
    }
    if let Some(e) = s.get("enum") {
        let e = e.as_array().ok_or_else(|| Invalid::Schema("`enum` must be an array".into()))?;
        if !e.iter().any(|x| json_eq(x, v)) {
            return fail(at, "not one of the enum values");
        }
    }
    if let Some(c) = s.get("const")
        && !json_eq(c, v)
    {
        return fail(at, "not the const value");
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        let Some(subs) = subschemas(schema, key)? else {
            continue;
        };
        let mut passed = 0;
        for sub in subs {
            match validate_at(sub, v, at, depth + 1) {
                Ok(()) => passed += 1,
                Err(e @ Invalid::Schema(_)) => return Err(e),
                Err(e) if key == "allOf" => return Err(e),
                Err(_) => {}
            }
        }
        match key {
            "anyOf" if passed == 0 => return fail(at, "matches none of anyOf"),
            "oneOf" if passed != 1 => return fail(at, format!("matches {passed} of oneOf, not 1")),
            _ => {}
        }
    }
    if let Some(not) = s.get("not") {
        match validate_at(not, v, at, depth + 1) {
            Ok(()) => return fail(at, "matches the `not` schema"),
            Err(e @ Invalid::Schema(_)) => return Err(e),
            Err(_) => {}
        }
    }
    match v {
        Value::Object(o) => {
            if let Some(req) = s.get("required") {
                let req = req.as_array().ok_or_else(|| Invalid::Schema("`required` must be an array".into()))?;
                for r in req {
                    let r = r.as_str().ok_or_else(|| Invalid::Schema("`required` holds strings".into()))?;
                    if !o.contains_key(r) {
                        return fail(at, format!("missing required property `{r}`"));
                    }
                }
            }
            let props = match s.get("properties") {
                None => None,
                Some(Value::Object(p)) => Some(p),
                Some(_) => return schema_err("`properties` must be an object"),
            };
            for (k, val) in o {
                let path = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => validate_at(sub, val, &path, depth + 1)?,
                    None => {
                        if let Some(extra) = s.get("additionalProperties") {
                            if extra == &Value::Bool(false) {
                                return fail(&path, "additional property not allowed");
                            }
                            validate_at(extra, val, &path, depth + 1)?;
                        }
                    }
                }
            }
            if count(schema, "minProperties")?.is_some_and(|n| o.len() < n) {
                return fail(at, "fewer properties than minProperties");
            }
            if count(schema, "maxProperties")?.is_some_and(|n| o.len() > n) {
                return fail(at, "more properties than maxProperties");
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, x) in a.iter().enumerate() {
                    validate_at(items, x, &format!("{at}/{i}"), depth + 1)?;
                }
            }
            if count(schema, "minItems")?.is_some_and(|n| a.len() < n) {
                return fail(at, "fewer items than minItems");
            }
            if count(schema, "maxItems")?.is_some_and(|n| a.len() > n) {
                return fail(at, "more items than maxItems");
            }
            if s.get("uniqueItems") == Some(&Value::Bool(true))
                && a.iter().enumerate().any(|(i, x)| a[..i].iter().any(|y| json_eq(x, y)))
            {
                return fail(at, "items are not unique");
            }
        }
        Value::String(text) => {
            let n = text.chars().count();
            if count(schema, "minLength")?.is_some_and(|m| n < m) {
                return fail(at, "shorter than minLength");
            }
            if count(schema, "maxLength")?.is_some_and(|m| n > m) {
                return fail(at, "longer than maxLength");
            }
            if let Some(p) = s.get("pattern") {
                let p = p.as_str().ok_or_else(|| Invalid::Schema("`pattern` must be a string".into()))?;
                let re = pattern::compile(p, false, false).map_err(Invalid::Schema)?;
                if !re.is_match(text) {
                    return fail(at, format!("does not match pattern `{p}`"));
                }
            }
        }
        Value::Number(x) => {
            let x = x.as_f64().unwrap_or(f64::NAN);
            if num(schema, "minimum")?.is_some_and(|m| x < m) {
                return fail(at, "below minimum");
            }
            if num(schema, "maximum")?.is_some_and(|m| x > m) {
                return fail(at, "above maximum");
            }
            if num(schema, "exclusiveMinimum")?.is_some_and(|m| x <= m) {
                return fail(at, "not above exclusiveMinimum");
            }
            if num(schema, "exclusiveMaximum")?.is_some_and(|m| x >= m) {
                return fail(at, "not below exclusiveMaximum");
            }
            if let Some(m) = num(schema, "multipleOf")? {
                if m <= 0.0 {
                    return schema_err("`multipleOf` must be positive");
                }
                let q = x / m;
                if (q - q.round()).abs() > 1e-9 {
                    return fail(at, format!("not a multiple of {m}"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// JSON equality where `1` equals `1.0`, as the spec asks.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Checks one completion.
pub fn check(task: &Task, completion: &str) -> Result<Checked, RewardError> {
    let schema = task
        .data
        .get("schema")
        .or_else(|| task.data.get("answer"))
        .ok_or_else(|| RewardError::new(format!("task {}: missing field `schema`", task.id)))?;
    // Check the schema on its own once (against null), so a broken schema is an error even
    // when the completion holds no JSON.
    if let Err(Invalid::Schema(e)) = validate(schema, &Value::Null) {
        return Err(RewardError::new(format!("task {}: bad schema: {e}", task.id)));
    }
    let found = extract::code_block(completion, Some("json"))
        .map(|f| ("json_block", f))
        .or_else(|| extract::last_tag(completion, "answer").map(|f| ("answer_tag", f)))
        .or_else(|| extract::Extractor::Whole.find(completion).map(|(_, f)| ("whole", f)));
    let Some((rule, found)) = found.filter(|(_, f)| !f.text.is_empty()) else {
        return Ok(Checked { value: 0.0, found: false, info: json!({ "answer": null }) });
    };
    let mut info = json!({ "extract": rule, "start": found.start, "end": found.end });
    let value = match serde_json::from_str::<Value>(found.text) {
        Err(e) => {
            info["error"] = json!("invalid_json");
            info["detail"] = json!(e.to_string());
            0.0
        }
        Ok(v) => match validate(schema, &v) {
            Ok(()) => 1.0,
            Err(Invalid::Instance { at, why }) => {
                info["error"] = json!("schema_violation");
                info["at"] = json!(at);
                info["detail"] = json!(why);
                0.0
            }
            Err(Invalid::Schema(e)) => {
                return Err(RewardError::new(format!("task {}: bad schema: {e}", task.id)));
            }
        },
    };
    Ok(Checked { value, found: true, info })
}

/// Builds the rubric: `accuracy`, `format`, and any shaping terms.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: SchemaConfig = parse_config(config)?;
    let check: Check = Arc::new(check);
    shaping::rubric("accuracy", check, cfg.shaping)
}

/// Registers `answer/json_schema`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "answer/json_schema",
        "the completion's JSON (last ```json block by default) is valid under the task's `schema`",
        rubric,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["name", "age"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "pattern": "^[A-Z]"},
                "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true, "maxItems": 2},
                "kind": {"oneOf": [{"const": 1}, {"type": "string"}]}
            },
            "additionalProperties": false
        })
    }

    fn verdict(v: Value) -> Result<(), Invalid> {
        validate(&schema(), &v)
    }

    #[test]
    fn rules_by_hand() {
        assert_eq!(verdict(json!({"name": "Ann", "age": 3, "tags": ["a"], "kind": 1.0})), Ok(()));
        let at = |v| match verdict(v) {
            Err(Invalid::Instance { at, .. }) => at,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(json!({"name": "Ann"})), "/");
        assert_eq!(at(json!({"name": "ann", "age": 3})), "/name");
        assert_eq!(at(json!({"name": "Ann", "age": 3.5})), "/age");
        assert_eq!(at(json!({"name": "Ann", "age": 150})), "/age");
        assert_eq!(at(json!({"name": "Ann", "age": 1, "tags": ["a", "a"]})), "/tags");
        assert_eq!(at(json!({"name": "Ann", "age": 1, "tags": ["c"]})), "/tags/0");
        assert_eq!(at(json!({"name": "Ann", "age": 1, "x": 0})), "/x");
        assert_eq!(at(json!({"name": "Ann", "age": 1, "kind": true})), "/kind");
        assert_eq!(at(json!([1])), "/");
    }

    #[test]
    fn schema_faults_are_errors() {
        for s in [json!({"$ref": "#/x"}), json!({"type": "float"}), json!({"minimum": "0"}), json!(3)] {
            assert!(matches!(validate(&s, &json!(1)), Err(Invalid::Schema(_))), "{s}");
        }
    }

    fn score(task: Value, completion: &str) -> rlvr_engine::Scored {
        rubric(&Config::new())
            .unwrap()
            .score(&Task::new("t", task), &rlvr_engine::Trajectory::from_completion(vec![], completion))
    }

    #[test]
    fn reward_reads_the_json_block() {
        let t = json!({"schema": schema()});
        let ok = "Here:\n```json\n{\"name\": \"Bo\", \"age\": 40}\n```\n";
        assert_eq!(score(t.clone(), ok).total(), Some(1.0));
        let bad = score(t.clone(), "```json\n{\"name\": \"Bo\"\n```");
        assert_eq!((bad.total(), bad.terms[0].info["error"].as_str()), (Some(0.0), Some("invalid_json")));
        assert_eq!(score(t.clone(), "{\"name\": \"Bo\", \"age\": -1}").total(), Some(0.0));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(score(t, &deep).total(), Some(0.0), "serde's recursion limit, no overflow");
        let broken = score(json!({"schema": {"type": "float"}}), "1");
        assert!(broken.error().unwrap().contains("bad schema"));
    }
}
