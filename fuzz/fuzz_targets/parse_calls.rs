//! Any text: parsing never panics, and whatever parses goes through schema validation and the
//! BFCL checker without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rlvr_envs::tools::{ast_check, backend, parse, schema};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(calls) = parse::parse_calls(text) else { return };
    for c in &calls {
        let _ = schema::validate(backend::tool_specs(), c);
        let _ = c.to_python();
    }
    let functions = [json!({"name": "f", "parameters": {"type": "dict", "properties": {
        "a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "dict"}}, "c": {"type": "dict"},
        "d": {"type": "float"}, "e": {"type": "string"}}, "required": ["a"]}})];
    let truth = [json!({"f": {"a": [1], "b": [[{"k": [1, ""]}], ""], "c": [{"x": ["y"]}, ""], "d": [2.5, ""], "e": ["s", ""]}})];
    for cat in ["simple", "multiple", "parallel"] {
        let _ = ast_check::check(&functions, &truth, cat, &calls);
    }
    let mut b = backend::Backend::default();
    for c in &calls {
        let _ = b.call(backend::tool_specs(), c);
    }
});
