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
use super::value::{PyType, Val, py_eq, py_in};
use serde::Serialize;
use serde_json::Value as Json;

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
pub fn check(functions: &[Json], truth: &[Json], test_category: &str, calls: &[Call]) -> Verdict {
    let r = if test_category.contains("parallel") {
        parallel_no_order(functions, calls, truth)?
    } else if test_category.contains("multiple") {
        if calls.len() != truth.len() {
            miss("multiple_function_checker:wrong_count", "Wrong number of functions.")
        } else {
            let first = truth.first().ok_or_else(|| TaskError("ground truth is empty".into()))?;
            let doc = find_doc(functions, expected_name(first)?)?;
            simple(doc, &calls[0], first)?
        }
    } else if calls.len() != 1 {
        miss("simple_function_checker:wrong_count", "Wrong number of functions.")
    } else {
        let doc = functions.first().ok_or_else(|| TaskError("task has no function docs".into()))?;
        let first = truth.first().ok_or_else(|| TaskError("ground truth is empty".into()))?;
        simple(doc, &calls[0], first)?
    };
    Ok(r.map_err(|m| refine_tool_category(m, functions, calls)))
}

/// A wrong function name is `unknown_tool` when no offered function has that name.
fn refine_tool_category(mut m: Mismatch, functions: &[Json], calls: &[Call]) -> Mismatch {
    if m.category == category::WRONG_TOOL {
        let offered = |n: &str| functions.iter().any(|f| f.get("name").and_then(Json::as_str) == Some(n));
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
        .find(|f| f.get("name").and_then(Json::as_str) == Some(name))
        .ok_or_else(|| TaskError(format!("ground truth names `{name}`, which has no function doc")))
}

fn parallel_no_order(functions: &[Json], calls: &[Call], truth: &[Json]) -> Result<Result<(), Mismatch>, TaskError> {
    if calls.len() != truth.len() {
        return Ok(miss("parallel_function_checker_no_order:wrong_count", "Wrong number of functions."));
    }
    let mut used = vec![false; calls.len()];
    for (i, expected) in truth.iter().enumerate() {
        let doc = find_doc(functions, expected_name(expected)?)?;
        let mut last = None;
        for (j, call) in calls.iter().enumerate() {
            if used[j] {
                continue;
            }
            match simple(doc, call, expected)? {
                Ok(()) => {
                    used[j] = true;
                    last = None;
                    break;
                }
                Err(m) => last = Some(m),
            }
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

/// `simple_function_checker` for one call against one expected `{func: {param: [values]}}`.
fn simple(doc: &Json, call: &Call, expected: &Json) -> Result<Result<(), Mismatch>, TaskError> {
    let truth = expected
        .as_object()
        .and_then(|o| o.values().next())
        .and_then(Json::as_object)
        .ok_or_else(|| TaskError(format!("ground truth entry is not {{func: {{param: [...]}}}}: {expected}")))?;
    let func_name =
        doc.get("name").and_then(Json::as_str).ok_or_else(|| TaskError("function doc without a name".into()))?;
    let params = doc.get("parameters").ok_or_else(|| TaskError(format!("`{func_name}` has no parameters")))?;
    let props = params
        .get("properties")
        .and_then(Json::as_object)
        .ok_or_else(|| TaskError(format!("`{func_name}` has no parameter properties")))?;
    let required = params
        .get("required")
        .and_then(Json::as_array)
        .ok_or_else(|| TaskError(format!("`{func_name}` has no `required` list")))?;

    if call.name != func_name {
        return Ok(miss(
            "simple_function_checker:wrong_func_name",
            format!("Function name '{func_name}' not found in model output (got '{}').", call.name),
        ));
    }
    for r in required {
        let r = r.as_str().ok_or_else(|| TaskError(format!("`{func_name}`: non-string in `required`")))?;
        if call.arg(r).is_none() {
            return Ok(miss("simple_function_checker:missing_required", format!("Missing required parameter: '{r}'.")));
        }
    }
    for (param, value) in &call.args {
        let (Some(details), Some(acceptable)) = (props.get(param), truth.get(param)) else {
            return Ok(miss("simple_function_checker:unexpected_param", format!("Unexpected parameter: '{param}'.")));
        };
        let acceptable: Vec<Val> = match Val::from_json(acceptable) {
            Val::List(v) => v,
            _ => {
                return Err(TaskError(format!("acceptable values of `{param}` are not a list")));
            }
        };
        let type_name = details
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| TaskError(format!("`{func_name}.{param}` has no type")))?;
        let expected_type = doc_type(type_name)
            .ok_or_else(|| TaskError(format!("`{func_name}.{param}`: unknown type `{type_name}`")))?;
        let nested = if type_name == "array" || type_name == "tuple" {
            let item = details
                .pointer("/items/type")
                .and_then(Json::as_str)
                .ok_or_else(|| TaskError(format!("`{func_name}.{param}` has no item type")))?;
            Some(
                doc_type(item)
                    .ok_or_else(|| TaskError(format!("`{func_name}.{param}`: unknown item type `{item}`")))?,
            )
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
        let is_variable = match type_check(param, value, &acceptable, type_name, expected_type, nested) {
            Ok(v) => v,
            Err(m) => return Ok(Err(m)),
        };
        if !is_variable {
            let r = if expected_type == PyType::Dict {
                Some(dict_checker(param, value, &acceptable)?)
            } else if expected_type == PyType::List && nested == Some(PyType::Dict) {
                Some(list_dict_checker(param, value, &acceptable)?)
            } else if expected_type == PyType::Str {
                Some(string_checker(param, value, &acceptable))
            } else if expected_type == PyType::List {
                Some(list_checker(param, value, &acceptable)?)
            } else {
                None
            };
            if let Some(r) = r {
                if r.is_err() {
                    return Ok(r);
                }
                continue;
            }
        }
        if !py_in(value, &acceptable) {
            return Ok(miss(
                "value_error:others",
                format!(
                    "Invalid value for parameter '{param}': {}. Expected one of {}.",
                    value.repr(),
                    Val::List(acceptable).repr()
                ),
            ));
        }
    }
    for (param, acceptable) in truth {
        let optional = acceptable.as_array().is_some_and(|a| a.iter().any(|v| v.as_str() == Some("")));
        if call.arg(param).is_none() && !optional {
            return Ok(miss(
                "simple_function_checker:missing_optional",
                format!("Optional parameter '{param}' not provided and not marked as optional."),
            ));
        }
    }
    Ok(Ok(()))
}

/// The type of the first acceptable value that is not `""`.
fn answer_type(acceptable: &[Val]) -> Option<PyType> {
    acceptable.iter().find(|v| !v.is_empty_str()).map(Val::py_type)
}

/// BFCL's `type_checker`: `Ok(is_variable)` or the type error. Nested checks go one level deep.
fn type_check(
    param: &str,
    value: &Val,
    acceptable: &[Val],
    type_name: &str,
    expected: PyType,
    nested: Option<PyType>,
) -> Result<bool, Mismatch> {
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
                Val::List(cand) => {
                    items.iter().all(|it| type_check(param, it, cand, inner.name(), inner, None).is_ok())
                }
                _ => true,
            };
            if ok {
                return Ok(is_variable);
            }
        }
        nested_failed = true;
    }
    if pa_type == Some(value.py_type()) {
        if nested_failed {
            return miss(
                "type_error:nested",
                format!("Nested type checking failed for parameter '{param}'. Expected outer type {type_name} with inner type {}. Parameter value: {}.", nested.map_or("", PyType::name), value.repr()),
            )
            .map(|()| false);
        }
        return Ok(true);
    }
    miss(
        "type_error:simple",
        format!(
            "Incorrect type for parameter '{param}'. Expected type {type_name}, got {}. Parameter value: {}.",
            value.py_type().name(),
            value.repr()
        ),
    )
    .map(|()| false)
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

fn std_val(v: &Val) -> Val {
    match v {
        Val::Str(s) => Val::Str(standardize(s)),
        other => other.clone(),
    }
}

fn string_checker(param: &str, value: &Val, acceptable: &[Val]) -> Result<(), Mismatch> {
    let given = value.as_str().unwrap_or_default();
    if acceptable.iter().filter_map(Val::as_str).any(|a| standardized(given).eq(standardized(a))) {
        return Ok(());
    }
    miss(
        "value_error:string",
        format!(
            "Invalid value for parameter '{param}': {}. Expected one of {}. Case insensitive.",
            value.repr(),
            Val::List(acceptable.to_vec()).repr()
        ),
    )
}

/// Python iterates a candidate: a list gives its items; a string its characters (so `""` is an
/// empty list); anything else is a broken task.
fn iterate(candidate: &Val, param: &str) -> Result<Vec<Val>, TaskError> {
    match candidate {
        Val::List(v) | Val::Tuple(v) => Ok(v.clone()),
        Val::Str(s) => Ok(s.chars().map(|c| Val::Str(c.to_string())).collect()),
        Val::Dict(d) => Ok(d.iter().map(|(k, _)| k.clone()).collect()),
        other => Err(TaskError(format!("acceptable value {} of `{param}` is not a list", other.repr()))),
    }
}

fn list_checker(param: &str, value: &Val, acceptable: &[Val]) -> Result<Result<(), Mismatch>, TaskError> {
    let given: Vec<Val> = match value {
        Val::List(v) | Val::Tuple(v) => v.iter().map(std_val).collect(),
        _ => {
            return Ok(miss("type_error:simple", format!("Parameter '{param}' is not a list.")));
        }
    };
    let given = Val::List(given);
    for candidate in acceptable {
        let cand = Val::List(iterate(candidate, param)?.iter().map(std_val).collect());
        if py_eq(&given, &cand) {
            return Ok(Ok(()));
        }
    }
    Ok(miss(
        "value_error:list/tuple",
        format!(
            "Invalid value for parameter '{param}': {}. Expected one of {}.",
            value.repr(),
            Val::List(acceptable.to_vec()).repr()
        ),
    ))
}

fn dict_checker(param: &str, value: &Val, acceptable: &[Val]) -> Result<Result<(), Mismatch>, TaskError> {
    let Val::Dict(given) = value else {
        return Ok(miss(
            "type_error:nested",
            format!("Parameter '{param}' holds a non-dict where a dict is expected."),
        ));
    };
    let mut result = miss("dict_checker:unclear", "");
    for candidate in acceptable {
        if candidate.is_empty_str() {
            continue;
        }
        let Val::Dict(cand) = candidate else {
            return Err(TaskError(format!("acceptable value {} of `{param}` is not a dict", candidate.repr())));
        };
        let lookup = |k: &Val| cand.iter().find(|(ck, _)| py_eq(ck, k)).map(|(_, v)| v);
        result = Ok(());
        for (k, v) in given {
            let Some(allowed) = lookup(k) else {
                result = miss("value_error:dict_key", format!("Unexpected dict key parameter: {}.", k.repr()));
                break;
            };
            let allowed: Vec<Val> = iterate(allowed, param)?.iter().map(std_val).collect();
            if !py_in(&std_val(v), &allowed) {
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
                Val::List(a) => a.iter().any(Val::is_empty_str),
                Val::Str(s) => s.is_empty(),
                _ => false,
            };
            if !given.iter().any(|(gk, _)| py_eq(gk, k)) && !optional {
                result = miss("value_error:dict_key", format!("Missing dict key parameter: {}.", k.repr()));
                break;
            }
        }
        if result.is_ok() {
            return Ok(result);
        }
    }
    Ok(result)
}

fn list_dict_checker(param: &str, value: &Val, acceptable: &[Val]) -> Result<Result<(), Mismatch>, TaskError> {
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
        for (g, c) in given.iter().zip(&cand) {
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
