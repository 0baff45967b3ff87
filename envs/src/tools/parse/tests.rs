use super::eval::resolve;
use super::hermes::hermes_block_general;
use super::python::{Dialect, Parser, is_keyword, python_calls};
use super::*;

fn one(text: &str) -> Call {
    let mut calls = parse_calls(text).unwrap();
    assert_eq!(calls.len(), 1, "{text}");
    calls.remove(0)
}

#[test]
fn python_calls_as_bfcl_decodes_them() {
    let c = one("[spotify.play(artist='Taylor Swift', duration=20)]");
    assert_eq!(c.name, "spotify.play");
    assert_eq!(c.args[0].0, "artist");
    assert_eq!(c.arg("duration").unwrap().repr(), "20");
    // No brackets, backticks, a positional argument (dropped), names, nested calls, arithmetic.
    let c = one("```f(1, a=x, b=math.sqrt(2), c=g(k=1), d=2*3, e=-1.5, f=+2, g=(1, 2), h={'k': [1]})```");
    let got: Vec<String> = c.args.iter().map(|(k, v)| format!("{k}={}", v.repr())).collect();
    assert_eq!(
        got,
        ["a='x'", "b='math.sqrt(2)'", "c={'g': {'k': 1}}", "d=6", "e=-1.5", "f=-2", "g=(1, 2)", "h={'k': [1]}"]
    );
    assert_eq!(parse_calls("[a(), b(x=\"y\" 'z')]").unwrap()[1].arg("x").unwrap().repr(), "'yz'");
    assert_eq!(parse_calls("").unwrap().len(), 0);
}

#[test]
fn one_pass_reading_agrees_with_the_syntax_tree() {
    let texts = [
        "[f(a=1, b='x', c=[1, 2.5, -3], d=(1,), e=(2), f={'k': [True, None]}, g=name, h=+4, i=-.5)]",
        "[a.b . c(x = 'p' \"q\", y={'k': 1, 'k': 2, 1: 'one', True: 't'}), g(), h(1, 2, z=3)]",
        "[f(a=1e400, b=123456789012345678901234567890123456789012, c=0x1f, d=1_000, e=r'a\\b', f=u'x')]",
        "[f(a=g(k=1), b=math.sqrt(2), c=2*3, d=-x, e=--1, f=-2**2, g=[1, 2] + [3], h='a' 'b' + 'c')]",
        "[f(a={1, 2}, b=[1, 2][0], c=x.y, d=(1, 2), e={(1, 2): 3}, f={[1]: 2}, g=-True, h={})]",
        "[f(a=1), g(b=2),]",
        "[f(a=1) + g(b=2)]",
        "[f(a=1)] * 2",
        "[f(a=1, a=2)]",
        "[f(a=1, 2)]",
        "[f(*a)]",
        "[1, f()]",
        "[[f()]]",
        "[f(a=1) # comment\n]",
        "[f(a=[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]])]",
        "[True(a=1)]",
        "[f(a=1 < 2)]",
        "[f(a=lambda: 1)]",
        "[f(a=b'x')]",
        "[f(a='unterminated)]",
        "[f(a=1.)]",
        "[f(a=.)]",
        "[f(if=1)]",
        "[f(a=None, b=False, c=(), d=[], e=[1,], f=(1, 2,), g={'a': 1,})]",
        "[a . b(x=1), a.\\\nb(x=1), a.b .c(x=1), a.1(x=1), a.(x=1), a.if(x=1)]",
    ];
    for text in texts {
        let fast = Parser::new(text, Dialect::Python).fast_calls();
        let general = python_calls(text);
        match (&fast, &general) {
            (None, _) => {}
            (Some(f), Ok(g)) => {
                let f: Vec<String> = f.iter().map(Call::to_python).collect();
                let g: Vec<String> = g.iter().map(Call::to_python).collect();
                assert_eq!(f, g, "{text}");
            }
            (Some(_), Err(e)) => panic!("{text}: the one pass read what the general path rejects ({e})"),
        }
    }
    // The common forms take the one pass.
    assert!(Parser::new(texts[0], Dialect::Python).fast_calls().is_some());
    assert!(Parser::new(texts[5], Dialect::Python).fast_calls().is_some());
}

#[test]
fn one_pass_json_agrees_with_the_syntax_tree() {
    let texts = [
        r#"{"name": "f", "arguments": {"a": [1, -2.5e3, true, null, "x\u00e9"], "b": {"c": {}}, "a": 3}}"#,
        r#" [ 1 , 2 ] "#,
        r#"[1, 2,]"#,
        r#"{"a": 1,}"#,
        r#"{'a': 1}"#,
        r#"{1: 2}"#,
        r#"[01]"#,
        r#"[1e999]"#,
        r#"[NaN]"#,
        r#"{"a" 1}"#,
        r#"[1] x"#,
        r#"[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]"#,
    ];
    for text in texts {
        let fast = Parser::new(text, Dialect::Json).fast_json(0);
        let mut general = Parser::new(text, Dialect::Json);
        let general = general.whole_expr().and_then(resolve);
        match (fast, general) {
            (None, _) => {}
            (Some(f), Ok(g)) => assert_eq!(f.repr(), g.repr(), "{text}"),
            (Some(f), Err(e)) => {
                // The one pass may stop early; `whole` then still requires the end of input.
                let mut p = Parser::new(text, Dialect::Json);
                p.fast_json(0);
                p.ws();
                assert!(p.pos != text.len(), "{text}: read {} where the general path fails ({e})", f.repr());
            }
        }
    }
    assert!(Parser::new(texts[0], Dialect::Json).fast_json(0).is_some());
}

#[test]
fn one_pass_tool_call_agrees_with_the_json_value() {
    let bodies = [
        r#"{"name": "f", "arguments": {"a": [1, {"b": null}], "c": "x", "a": 2}}"#,
        r#"{"arguments": {"x": 1}, "name": "f", "id": 7}"#,
        r#"{"name": "f", "parameters": {"x": 1}}"#,
        r#"{"name": "f", "parameters": {"x": 1}, "arguments": {"y": 2}}"#,
        r#"{"name": "f"}"#,
        r#"{"name": "f", "name": "g", "arguments": {}}"#,
        r#"{"name": "f", "arguments": {"x": 1}, "arguments": "{"y": 2}"}"#,
        r#"{"name": "f", "arguments": "{"y": 2}", "arguments": {"x": 1}}"#,
        r#"{"name": "f", "arguments": [1]}"#,
        r#"{"name": 3, "arguments": {}}"#,
        r#"{"arguments": {}}"#,
        r#"{"name": "f", "arguments": {"x": 1},}"#,
        r#"{"name": "f", "arguments": {"x": 1}} tail"#,
        r#"[{"name": "f"}]"#,
    ];
    for body in bodies {
        let fast = Parser::new(body, Dialect::Json).fast_hermes();
        let general = hermes_block_general(body, 0);
        match (fast, general) {
            (None, _) => {}
            (Some(f), Ok(g)) => assert_eq!(f.to_python(), g.to_python(), "{body}"),
            (Some(f), Err(e)) => {
                panic!("{body}: one pass read {} where the general path fails ({e})", f.to_python())
            }
        }
    }
    assert!(Parser::new(bodies[0], Dialect::Json).fast_hermes().is_some());
    assert!(Parser::new(bodies[3], Dialect::Json).fast_hermes().is_some());
}

#[test]
fn keywords_are_pythons() {
    let python = "and as assert async await break class continue def del elif else except finally for from \
                  global if import in is lambda nonlocal not or pass raise return try while with yield";
    for k in python.split_whitespace() {
        assert!(is_keyword(k), "{k}");
    }
    for name in ["", "a", "True", "None", "radius", "format", "ifs", "i", "yields", "Lambda", "_if"] {
        assert!(!is_keyword(name), "{name}");
    }
}

#[test]
fn hermes_calls() {
    let t = "I'll call.\n<tool_call>\n{\"name\": \"add\", \"arguments\": {\"b\": 2, \"a\": 1.0}}\n</tool_call>\
             <tool_call>{\"name\": \"neg\", \"arguments\": \"{\\\"x\\\": 3}\"}</tool_call>";
    let calls = parse_calls(t).unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].to_python(), "add(b=2, a=1.0)", "argument order is kept");
    assert_eq!(calls[1].to_python(), "neg(x=3)");
}

#[test]
fn bad_input_is_a_categorised_error() {
    let kind = |t: &str| parse_calls(t).unwrap_err().kind;
    assert_eq!(kind("<tool_call>{\"name\": \"a\"}"), "unbalanced_tags");
    assert_eq!(kind("</tool_call>"), "unbalanced_tags");
    assert_eq!(kind("<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": NaN}}</tool_call>"), "syntax");
    assert_eq!(kind("<tool_call>[1]</tool_call>"), "not_a_call");
    assert_eq!(kind("<tool_call>{\"name\": 1}</tool_call>"), "not_a_call");
    assert_eq!(kind("<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1e999}}</tool_call>"), "syntax");
    assert_eq!(kind("[f(a=1"), "syntax");
    assert_eq!(kind("[f(a=1, a=2)]"), "syntax");
    assert_eq!(kind("I think the answer is 42."), "syntax");
    assert_eq!(kind("[1, f()]"), "not_a_call");
    assert_eq!(kind("[f(x=10**100000)]"), "syntax");
    assert_eq!(kind("[f(x=1/0)]"), "syntax");
    let deep = format!("[f(x={}{})]", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(kind(&deep), "too_deep");
    let deep_json =
        format!("<tool_call>{{\"name\": \"f\", \"arguments\": {{\"x\": {}}}}}</tool_call>", "[".repeat(10_000));
    assert_eq!(kind(&deep_json), "too_deep");
    assert_eq!(kind(&"a".repeat(MAX_LEN + 1)), "too_long");
}

#[test]
fn huge_and_special_numbers() {
    let c = one("[f(a=123456789012345678901234567890123456789012, b=1e400, c=0x10, d=1_000)]");
    assert_eq!(c.arg("a").unwrap().repr(), "123456789012345678901234567890123456789012");
    assert_eq!(c.arg("b").unwrap().repr(), "inf");
    assert_eq!(c.arg("c").unwrap().repr(), "16");
    assert_eq!(c.arg("d").unwrap().repr(), "1000");
}

/// A cheap stand-in for the cargo-fuzz target that runs on stable in every `cargo test`:
/// seeded byte-level mutations of valid calls must parse or fail, never panic.
#[test]
fn mutated_inputs_never_panic() {
    let seeds = [
        r#"[f(a=1, b=[{'k': (1, 2.5e3)}], c=g(x=None), d=-0x1f, e='''t\n''', f=2**3//2)]"#,
        r#"<tool_call>{"name": "f", "arguments": {"a": [1, {"b": "\u00e9\ud83d\ude00"}], "c": -1.5e3}}</tool_call>"#,
    ];
    let alphabet = b"()[]{},:'\"=<>/\\-+*._0123456789eExjJ \ntool_call";
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        h
    };
    for s in seeds {
        for _ in 0..3000 {
            let mut b = s.as_bytes().to_vec();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() % b.len() as u64) as usize;
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => b[i] = c,
                    1 if b.len() > 1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, c),
                }
            }
            if let Ok(text) = std::str::from_utf8(&b) {
                let _ = parse_calls(text);
            }
        }
    }
}
