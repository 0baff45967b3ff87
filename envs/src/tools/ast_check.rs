//! The Berkeley Function Calling Leaderboard's AST checker, rule for rule (Python language).
//!
//! Ground truth gives, per expected call, each parameter's list of acceptable values; `""` in
//! that list marks a parameter that may be omitted. The rules, with BFCL's error types:
//! - the category picks the checker: `parallel` in its name matches calls in any order (greedily,
//!   as BFCL does: each expected call takes the first unused output call that passes), else
//!   `multiple` wants exactly one call checked against the function the truth names, else one
//!   call checked against the first function doc;
//! - required parameters must be present, every given parameter must be documented and appear
//!   in the truth, and a truth parameter without `""` must be given;
//! - types follow the doc's type names (`integer`, `float`, `string`, `boolean`, `array`,
//!   `tuple`, `dict`, `any`), with Python's `type()` (so `True` is not an `int`); an `int` is
//!   accepted (and converted) where a `float` is documented, but not the reverse; a value whose
//!   type is that of the acceptable values rather than the doc's is a "variable" and compared as is;
//! - strings compare after removing spaces and `,./-_*^`, lower-casing, and turning `'` into `"`;
//! - lists compare element by element in order (string elements standardised); dicts key by key;
//!   lists of dicts dict by dict; anything else with Python's `==` against the acceptable values.
//!
//! Where Python would crash on a malformed *task* (a truth without its function doc), we return
//! [`TaskError`]; where it would crash on a malformed *model output*, we fail the match with a
//! type error. Function names are compared as written (BFCL's `.` to `_` renaming applies only
//! to some hosted models' native function calling).

use super::parse::Call;
use super::value::{PyType, Val, field, json_py_type, map_field, py_eq_json, str_repr, write_json_repr};
use serde::Serialize;
use serde_json::{Map as JsonMap, Value as Json};
use std::borrow::Cow;

/// The coarse error categories every failure maps to (shared with schema validation).
pub mod category {
    /// The text could not be read as calls.
    pub const MALFORMED_SYNTAX: &str = "malformed_syntax";
    /// A call names a function that is not offered.
    pub const UNKNOWN_TOOL: &str = "unknown_tool";
    /// A call names an offered function, but not the expected one.
    pub const WRONG_TOOL: &str = "wrong_tool";
    /// A required (or expected, non-optional) parameter is missing.
    pub const MISSING_REQUIRED: &str = "missing_required";
    /// A value has the wrong type.
    pub const WRONG_TYPE: &str = "wrong_type";
    /// A value is not among those allowed.
    pub const VALUE_NOT_ALLOWED: &str = "value_not_allowed";
    /// A parameter the function does not take, or the answer does not use.
    pub const EXTRA_PARAMETER: &str = "extra_parameter";
    /// Too many or too few calls.
    pub const WRONG_COUNT: &str = "wrong_count";
    /// Every category, in a fixed order (for per-category metrics).
    pub const ALL: [&str; 8] = [
        MALFORMED_SYNTAX,
        UNKNOWN_TOOL,
        WRONG_TOOL,
        MISSING_REQUIRED,
        WRONG_TYPE,
        VALUE_NOT_ALLOWED,
        EXTRA_PARAMETER,
        WRONG_COUNT,
    ];
}

/// A failed match: BFCL's error type, our category, and a message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mismatch {
    /// One of [`category`].
    pub category: &'static str,
    /// BFCL's `error_type`, e.g. `simple_function_checker:missing_required`.
    pub bfcl_error_type: &'static str,
    /// What was wrong, in words.
    pub message: String,
}

/// The task itself is broken (BFCL would crash); never a model's fault.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TaskError(pub String);

/// The verdict on one output: `Ok(Ok(()))` is a match.
pub type Verdict = Result<Result<(), Mismatch>, TaskError>;

fn miss(bfcl_error_type: &'static str, message: impl Into<String>) -> Result<(), Mismatch> {
    let category = match bfcl_error_type.rsplit(':').next().unwrap_or("") {
        "wrong_count" => category::WRONG_COUNT,
        "missing_required" | "missing_optional" => category::MISSING_REQUIRED,
        "unexpected_param" => category::EXTRA_PARAMETER,
        "wrong_func_name" => category::WRONG_TOOL,
        "decoder_failed" | "decoder_wrong_output_format" => category::MALFORMED_SYNTAX,
        _ if bfcl_error_type.starts_with("type_error") => category::WRONG_TYPE,
        _ => category::VALUE_NOT_ALLOWED,
    };
    Err(Mismatch { category, bfcl_error_type, message: message.into() })
}

/// Checks parsed `calls` against a BFCL task: its function docs, its ground truth (a list of
/// `{func: {param: [acceptable values]}}`) and its category name.
///
/// The task's JSON is read where it lies: each expected call's doc and truth are looked up once
/// per check, and acceptable values are compared with the arguments without being converted.
pub fn check(functions: &[Json], truth: &[Json], test_category: &str, calls: &[Call]) -> Verdict {
    let r = if test_category.contains("parallel") {
        parallel_no_order(functions, calls, truth)?
    } else if test_category.contains("multiple") {
        if calls.len() != truth.len() {
            miss("multiple_function_checker:wrong_count", "Wrong number of functions.")
        } else {
            let first = truth.first().ok_or_else(|| TaskError("ground truth is empty".into()))?;
            let doc = find_doc(functions, expected_name(first)?)?;
            Expected::new(doc, first)?.check(&calls[0])?
        }
    } else if calls.len() != 1 {
        miss("simple_function_checker:wrong_count", "Wrong number of functions.")
    } else {
        let doc = functions.first().ok_or_else(|| TaskError("task has no function docs".into()))?;
        let first = truth.first().ok_or_else(|| TaskError("ground truth is empty".into()))?;
        Expected::new(doc, first)?.check(&calls[0])?
    };
    Ok(r.map_err(|m| refine_tool_category(m, functions, calls)))
}

/// A wrong function name is `unknown_tool` when no offered function has that name.
fn refine_tool_category(mut m: Mismatch, functions: &[Json], calls: &[Call]) -> Mismatch {
    if m.category == category::WRONG_TOOL {
        let offered = |n: &str| functions.iter().any(|f| field(f, "name").and_then(Json::as_str) == Some(n));
        if calls.iter().any(|c| !offered(&c.name)) {
            m.category = category::UNKNOWN_TOOL;
        }
    }
    m
}

fn expected_name(truth: &Json) -> Result<&str, TaskError> {
    truth
        .as_object()
        .and_then(|o| o.keys().next())
        .map(String::as_str)
        .ok_or_else(|| TaskError(format!("ground truth entry is not {{func: {{...}}}}: {truth}")))
}

fn find_doc<'a>(functions: &'a [Json], name: &str) -> Result<&'a Json, TaskError> {
    functions
        .iter()
        .find(|f| field(f, "name").and_then(Json::as_str) == Some(name))
        .ok_or_else(|| TaskError(format!("ground truth names `{name}`, which has no function doc")))
}

fn parallel_no_order(functions: &[Json], calls: &[Call], truth: &[Json]) -> Result<Result<(), Mismatch>, TaskError> {
    if calls.len() != truth.len() {
        return Ok(miss("parallel_function_checker_no_order:wrong_count", "Wrong number of functions."));
    }
    // At most 64 calls tracked in a bit set; longer outputs (never seen in BFCL) take a vector.
    let mut used_bits = 0u64;
    let mut used_vec = if calls.len() > 64 { vec![false; calls.len()] } else { Vec::new() };
    for (i, expected) in truth.iter().enumerate() {
        let doc = find_doc(functions, expected_name(expected)?)?;
        let expected = Expected::new(doc, expected)?;
        // The last failure's message is the one reported; a wrong name, the common failure
        // here, is only noted, and its message written if it turns out to be the last.
        let mut last = None;
        let mut last_wrong_name = None;
        for (j, call) in calls.iter().enumerate() {
            let used = if used_vec.is_empty() { used_bits & (1 << j) != 0 } else { used_vec[j] };
            if used {
                continue;
            }
            if call.name != expected.func_name {
                last = None;
                last_wrong_name = Some(j);
                continue;
            }
            last_wrong_name = None;
            match expected.check(call)? {
                Ok(()) => {
                    if used_vec.is_empty() {
                        used_bits |= 1 << j;
                    } else {
                        used_vec[j] = true;
                    }
                    last = None;
                    break;
                }
                Err(m) => last = Some(m),
            }
        }
        if let Some(j) = last_wrong_name {
            last = expected.check(&calls[j])?.err();
        }
        if let Some(m) = last {
            // BFCL reports `cannot_find_match`; the category is that of the last candidate tried.
            return Ok(Err(Mismatch {
                category: m.category,
                bfcl_error_type: "parallel_function_checker_no_order:cannot_find_match",
                message: format!(
                    "Could not find a matching function for index {i} of possible answers; last: {}",
                    m.message
                ),
            }));
        }
    }
    Ok(Ok(()))
}

/// BFCL's `PYTHON_TYPE_MAPPING`: the doc's type name to Python's type.
fn doc_type(name: &str) -> Option<PyType> {
    Some(match name {
        "string" | "any" => PyType::Str,
        "integer" => PyType::Int,
        "float" => PyType::Float,
        "boolean" => PyType::Bool,
        "array" | "tuple" => PyType::List,
        "dict" => PyType::Dict,
        _ => return None,
    })
}

/// One expected call: its function doc's parts and its truth, looked up once.
struct Expected<'a> {
    func_name: &'a str,
    props: &'a JsonMap<String, Json>,
    required: &'a [Json],
    truth: &'a JsonMap<String, Json>,
}

impl<'a> Expected<'a> {
    /// `doc` and one expected `{func: {param: [values]}}`; a malformed one is the task's fault.
    fn new(doc: &'a Json, expected: &'a Json) -> Result<Self, TaskError> {
        let truth =
            expected.as_object().and_then(|o| o.values().next()).and_then(Json::as_object).ok_or_else(|| {
                TaskError(format!("ground truth entry is not {{func: {{param: [...]}}}}: {expected}"))
            })?;
        let func_name =
            field(doc, "name").and_then(Json::as_str).ok_or_else(|| TaskError("function doc without a name".into()))?;
        let params = field(doc, "parameters").ok_or_else(|| TaskError(format!("`{func_name}` has no parameters")))?;
        let props = field(params, "properties")
            .and_then(Json::as_object)
            .ok_or_else(|| TaskError(format!("`{func_name}` has no parameter properties")))?;
        let required = field(params, "required")
            .and_then(Json::as_array)
            .ok_or_else(|| TaskError(format!("`{func_name}` has no `required` list")))?;
        Ok(Self { func_name, props, required, truth })
    }

    /// `simple_function_checker` for one call.
    fn check(&self, call: &Call) -> Result<Result<(), Mismatch>, TaskError> {
        let func_name = self.func_name;
        if call.name != func_name {
            return Ok(miss(
                "simple_function_checker:wrong_func_name",
                format!("Function name '{func_name}' not found in model output (got '{}').", call.name),
            ));
        }
        for r in self.required {
            let r = r.as_str().ok_or_else(|| TaskError(format!("`{func_name}`: non-string in `required`")))?;
            if call.arg(r).is_none() {
                return Ok(miss(
                    "simple_function_checker:missing_required",
                    format!("Missing required parameter: '{r}'."),
                ));
            }
        }
        for (param, value) in &call.args {
            let (Some(details), Some(acceptable)) = (map_field(self.props, param), map_field(self.truth, param)) else {
                return Ok(miss(
                    "simple_function_checker:unexpected_param",
                    format!("Unexpected parameter: '{param}'."),
                ));
            };
            let Json::Array(acceptable) = acceptable else {
                return Err(TaskError(format!("acceptable values of `{param}` are not a list")));
            };
            let r = check_param(func_name, param, value, details, acceptable)?;
            if r.is_err() {
                return Ok(r);
            }
        }
        for (param, acceptable) in self.truth {
            if call.arg(param).is_none() && !is_optional(acceptable) {
                return Ok(miss(
                    "simple_function_checker:missing_optional",
                    format!("Optional parameter '{param}' not provided and not marked as optional."),
                ));
            }
        }
        Ok(Ok(()))
    }
}

/// True when the acceptable values hold `""`: the parameter may be omitted.
fn is_optional(acceptable: &Json) -> bool {
    acceptable.as_array().is_some_and(|a| a.iter().any(|v| v.as_str() == Some("")))
}

/// One given argument against its doc entry (`details`) and its acceptable values.
fn check_param(
    func_name: &str,
    param: &str,
    value: &Val,
    details: &Json,
    acceptable: &[Json],
) -> Result<Result<(), Mismatch>, TaskError> {
    let type_name = field(details, "type")
        .and_then(Json::as_str)
        .ok_or_else(|| TaskError(format!("`{func_name}.{param}` has no type")))?;
    let expected_type =
        doc_type(type_name).ok_or_else(|| TaskError(format!("`{func_name}.{param}`: unknown type `{type_name}`")))?;
    let nested = if type_name == "array" || type_name == "tuple" {
        let item = field(details, "items")
            .and_then(|i| field(i, "type"))
            .and_then(Json::as_str)
            .ok_or_else(|| TaskError(format!("`{func_name}.{param}` has no item type")))?;
        Some(doc_type(item).ok_or_else(|| TaskError(format!("`{func_name}.{param}`: unknown item type `{item}`")))?)
    } else {
        None
    };
    // A tuple is read as a list where the doc says `tuple`; an int as a float where it says
    // `float`. Other values are checked as given, without a copy.
    let converted = match (type_name, value) {
        ("tuple", Val::Tuple(items)) => Some(Val::List(items.clone())),
        ("float", Val::Int(i)) => Some(Val::Float(*i as f64)),
        ("float", Val::BigInt(s)) => Some(Val::Float(s.parse().unwrap_or(f64::INFINITY))),
        _ => None,
    };
    let value = converted.as_ref().unwrap_or(value);
    let is_variable = match type_check(param, value, acceptable, type_name, expected_type, nested) {
        Ok(v) => v,
        Err(m) => return Ok(Err(m)),
    };
    if !is_variable {
        if expected_type == PyType::Dict {
            return dict_checker(param, value, acceptable);
        } else if expected_type == PyType::List && nested == Some(PyType::Dict) {
            return list_dict_checker(param, value, acceptable);
        } else if expected_type == PyType::Str {
            return Ok(string_checker(param, value, acceptable));
        } else if expected_type == PyType::List {
            return list_checker(param, value, acceptable);
        }
    }
    if !acceptable.iter().any(|a| py_eq_json(value, a)) {
        let m = Msg::new("Invalid value for parameter '").s(param).s("': ").v(value);
        return Ok(miss("value_error:others", m.s(". Expected one of ").list(acceptable).s(".")));
    }
    Ok(Ok(()))
}

/// A failure message written into one buffer: text as it is, values as Python's repr. The
/// checker's messages hold reprs of the given value and of the acceptable ones; `format!` over
/// `repr()` strings built each repr apart and copied it, which was a tenth of the checker's time
/// on mismatching completions.
struct Msg(String);

impl Msg {
    fn new(text: &str) -> Self {
        let mut out = String::with_capacity(128);
        out.push_str(text);
        Msg(out)
    }

    /// Appends text.
    fn s(mut self, text: &str) -> Self {
        self.0.push_str(text);
        self
    }

    /// Appends `repr(v)`.
    fn v(mut self, v: &Val) -> Self {
        v.write_repr(&mut self.0);
        self
    }

    /// Appends the repr of a list of JSON values.
    fn list(mut self, items: &[Json]) -> Self {
        self.0.push('[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                self.0.push_str(", ");
            }
            write_json_repr(x, &mut self.0);
        }
        self.0.push(']');
        self
    }
}

impl From<Msg> for String {
    fn from(m: Msg) -> String {
        m.0
    }
}

/// The type of the first acceptable value that is not `""`.
fn answer_type(acceptable: &[Json]) -> Option<PyType> {
    acceptable.iter().find(|v| v.as_str() != Some("")).map(json_py_type)
}

/// How [`type_check`] failed; the message is written only for the outermost check.
enum TypeFail {
    Nested,
    Simple,
}

/// BFCL's `type_checker`: `Ok(is_variable)` or the type error. Nested checks go one level deep.
fn type_check(
    param: &str,
    value: &Val,
    acceptable: &[Json],
    type_name: &str,
    expected: PyType,
    nested: Option<PyType>,
) -> Result<bool, Mismatch> {
    match type_check_quiet(value, acceptable, expected, nested) {
        Ok(v) => Ok(v),
        Err(TypeFail::Nested) => {
            let m = Msg::new("Nested type checking failed for parameter '").s(param).s("'. Expected outer type ");
            let m = m.s(type_name).s(" with inner type ").s(nested.map_or("", PyType::name));
            miss("type_error:nested", m.s(". Parameter value: ").v(value).s(".")).map(|()| false)
        }
        Err(TypeFail::Simple) => {
            let m = Msg::new("Incorrect type for parameter '").s(param).s("'. Expected type ").s(type_name);
            let m = m.s(", got ").s(value.py_type().name()).s(". Parameter value: ").v(value).s(".");
            miss("type_error:simple", m).map(|()| false)
        }
    }
}

fn type_check_quiet(
    value: &Val,
    acceptable: &[Json],
    expected: PyType,
    nested: Option<PyType>,
) -> Result<bool, TypeFail> {
    let pa_type = answer_type(acceptable);
    let is_variable = pa_type.is_some_and(|t| t != expected);
    let mut nested_failed = false;
    if value.py_type() == expected {
        let Some(inner) = nested else {
            return Ok(is_variable);
        };
        let items: &[Val] = match value {
            Val::List(v) | Val::Tuple(v) => v,
            _ => &[],
        };
        for candidate in acceptable {
            // A candidate that is not a list (such as `""`) passes without looking, as in BFCL.
            let ok = match candidate {
                Json::Array(cand) => items.iter().all(|it| type_check_quiet(it, cand, inner, None).is_ok()),
                _ => true,
            };
            if ok {
                return Ok(is_variable);
            }
        }
        nested_failed = true;
    }
    if pa_type == Some(value.py_type()) {
        return if nested_failed { Err(TypeFail::Nested) } else { Ok(true) };
    }
    Err(TypeFail::Simple)
}

/// Removes spaces and `,./-_*^`, lower-cases, and turns `'` into `"`.
pub fn standardize(s: &str) -> String {
    standardized(s).collect()
}

/// The characters of [`standardize`], without building the string.
fn standardized(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars()
        .filter(|c| !matches!(c, ' ' | ',' | '.' | '/' | '-' | '_' | '*' | '^'))
        .flat_map(char::to_lowercase)
        .map(|c| if c == '\'' { '"' } else { c })
}

/// `standardize(a) == standardize(b)` without building either string.
fn standardized_eq(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.is_ascii() && b.is_ascii() {
        fn norm(s: &str) -> impl Iterator<Item = u8> + '_ {
            s.bytes()
                .filter(|c| !matches!(c, b' ' | b',' | b'.' | b'/' | b'-' | b'_' | b'*' | b'^'))
                .map(|c| if c == b'\'' { b'"' } else { c.to_ascii_lowercase() })
        }
        return norm(a).eq(norm(b));
    }
    standardized(a).eq(standardized(b))
}

fn std_val(v: &Val) -> Val {
    match v {
        Val::Str(s) => Val::Str(standardize(s).into()),
        other => other.clone(),
    }
}

/// `std_val(a) == std_val(b)` in Python, with `b` as JSON: strings compare standardised, other
/// values as they are.
fn std_eq_json(a: &Val, b: &Json) -> bool {
    match (a, b) {
        (Val::Str(x), Json::String(y)) => standardized_eq(x, y),
        (Val::Str(_), _) | (_, Json::String(_)) => false,
        _ => py_eq_json(a, b),
    }
}

fn string_checker(param: &str, value: &Val, acceptable: &[Json]) -> Result<(), Mismatch> {
    let given = value.as_str().unwrap_or_default();
    if acceptable.iter().filter_map(Json::as_str).any(|a| standardized_eq(given, a)) {
        return Ok(());
    }
    let m = Msg::new("Invalid value for parameter '").s(param).s("': ").v(value);
    miss("value_error:string", m.s(". Expected one of ").list(acceptable).s(". Case insensitive."))
}

/// Python iterates a candidate: a list gives its items; a string its characters (so `""` is an
/// empty list); a dict its keys; anything else is a broken task.
fn iterate<'j>(candidate: &'j Json, param: &str) -> Result<Cow<'j, [Json]>, TaskError> {
    match candidate {
        Json::Array(v) => Ok(Cow::Borrowed(v)),
        Json::String(s) => Ok(Cow::Owned(s.chars().map(|c| Json::String(c.to_string())).collect())),
        Json::Object(d) => Ok(Cow::Owned(d.keys().map(|k| Json::String(k.clone())).collect())),
        other => {
            Err(TaskError(format!("acceptable value {} of `{param}` is not a list", Val::from_json(other).repr())))
        }
    }
}

fn list_checker(param: &str, value: &Val, acceptable: &[Json]) -> Result<Result<(), Mismatch>, TaskError> {
    let given: &[Val] = match value {
        Val::List(v) | Val::Tuple(v) => v,
        _ => {
            return Ok(miss("type_error:simple", format!("Parameter '{param}' is not a list.")));
        }
    };
    for candidate in acceptable {
        let cand = iterate(candidate, param)?;
        if given.len() == cand.len() && given.iter().zip(cand.iter()).all(|(g, c)| std_eq_json(g, c)) {
            return Ok(Ok(()));
        }
    }
    let m = Msg::new("Invalid value for parameter '").s(param).s("': ").v(value);
    Ok(miss("value_error:list/tuple", m.s(". Expected one of ").list(acceptable).s(".")))
}

fn dict_checker(param: &str, value: &Val, acceptable: &[Json]) -> Result<Result<(), Mismatch>, TaskError> {
    let Val::Dict(given) = value else {
        return Ok(miss(
            "type_error:nested",
            format!("Parameter '{param}' holds a non-dict where a dict is expected."),
        ));
    };
    let mut result = miss("dict_checker:unclear", "");
    for candidate in acceptable {
        if candidate.as_str() == Some("") {
            continue;
        }
        let Json::Object(cand) = candidate else {
            return Err(TaskError(format!(
                "acceptable value {} of `{param}` is not a dict",
                Val::from_json(candidate).repr()
            )));
        };
        // Keys of a JSON object are strings, and a string equals only a string.
        let lookup = |k: &Val| match k {
            Val::Str(s) => map_field(cand, s),
            _ => None,
        };
        result = Ok(());
        for (k, v) in given {
            let Some(allowed) = lookup(k) else {
                result = miss("value_error:dict_key", format!("Unexpected dict key parameter: {}.", k.repr()));
                break;
            };
            let allowed = iterate(allowed, param)?;
            if !allowed.iter().any(|a| std_eq_json(v, a)) {
                let allowed: Vec<Val> = allowed.iter().map(|a| std_val(&Val::from_json(a))).collect();
                result = miss(
                    "value_error:dict_value",
                    format!(
                        "Invalid value for parameter {}: {}. Expected one of {}.",
                        k.repr(),
                        v.repr(),
                        Val::List(allowed).repr()
                    ),
                );
                break;
            }
        }
        for (k, allowed) in cand {
            let optional = match allowed {
                Json::Array(a) => a.iter().any(|v| v.as_str() == Some("")),
                Json::String(s) => s.is_empty(),
                _ => false,
            };
            if !optional && !given.iter().any(|(gk, _)| gk.as_str() == Some(k.as_str())) {
                result = miss("value_error:dict_key", format!("Missing dict key parameter: {}.", str_repr(k)));
                break;
            }
        }
        if result.is_ok() {
            return Ok(result);
        }
    }
    Ok(result)
}

fn list_dict_checker(param: &str, value: &Val, acceptable: &[Json]) -> Result<Result<(), Mismatch>, TaskError> {
    let given: &[Val] = match value {
        Val::List(v) | Val::Tuple(v) => v,
        _ => {
            return Ok(miss("type_error:simple", format!("Parameter '{param}' is not a list.")));
        }
    };
    let mut result = miss("list_dict_checker:unclear", "");
    for candidate in acceptable {
        let cand = iterate(candidate, param)?;
        if cand.len() != given.len() {
            result = miss("value_error:list_dict_count", "Wrong number of dictionaries in the list.");
            continue;
        }
        let mut all = true;
        for (g, c) in given.iter().zip(cand.iter()) {
            result = dict_checker(param, g, std::slice::from_ref(c))?;
            if result.is_err() {
                all = false;
                break;
            }
        }
        if all {
            return Ok(Ok(()));
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::parse::parse_calls;
    use serde_json::json;

    fn doc(props: Json, required: &[&str]) -> Json {
        json!({"name": "f", "description": "", "parameters": {"type": "dict", "properties": props, "required": required}})
    }

    /// Checks `output` against one function `f` with `truth` params in category `cat`.
    fn verdict(props: Json, required: &[&str], truth: Json, output: &str) -> Result<(), Mismatch> {
        let calls = parse_calls(output).unwrap();
        check(&[doc(props, required)], &[json!({ "f": truth })], "simple", &calls).unwrap()
    }

    fn fails_with(r: Result<(), Mismatch>, bfcl: &str) {
        assert_eq!(r.map_err(|m| m.bfcl_error_type), Err(bfcl));
    }

    #[test]
    fn acceptable_values_list_any_may_match() {
        let p = json!({"unit": {"type": "string"}});
        assert!(verdict(p.clone(), &["unit"], json!({"unit": ["meters", "m"]}), "f(unit='m')").is_ok());
        fails_with(verdict(p, &["unit"], json!({"unit": ["meters", "m"]}), "f(unit='km')"), "value_error:string");
    }

    #[test]
    fn empty_string_marks_an_optional_parameter() {
        let p = json!({"a": {"type": "integer"}, "b": {"type": "integer"}});
        assert!(verdict(p.clone(), &["a"], json!({"a": [1], "b": [2, ""]}), "f(a=1)").is_ok());
        assert!(verdict(p.clone(), &["a"], json!({"a": [1], "b": [2, ""]}), "f(a=1, b=2)").is_ok());
        // Without "" the parameter must be given even though the doc does not require it.
        fails_with(
            verdict(p, &["a"], json!({"a": [1], "b": [2]}), "f(a=1)"),
            "simple_function_checker:missing_optional",
        );
    }

    #[test]
    fn int_is_accepted_for_float_but_not_the_reverse() {
        let pf = json!({"x": {"type": "float"}});
        assert!(verdict(pf, &["x"], json!({"x": [2.0]}), "f(x=2)").is_ok());
        let pi = json!({"x": {"type": "integer"}});
        fails_with(verdict(pi.clone(), &["x"], json!({"x": [2]}), "f(x=2.0)"), "type_error:simple");
        // A bool is not an int, although True == 1 in Python.
        fails_with(verdict(pi, &["x"], json!({"x": [1]}), "f(x=True)"), "type_error:simple");
    }

    #[test]
    fn strings_ignore_case_spaces_and_punctuation() {
        let p = json!({"d": {"type": "string"}});
        let t = json!({"d": ["April 1, 2024"]});
        assert!(verdict(p.clone(), &["d"], t.clone(), "f(d='april 1 2024')").is_ok());
        assert!(verdict(p.clone(), &["d"], json!({"d": ["New-York_City"]}), "f(d='NEWYORK.CITY*^/')").is_ok());
        fails_with(verdict(p, &["d"], t, "f(d='April 2, 2024')"), "value_error:string");
    }

    #[test]
    fn lists_are_order_sensitive() {
        let p = json!({"l": {"type": "array", "items": {"type": "string"}}});
        let t = json!({"l": [["Paris", "London"]]});
        assert!(verdict(p.clone(), &["l"], t.clone(), "f(l=['paris', 'LONDON'])").is_ok());
        fails_with(verdict(p, &["l"], t, "f(l=['London', 'Paris'])"), "value_error:list/tuple");
    }

    #[test]
    fn nested_list_item_types_are_checked() {
        let p = json!({"l": {"type": "array", "items": {"type": "integer"}}});
        fails_with(verdict(p, &["l"], json!({"l": [[1, 2]]}), "f(l=[1, 'two'])"), "type_error:nested");
    }

    #[test]
    fn dicts_key_by_key_with_optional_keys() {
        let p = json!({"d": {"type": "dict"}});
        let t = json!({"d": [{"city": ["Paris"], "zip": ["75001", ""]}]});
        assert!(verdict(p.clone(), &["d"], t.clone(), "f(d={'city': 'paris'})").is_ok());
        fails_with(verdict(p.clone(), &["d"], t.clone(), "f(d={'city': 'Rome'})"), "value_error:dict_value");
        fails_with(verdict(p, &["d"], t, "f(d={'city': 'Paris', 'x': 1})"), "value_error:dict_key");
    }

    /// BFCL walks the truth's dicts in their written order, as Python does, and reports the first
    /// failure it meets; the messages name the same parameter and key as BFCL's (checked against
    /// bfcl-eval 2026.3.23). This needs `serde_json`'s `preserve_order`: sorted maps would name
    /// `a` and `x`.
    #[test]
    fn messages_name_the_first_failure_in_the_truths_written_order() {
        let message = |props: Json, required: &[&str], truth: &str, output: &str| {
            verdict(props, required, serde_json::from_str(truth).unwrap(), output).unwrap_err().message
        };
        let p = json!({"a": {"type": "integer"}, "b": {"type": "integer"}});
        assert_eq!(
            message(p, &[], r#"{"b": [1], "a": [2]}"#, "f()"),
            "Optional parameter 'b' not provided and not marked as optional."
        );
        let p = json!({"d": {"type": "dict"}});
        assert_eq!(
            message(p, &["d"], r#"{"d": [{"y": [1], "x": [2]}]}"#, "f(d={})"),
            "Missing dict key parameter: 'y'."
        );
    }

    #[test]
    fn required_unexpected_and_name_rules() {
        let p = json!({"a": {"type": "integer"}});
        fails_with(verdict(p.clone(), &["a"], json!({"a": [1]}), "f()"), "simple_function_checker:missing_required");
        fails_with(
            verdict(p.clone(), &["a"], json!({"a": [1]}), "f(a=1, z=2)"),
            "simple_function_checker:unexpected_param",
        );
        let r = verdict(p.clone(), &["a"], json!({"a": [1]}), "g(a=1)");
        assert_eq!(r.unwrap_err().category, category::UNKNOWN_TOOL);
        fails_with(verdict(p, &["a"], json!({"a": [1]}), "[f(a=1), f(a=1)]"), "simple_function_checker:wrong_count");
    }

    #[test]
    fn parallel_calls_match_in_any_order_but_not_in_number() {
        let d = doc(json!({"x": {"type": "integer"}}), &["x"]);
        let truth = [json!({"f": {"x": [1]}}), json!({"f": {"x": [2]}})];
        let run = |out: &str| check(std::slice::from_ref(&d), &truth, "parallel", &parse_calls(out).unwrap()).unwrap();
        assert!(run("[f(x=2), f(x=1)]").is_ok());
        assert_eq!(run("[f(x=1)]").unwrap_err().bfcl_error_type, "parallel_function_checker_no_order:wrong_count");
        assert_eq!(
            run("[f(x=1), f(x=1)]").unwrap_err().bfcl_error_type,
            "parallel_function_checker_no_order:cannot_find_match"
        );
    }

    #[test]
    fn multiple_wants_exactly_one_call_to_the_right_function() {
        let f = doc(json!({"x": {"type": "integer"}}), &["x"]);
        let mut g = f.clone();
        g["name"] = json!("g");
        let funcs = [f, g];
        let truth = [json!({"g": {"x": [1]}})];
        let run = |out: &str| check(&funcs, &truth, "multiple", &parse_calls(out).unwrap()).unwrap();
        assert!(run("g(x=1)").is_ok());
        let wrong = run("f(x=1)").unwrap_err();
        assert_eq!(
            (wrong.bfcl_error_type, wrong.category),
            ("simple_function_checker:wrong_func_name", category::WRONG_TOOL)
        );
        assert_eq!(run("[g(x=1), g(x=1)]").unwrap_err().bfcl_error_type, "multiple_function_checker:wrong_count");
    }

    #[test]
    fn broken_task_is_an_error_not_a_mismatch() {
        let d = doc(json!({"x": {"type": "integer"}}), &["x"]);
        let calls = parse_calls("h(x=1)").unwrap();
        assert!(check(&[d], &[json!({"h": {"x": [1]}})], "multiple", &calls).is_err());
    }
}
