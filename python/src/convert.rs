//! Crossing between Python objects and the engine's JSON values, messages, tasks and configs.

use crate::{ConfigError, TASK_KEY, TaskError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use rlvr::engine::{Config, Message, Role, Scored, Task};
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted: a hostile or cyclic structure is refused, not followed.
const MAX_DEPTH: usize = 256;

/// Python data (None, bool, int, float, str, dict with str keys, list, tuple, and anything with
/// `tolist()`, such as numpy values and arrays) as a JSON value.
pub fn to_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    json_at(obj, 0)
}

fn json_at(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(TaskError::new_err(format!("nested deeper than {MAX_DEPTH} levels (a cycle?)")));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(TaskError::new_err("an integer beyond 64 bits cannot be a JSON value; pass it as a string"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| TaskError::new_err(format!("{v} is not a JSON number")));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| TaskError::new_err(format!("dict keys must be strings, not {}", type_name(&k))))?;
            map.insert(key.to_str()?.to_owned(), json_at(&v, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l.iter().map(|v| json_at(&v, depth + 1)).collect::<PyResult<_>>().map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t.iter().map(|v| json_at(&v, depth + 1)).collect::<PyResult<_>>().map(Value::Array);
    }
    if let Ok(tolist) = obj.getattr("tolist")
        && tolist.is_callable()
    {
        return json_at(&tolist.call0()?, depth + 1);
    }
    Err(TaskError::new_err(format!("a {} cannot be read as JSON data", type_name(obj))))
}

/// Whether `a` and `b` are the same JSON data: same types all the way down (so `1`, `1.0` and
/// `True`, equal to Python's `==`, differ here), same keys in the same order, equal leaves. A
/// walk without allocation, so a row that repeats the previous row's task costs a fraction of
/// reading it again.
pub fn same_data(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    same_at(a, b, 0)
}

fn same_at(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, depth: usize) -> PyResult<bool> {
    if a.is(b) {
        return Ok(true);
    }
    if depth > MAX_DEPTH || !a.get_type().is(b.get_type()) {
        return Ok(false);
    }
    if let (Ok(x), Ok(y)) = (a.cast::<PyDict>(), b.cast::<PyDict>()) {
        if x.len() != y.len() {
            return Ok(false);
        }
        for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
            if !same_at(&ka, &kb, depth + 1)? || !same_at(&va, &vb, depth + 1)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let (Ok(x), Ok(y)) = (a.cast::<PyList>(), b.cast::<PyList>()) {
        if x.len() != y.len() {
            return Ok(false);
        }
        for (va, vb) in x.iter().zip(y.iter()) {
            if !same_at(&va, &vb, depth + 1)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if a.is_none() || a.is_instance_of::<PyString>() || a.is_instance_of::<PyInt>() || a.is_instance_of::<PyFloat>() {
        // Same exact type (checked above), so `==` is the JSON equality; NaN, never equal,
        // only means the task is read again.
        return a.eq(b);
    }
    Ok(false)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "value".into())
}

/// A JSON value as Python data.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A plugin config from a dict (the experiment file's `config` table); None is the empty config.
pub fn config_from(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Config> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Config::new());
    };
    let value = to_json(obj).map_err(|e| ConfigError::new_err(format!("config: {}", e.value(obj.py()))))?;
    if !value.is_object() {
        return Err(ConfigError::new_err("config must be a dict (the plugin's `config` table)"));
    }
    serde_json::from_value::<Config>(value)
        .map_err(|e| ConfigError::new_err(format!("config: {e} (TOML has no null: leave the key out instead)")))
}

/// A config as a dict.
pub fn config_to_py(py: Python<'_>, config: &Config) -> PyResult<Py<PyAny>> {
    let value = serde_json::to_value(config).map_err(|e| ConfigError::new_err(e.to_string()))?;
    Ok(to_py(py, &value)?.unbind())
}

/// A task from a dict: the row's `rlvr_task` (exact JSON) when present, else its fields less
/// the row's own columns (`prompt`, `task_id`).
pub fn task_from(obj: &Bound<'_, PyAny>) -> PyResult<Task> {
    // A row that carries its task as JSON is read from that string alone: parsing it is a
    // fraction of the cost of walking the row's other (possibly large) columns object by object.
    if let Ok(d) = obj.cast::<PyDict>()
        && let Some(text) = d.get_item(TASK_KEY)?
        && let Ok(text) = text.cast::<PyString>()
    {
        let data = serde_json::from_str(text.to_str()?)
            .map_err(|e| TaskError::new_err(format!("{TASK_KEY} is not the JSON of a task: {e}")))?;
        let id = match d.get_item("task_id")? {
            Some(id) => id.str()?.to_str()?.to_owned(),
            None => "task".to_string(),
        };
        return Ok(Task::new(id, data));
    }
    let value = to_json(obj)?;
    let Value::Object(mut fields) = value else {
        return Err(TaskError::new_err("a task is a dict of its fields"));
    };
    let id = match fields.remove("task_id") {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => "task".to_string(),
    };
    let data = match fields.remove(TASK_KEY) {
        Some(Value::String(text)) => serde_json::from_str(&text)
            .map_err(|e| TaskError::new_err(format!("{TASK_KEY} is not the JSON of a task: {e}")))?,
        Some(Value::Null) | None => {
            fields.remove("prompt");
            Value::Object(fields)
        }
        Some(other) => other,
    };
    Ok(Task::new(id, data))
}

/// Messages as a list of `{"role", "content"}` dicts (with `name` for tool messages).
pub fn messages_to_py<'py>(py: Python<'py>, messages: &[Message]) -> PyResult<Bound<'py, PyAny>> {
    let list = PyList::empty(py);
    for m in messages {
        let d = PyDict::new(py);
        d.set_item("role", m.role.as_str())?;
        d.set_item("content", &m.content)?;
        if let Some(name) = &m.name {
            d.set_item("name", name)?;
        }
        list.append(d)?;
    }
    Ok(list.into_any())
}

/// Chat messages from a list of dicts with `role` and `content` (a string, None, or a list of
/// `{"type": "text", "text": ...}` parts); other keys (tool calls) are ignored.
pub fn messages_from(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Message>> {
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let item = item?;
        let d = item.cast::<PyDict>().map_err(|_| TaskError::new_err("each message is a dict"))?;
        let role: String =
            d.get_item("role")?.ok_or_else(|| TaskError::new_err("a message has no `role`"))?.extract()?;
        let role = match role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" | "ipython" => Role::Tool,
            other => return Err(TaskError::new_err(format!("unknown message role {other:?}"))),
        };
        let content = match d.get_item("content")? {
            None => String::new(),
            Some(c) if c.is_none() => String::new(),
            Some(c) => match c.extract::<String>() {
                Ok(s) => s,
                Err(_) => {
                    let mut text = String::new();
                    for part in c.try_iter()? {
                        let part = part?;
                        if let Ok(p) = part.cast::<PyDict>()
                            && let Some(t) = p.get_item("text")?
                        {
                            text.push_str(&t.extract::<String>()?);
                        }
                    }
                    text
                }
            },
        };
        let name = d.get_item("name")?.filter(|n| !n.is_none()).map(|n| n.extract::<String>()).transpose()?;
        out.push(Message { role, content, name });
    }
    Ok(out)
}

/// A score as the dict `rlvr score` writes per line: `reward` (None when a weighted term
/// failed), `terms` (each term's value, None when it failed), `error`, and `details` (the
/// diagnostics of the terms that have some). Built directly, without a JSON tree in between.
pub fn scored_to_py<'py>(py: Python<'py>, scored: &Scored) -> PyResult<Bound<'py, PyDict>> {
    let row = PyDict::new(py);
    row.set_item("reward", scored.total())?;
    let terms = PyDict::new(py);
    let details = PyDict::new(py);
    for t in &scored.terms {
        terms.set_item(&t.name, t.value.as_ref().ok())?;
        if !t.info.is_null() {
            details.set_item(&t.name, to_py(py, &t.info)?)?;
        }
    }
    row.set_item("terms", terms)?;
    row.set_item("error", scored.error())?;
    row.set_item("details", details)?;
    Ok(row)
}
