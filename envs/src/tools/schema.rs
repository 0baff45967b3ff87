//! Validation of calls against tools declared in OpenAI's function format (JSON Schema
//! parameters): unknown tool, missing required parameter, extra parameter, wrong type, value not
//! allowed (enum, range, length, non-finite or oversized numbers). Each failure names its
//! category, so the environment can tell the model what to fix and metrics can count it.

use super::ast_check::category;
use super::parse::Call;
use super::value::{Val, py_in};
use serde::Serialize;
use serde_json::Value as Json;

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// One of [`category`].
    pub category: &'static str,
    /// What to fix, in words.
    pub message: String,
}

fn violation<T>(category: &'static str, message: impl Into<String>) -> Result<T, Violation> {
    Err(Violation { category, message: message.into() })
}

/// The function object of a tool, whether given bare (`{name, description, parameters}`) or
/// wrapped (`{"type": "function", "function": {...}}`).
pub fn function_of(tool: &Json) -> &Json {
    tool.get("function").unwrap_or(tool)
}

/// Checks `call` against `tools`; returns the tool's function object when the call is valid.
pub fn validate<'a>(tools: &'a [Json], call: &Call) -> Result<&'a Json, Violation> {
    let Some(func) = tools.iter().map(function_of).find(|f| f.get("name").and_then(Json::as_str) == Some(&call.name))
    else {
        return violation(category::UNKNOWN_TOOL, format!("unknown tool `{}`", call.name));
    };
    let empty = Json::Object(Default::default());
    let params = func.get("parameters").unwrap_or(&empty);
    let args = Val::Dict(call.args.iter().map(|(k, v)| (Val::Str(k.clone()), v.clone())).collect());
    check(params, &args, "arguments", 0)?;
    Ok(func)
}

fn check(schema: &Json, value: &Val, path: &str, depth: usize) -> Result<(), Violation> {
    if depth > 32 {
        return violation(category::VALUE_NOT_ALLOWED, format!("{path}: nested too deeply"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Json::String(s) => vec![s.as_str()],
            Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
            return violation(
                category::WRONG_TYPE,
                format!(
                    "{path}: expected {}, got {} {}",
                    types.join(" or "),
                    value.py_type().name(),
                    clip(&value.repr())
                ),
            );
        }
    }
    match value {
        Val::Float(f) if !f.is_finite() => {
            return violation(category::VALUE_NOT_ALLOWED, format!("{path}: {} is not a finite number", value.repr()));
        }
        Val::BigInt(_) => {
            return violation(category::VALUE_NOT_ALLOWED, format!("{path}: integer out of range"));
        }
        _ => {}
    }
    if let Some(Json::Array(allowed)) = schema.get("enum") {
        let allowed: Vec<Val> = allowed.iter().map(Val::from_json).collect();
        if !py_in(value, &allowed) {
            return violation(
                category::VALUE_NOT_ALLOWED,
                format!("{path}: {} is not one of {}", clip(&value.repr()), Val::List(allowed).repr()),
            );
        }
    }
    if let Some(x) = number(value) {
        let bound = |k: &str| schema.get(k).and_then(Json::as_f64);
        let out = bound("minimum").is_some_and(|m| x < m)
            || bound("maximum").is_some_and(|m| x > m)
            || bound("exclusiveMinimum").is_some_and(|m| x <= m)
            || bound("exclusiveMaximum").is_some_and(|m| x >= m);
        if out {
            return violation(category::VALUE_NOT_ALLOWED, format!("{path}: {} is out of range", value.repr()));
        }
    }
    match value {
        Val::Str(s) => {
            let n = s.chars().count() as u64;
            let len = |k: &str| schema.get(k).and_then(Json::as_u64);
            if len("minLength").is_some_and(|m| n < m) || len("maxLength").is_some_and(|m| n > m) {
                return violation(category::VALUE_NOT_ALLOWED, format!("{path}: string length {n} is out of range"));
            }
        }
        Val::List(items) | Val::Tuple(items) => {
            let n = items.len() as u64;
            let len = |k: &str| schema.get(k).and_then(Json::as_u64);
            if len("minItems").is_some_and(|m| n < m) || len("maxItems").is_some_and(|m| n > m) {
                return violation(category::VALUE_NOT_ALLOWED, format!("{path}: {n} items is out of range"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, it) in items.iter().enumerate() {
                    check(item_schema, it, &format!("{path}[{i}]"), depth + 1)?;
                }
            }
        }
        Val::Dict(fields) => {
            let props = schema.get("properties").and_then(Json::as_object);
            if let Some(Json::Array(required)) = schema.get("required") {
                for r in required.iter().filter_map(Json::as_str) {
                    if !fields.iter().any(|(k, _)| k.as_str() == Some(r)) {
                        return violation(
                            category::MISSING_REQUIRED,
                            format!("{path}: missing required parameter `{r}`"),
                        );
                    }
                }
            }
            let closed = schema.get("additionalProperties") != Some(&Json::Bool(true));
            for (k, v) in fields {
                let key = k.as_str().map(str::to_string).unwrap_or_else(|| k.repr());
                match props.and_then(|p| p.get(&key)) {
                    Some(s) => check(s, v, &format!("{path}.{key}"), depth + 1)?,
                    None if closed && props.is_some() => {
                        return violation(category::EXTRA_PARAMETER, format!("{path}: unexpected parameter `{key}`"));
                    }
                    None => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn has_type(v: &Val, t: &str) -> bool {
    match t {
        "string" => matches!(v, Val::Str(_)),
        "integer" => matches!(v, Val::Int(_) | Val::BigInt(_)) || matches!(v, Val::Float(f) if f.fract() == 0.0),
        "number" => matches!(v, Val::Int(_) | Val::BigInt(_) | Val::Float(_)),
        "boolean" => matches!(v, Val::Bool(_)),
        "array" => matches!(v, Val::List(_) | Val::Tuple(_)),
        "object" | "dict" => matches!(v, Val::Dict(_)),
        "null" => matches!(v, Val::None),
        _ => true,
    }
}

fn number(v: &Val) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    }
}

fn clip(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut end = 77;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::parse::parse_calls;
    use serde_json::json;

    fn tools() -> Vec<Json> {
        vec![json!({"type": "function", "function": {"name": "add", "description": "", "parameters": {
            "type": "object",
            "properties": {
                "item": {"type": "string", "enum": ["bolts", "nuts"]},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["item", "quantity"]}}})]
    }

    fn cat(text: &str) -> &'static str {
        let call = parse_calls(text).unwrap().remove(0);
        validate(&tools(), &call).map(|_| "ok").unwrap_or_else(|v| v.category)
    }

    #[test]
    fn each_failure_has_its_category() {
        assert_eq!(cat("add(item='nuts', quantity=3, tags=['a'])"), "ok");
        assert_eq!(cat("sub(item='nuts', quantity=3)"), category::UNKNOWN_TOOL);
        assert_eq!(cat("add(item='nuts')"), category::MISSING_REQUIRED);
        assert_eq!(cat("add(item='nuts', quantity='3')"), category::WRONG_TYPE);
        assert_eq!(cat("add(item='nuts', quantity=True)"), category::WRONG_TYPE);
        assert_eq!(cat("add(item='nuts', quantity=3, tags=[1])"), category::WRONG_TYPE);
        assert_eq!(cat("add(item='gears', quantity=3)"), category::VALUE_NOT_ALLOWED);
        assert_eq!(cat("add(item='nuts', quantity=0)"), category::VALUE_NOT_ALLOWED);
        assert_eq!(cat("add(item='nuts', quantity=10**30)"), category::VALUE_NOT_ALLOWED);
        assert_eq!(cat("add(item='nuts', quantity=3, color='red')"), category::EXTRA_PARAMETER);
    }
}
