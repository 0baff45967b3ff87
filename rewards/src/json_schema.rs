//! `answer/json_schema`: the completion holds JSON valid under the task's JSON Schema.
//!
//! Task: `{"schema": {...}}` (or the schema as `answer`). The JSON is the last ```` ```json ````
//! block, else the `<answer>` contents, else the whole completion. A completion that holds no
//! valid JSON, or JSON the schema rejects, scores 0 with the first violation (and its JSON
//! pointer) in `info`; a schema that is malformed, or that refers outside itself, is a
//! verifier error, never a silent pass.
//!
//! Schemas are JSON Schema drafts 4, 6, 7, 2019-09 and 2020-12, whole (`$ref`, `$defs`,
//! `$anchor`, `$dynamicRef`, `unevaluatedProperties`, `dependentRequired`, ...), checked by the
//! [`jsonschema`](https://docs.rs/jsonschema) crate. The draft is the one `$schema` names,
//! 2020-12 when it names none. A keyword that no draft defines is a schema error, not ignored
//! as the spec allows: a misspelt `requried` would otherwise check nothing and let through
//! answers the task meant to reject (vendor keywords named `x-...` are allowed).
//!
//! ## Design
//! - **Compiled once per distinct schema.** Compiling a schema (checking it against its
//!   meta-schema, resolving references, building regexes) costs far more than validating one
//!   instance, and a GRPO group scores the same task G times; so each rubric keeps the compiled
//!   schemas of the last tasks it saw (at most [`CACHE_CAP`], then the cache starts over),
//!   found by a hash of the schema's content and confirmed equal, which costs a walk of the
//!   schema per scoring (about a microsecond for 900 bytes). A schema that fails to compile is
//!   remembered too.
//! - **Nothing is fetched.** A `$ref` to another document (`other.json`, `https://...`) or an
//!   unknown `$schema` is a verifier error: a task's schema must be self-contained, and a
//!   dataset must never make the trainer reach the network or the file system. The crate is
//!   built without its HTTP and file resolvers, and the validator is given a retriever that
//!   refuses every fetch, so even a build where another crate turns those features on fetches
//!   nothing. The drafts' own meta-schemas are built in.
//! - **Linear-time patterns.** `pattern` and `patternProperties` run on the `regex` crate
//!   under the same size limits as `answer/regex` ([`pattern::SIZE_LIMIT`]), not on a
//!   backtracking engine: a model's megabyte string costs linear time. Lookaround and
//!   backreferences are refused as schema errors.
//! - **`format` is an annotation**, in every draft (as 2019-09 and 2020-12 say, and as the
//!   older drafts allow): `"format": "email"` checks nothing.
//! - **The first violation, in our words.** `info.at` is the JSON pointer of the offending
//!   value (`/` for the root; for a property `additionalProperties` forbids, the property
//!   itself) and `info.detail` says which rule it broke, without echoing the value, so a
//!   megabyte answer does not end up in the run's database. When a value breaks several
//!   rules, which comes first follows the crate's order of evaluation.

use crate::extract;
use crate::pattern;
use crate::shaping::{self, Check, Checked, Shaping};
use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
use jsonschema::{PatternOptions, Retrieve, Uri, ValidationError, Validator};
use rlvr_engine::{BoxError, Config, Registry, RewardError, Rubric, Task, parse_config};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

/// Most compiled schemas a rubric keeps; past it the cache is emptied and starts over.
pub const CACHE_CAP: usize = 1024;

/// Deepest JSON nesting of a schema document: serde_json's own parse limit, so any schema
/// read from JSON text passes, while a deeper one built in code is refused before the
/// compiler's recursion can overflow a worker's stack (it did at about 600 levels on a
/// 2 MiB stack).
pub const MAX_DEPTH: usize = 128;

/// Settings of the reward's config.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// Shaping terms and gating.
    pub shaping: Shaping,
}

/// A schema fault (the task's) or an instance violation (the model's).
#[derive(Debug, PartialEq)]
pub enum Invalid {
    /// The schema itself is broken, or refers outside itself.
    Schema(String),
    /// The instance breaks the schema at a JSON pointer.
    Instance {
        /// JSON pointer to the offending value.
        at: String,
        /// What rule it broke.
        why: String,
    },
}

/// A retriever that fetches nothing.
struct NoFetch;

impl Retrieve for NoFetch {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("`{uri}` is outside the schema; a task's schema must be self-contained").into())
    }
}

/// Whether `v` nests at most `left` arrays and objects deep.
fn depth_within(v: &Value, left: usize) -> bool {
    match v {
        Value::Array(a) => left > 0 && a.iter().all(|x| depth_within(x, left - 1)),
        Value::Object(o) => left > 0 && o.values().all(|x| depth_within(x, left - 1)),
        _ => true,
    }
}

/// Keywords whose value is a schema.
const SCHEMA_KEYWORDS: [&str; 12] = [
    "not",
    "if",
    "then",
    "else",
    "additionalProperties",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "contentSchema",
    "items",
];
/// Keywords whose value is an array of schemas (`items` too, in drafts before 2020-12).
const SCHEMA_LIST_KEYWORDS: [&str; 5] = ["allOf", "anyOf", "oneOf", "prefixItems", "items"];
/// Keywords whose value maps names to schemas (`dependencies` also to lists of names).
const SCHEMA_MAP_KEYWORDS: [&str; 6] =
    ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"];
/// The other keywords of drafts 4 to 2020-12: assertions, annotations and core keywords.
const OTHER_KEYWORDS: [&str; 41] = [
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "format",
    "contentEncoding",
    "contentMediaType",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "$id",
    "id",
    "$schema",
    "$anchor",
    "$dynamicAnchor",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "$recursiveAnchor",
    "$vocabulary",
];

/// The first key of `schema` (or of a subschema) that no draft defines, with where it stands:
/// the spec ignores such keywords, so a misspelt `requried` would check nothing and pass
/// answers the task meant to reject. Keys starting with `x-` (vendor extensions) are allowed.
fn unknown_keyword(schema: &Value, at: &mut String) -> Option<(String, String)> {
    let Value::Object(o) = schema else { return None };
    for (k, v) in o {
        let mark = at.len();
        push_token(at, k);
        let found = if SCHEMA_KEYWORDS.contains(&k.as_str()) && !v.is_array() {
            unknown_keyword(v, at)
        } else if SCHEMA_LIST_KEYWORDS.contains(&k.as_str()) {
            v.as_array().into_iter().flatten().enumerate().find_map(|(i, sub)| {
                let mark = at.len();
                push_token(at, &i.to_string());
                let found = unknown_keyword(sub, at);
                at.truncate(mark);
                found
            })
        } else if SCHEMA_MAP_KEYWORDS.contains(&k.as_str()) {
            v.as_object().into_iter().flatten().find_map(|(name, sub)| {
                let mark = at.len();
                push_token(at, name);
                let found = unknown_keyword(sub, at);
                at.truncate(mark);
                found
            })
        } else if OTHER_KEYWORDS.contains(&k.as_str()) || k.starts_with("x-") {
            None
        } else {
            at.truncate(mark);
            return Some((if at.is_empty() { "/".into() } else { at.clone() }, k.clone()));
        };
        at.truncate(mark);
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Compiles a schema under this module's rules (see the module docs).
fn compile(schema: &Value) -> Result<Validator, String> {
    if !depth_within(schema, MAX_DEPTH) {
        return Err(format!("schema nested deeper than {MAX_DEPTH}"));
    }
    if let Some((at, key)) = unknown_keyword(schema, &mut String::new()) {
        return Err(format!(
            "at {at}: `{key}` is not a JSON Schema keyword (a misspelling would check nothing; \
             name vendor keywords `x-...`)"
        ));
    }
    jsonschema::options()
        .with_retriever(NoFetch)
        .should_validate_formats(false)
        .with_pattern_options(
            PatternOptions::regex().size_limit(pattern::SIZE_LIMIT).dfa_size_limit(pattern::SIZE_LIMIT),
        )
        .build(schema)
        .map_err(|e| match e.instance_path().as_str() {
            "" => e.to_string(),
            at => format!("at {at}: {e}"),
        })
}

/// The first violation of `v`, if any.
fn first_violation(validator: &Validator, v: &Value) -> Result<(), Invalid> {
    match validator.validate(v) {
        Ok(()) => Ok(()),
        Err(e) => Err(describe(&e, v)),
    }
}

/// `at` with one more reference token, escaped as RFC 6901 says.
fn push_token(at: &mut String, key: &str) {
    at.push('/');
    at.push_str(&key.replace('~', "~0").replace('/', "~1"));
}

/// Our wording of one error in `root`: the hand-written validator's words for the rules it
/// knew, the crate's (with the value masked) for the others.
fn describe(e: &ValidationError<'_>, root: &Value) -> Invalid {
    let mut at = e.instance_path().as_str().to_string();
    let why = match e.kind() {
        Kind::Referencing(err) => return Invalid::Schema(err.to_string()),
        Kind::RegexEngineFailure { message } => return Invalid::Schema(format!("pattern failed: {message}")),
        Kind::BacktrackLimitExceeded { error } => return Invalid::Schema(format!("pattern failed: {error}")),
        // `additionalProperties: false` beside no `properties` fails as a `false` schema at
        // the object; point at its first property, as for the other forms.
        Kind::FalseSchema if e.schema_path().as_str().ends_with("/additionalProperties") => {
            if let Some(k) = root.pointer(&at).and_then(Value::as_object).and_then(|o| o.keys().next()) {
                push_token(&mut at, k);
            }
            "additional property not allowed".into()
        }
        Kind::FalseSchema => "the schema `false` accepts nothing".into(),
        Kind::Type { kind: TypeKind::Single(t) } => format!("type is not \"{t}\""),
        Kind::Type { kind: TypeKind::Multiple(ts) } => {
            format!("type is not {}", json!(ts.iter().map(|t| t.to_string()).collect::<Vec<_>>()))
        }
        Kind::Enum { .. } => "not one of the enum values".into(),
        Kind::Constant { .. } => "not the const value".into(),
        Kind::AnyOf { .. } => "matches none of anyOf".into(),
        Kind::OneOfNotValid { .. } => "matches 0 of oneOf, not 1".into(),
        Kind::OneOfMultipleValid { .. } => "matches more than 1 of oneOf".into(),
        Kind::Not { .. } => "matches the `not` schema".into(),
        Kind::Required { property } => {
            format!("missing required property `{}`", property.as_str().unwrap_or_default())
        }
        Kind::AdditionalProperties { unexpected } => {
            if let Some(k) = unexpected.first() {
                push_token(&mut at, k);
            }
            "additional property not allowed".into()
        }
        Kind::UnevaluatedProperties { unexpected } => {
            if let Some(k) = unexpected.first() {
                push_token(&mut at, k);
            }
            "unevaluated property not allowed".into()
        }
        Kind::PropertyNames { error } => {
            if let Some(name) = error.instance().as_str() {
                push_token(&mut at, name);
            }
            match describe(error, root) {
                Invalid::Instance { why, .. } => format!("property name {why}"),
                schema_fault => return schema_fault,
            }
        }
        Kind::MinProperties { .. } => "fewer properties than minProperties".into(),
        Kind::MaxProperties { .. } => "more properties than maxProperties".into(),
        Kind::MinItems { .. } => "fewer items than minItems".into(),
        Kind::MaxItems { .. } => "more items than maxItems".into(),
        Kind::UniqueItems => "items are not unique".into(),
        Kind::MinLength { .. } => "shorter than minLength".into(),
        Kind::MaxLength { .. } => "longer than maxLength".into(),
        Kind::Pattern { pattern } => format!("does not match pattern `{pattern}`"),
        Kind::Minimum { .. } => "below minimum".into(),
        Kind::Maximum { .. } => "above maximum".into(),
        Kind::ExclusiveMinimum { .. } => "not above exclusiveMinimum".into(),
        Kind::ExclusiveMaximum { .. } => "not below exclusiveMaximum".into(),
        Kind::MultipleOf { multiple_of } => format!("not a multiple of {multiple_of}"),
        // The rules the hand-written subset lacked: the crate's words, the value masked.
        _ => e.masked_with("the value").to_string(),
    };
    if at.is_empty() {
        at.push('/');
    }
    Invalid::Instance { at, why }
}

/// Validates `v` against `schema`, compiling the schema on each call (the reward compiles
/// each distinct schema once).
pub fn validate(schema: &Value, v: &Value) -> Result<(), Invalid> {
    first_violation(&compile(schema).map_err(Invalid::Schema)?, v)
}

/// A compiled schema, or why it did not compile.
type Compiled = Result<Arc<Validator>, String>;

/// A schema and what it compiled to.
struct Entry {
    schema: Value,
    compiled: Compiled,
}

/// The reward's state: the compiled schemas of the last tasks, by [`fingerprint`].
#[derive(Default)]
struct Checker {
    cache: Mutex<HashMap<u64, Arc<Entry>>>,
}

/// A hash of a schema's content, in its written order, without writing it out (a third of the
/// cost of `to_string` on a 900-byte schema).
fn fingerprint(v: &Value) -> u64 {
    fn walk(v: &Value, h: &mut DefaultHasher) {
        match v {
            Value::Null => h.write_u8(0),
            Value::Bool(b) => h.write_u8(1 + u8::from(*b)),
            Value::Number(n) => n.hash(h),
            Value::String(s) => s.hash(h),
            Value::Array(a) => {
                h.write_u8(3);
                h.write_usize(a.len());
                a.iter().for_each(|x| walk(x, h));
            }
            Value::Object(o) => {
                h.write_u8(4);
                h.write_usize(o.len());
                for (k, x) in o {
                    k.hash(h);
                    walk(x, h);
                }
            }
        }
    }
    let mut h = DefaultHasher::new();
    walk(v, &mut h);
    h.finish()
}

/// Equal, keys in the same order: what makes a cached entry this schema.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, p), (l, q))| k == l && same(p, q))
        }
        _ => a == b,
    }
}

impl Checker {
    fn compiled(&self, schema: &Value) -> Compiled {
        let key = fingerprint(schema);
        let hit = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        if let Some(e) = hit.filter(|e| same(&e.schema, schema)) {
            return e.compiled.clone();
        }
        // Compiled outside the lock, so one slow schema does not hold up the other workers;
        // two workers may compile the same schema once each. A fingerprint collision only
        // replaces the entry.
        let compiled = compile(schema).map(Arc::new);
        let entry = Arc::new(Entry { schema: schema.clone(), compiled: compiled.clone() });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAP {
            cache.clear();
        }
        cache.insert(key, entry);
        compiled
    }

    fn check(&self, task: &Task, completion: &str) -> Result<Checked, RewardError> {
        let schema = task
            .data
            .get("schema")
            .or_else(|| task.data.get("answer"))
            .ok_or_else(|| RewardError::new(format!("task {}: missing field `schema`", task.id)))?;
        let bad = |e: String| RewardError::new(format!("task {}: bad schema: {e}", task.id));
        // Compiled before extraction, so a broken schema is an error even when the completion
        // holds no JSON.
        let validator = self.compiled(schema).map_err(bad)?;
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
            Ok(v) => match first_violation(&validator, &v) {
                Ok(()) => 1.0,
                Err(Invalid::Instance { at, why }) => {
                    info["error"] = json!("schema_violation");
                    info["at"] = json!(at);
                    info["detail"] = json!(why);
                    0.0
                }
                Err(Invalid::Schema(e)) => return Err(bad(e)),
            },
        };
        Ok(Checked { value, found: true, info })
    }
}

/// Builds the rubric: `accuracy`, `format`, and any shaping terms.
pub fn rubric(config: &Config) -> Result<Rubric, BoxError> {
    let cfg: SchemaConfig = parse_config(config)?;
    let checker = Arc::new(Checker::default());
    let check: Check = Arc::new(move |task: &Task, text: &str| checker.check(task, text));
    shaping::rubric("accuracy", check, cfg.shaping)
}

/// Registers `answer/json_schema`.
pub fn register(registry: &mut Registry) {
    registry.reward(
        "answer/json_schema",
        "the completion's JSON (last ```json block by default) is valid under the task's `schema`",
        rubric,
    );
    registry.defaults(rlvr_engine::Kind::Reward, "answer/json_schema", SchemaConfig::default());
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

    fn violation(schema: Value, v: Value) -> (String, String) {
        match validate(&schema, &v) {
            Err(Invalid::Instance { at, why }) => (at, why),
            other => panic!("{schema} {v}: {other:?}"),
        }
    }

    #[test]
    fn refs_and_defs() {
        // A recursive type through `$defs`, and draft 7's `definitions`.
        let list = json!({
            "$defs": {"node": {
                "type": "object",
                "required": ["v"],
                "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}
            }},
            "$ref": "#/$defs/node"
        });
        assert_eq!(validate(&list, &json!({"v": 1, "next": {"v": 2, "next": {"v": 3}}})), Ok(()));
        let (at, why) = violation(list.clone(), json!({"v": 1, "next": {"v": 2, "next": {"v": "x"}}}));
        assert_eq!((at.as_str(), why.as_str()), ("/next/next/v", "type is not \"integer\""));
        assert_eq!(violation(list, json!({"v": 1, "next": {}})).0, "/next");
        let d7 = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "definitions": {"pos": {"type": "integer", "minimum": 1}},
            "properties": {"a/b": {"$ref": "#/definitions/pos"}}
        });
        assert_eq!(violation(d7, json!({"a/b": 0})), ("/a~1b".into(), "below minimum".into()));
        // An anchor.
        let anchored = json!({"$defs": {"x": {"$anchor": "id", "pattern": "^[a-z]+$"}}, "items": {"$ref": "#id"}});
        assert_eq!(violation(anchored, json!(["ok", "NO"])).0, "/1");
    }

    #[test]
    fn the_draft_is_the_one_schema_names() {
        // Draft 4's boolean `exclusiveMaximum`; 2020-12 (the default) wants a number there.
        let d4 = json!({"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5, "exclusiveMaximum": true});
        assert_eq!(validate(&d4, &json!(4)), Ok(()));
        assert_eq!(violation(d4, json!(5)).1, "not below exclusiveMaximum");
        let bare = json!({"maximum": 5, "exclusiveMaximum": true});
        assert!(matches!(validate(&bare, &json!(4)), Err(Invalid::Schema(_))));
        // 2020-12's `prefixItems` and `unevaluatedProperties`.
        let tuple = json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false});
        assert_eq!(validate(&tuple, &json!(["a", 1])), Ok(()));
        assert_eq!(violation(tuple, json!(["a", 1, 2])).0, "/2");
        let closed = json!({"allOf": [{"properties": {"a": {}}}], "unevaluatedProperties": false});
        assert_eq!(
            violation(closed, json!({"a": 1, "b": 2})),
            ("/b".into(), "unevaluated property not allowed".into())
        );
        // `additionalProperties: false` alone points at the property too.
        assert_eq!(violation(json!({"additionalProperties": false}), json!({"x/y": 1})).0, "/x~1y");
        let names = json!({"propertyNames": {"maxLength": 2}});
        assert_eq!(
            violation(names, json!({"ab": 1, "abc": 2})),
            ("/abc".into(), "property name longer than maxLength".into())
        );
        // `format` is an annotation in every draft.
        let d7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "format": "email"});
        assert_eq!(validate(&d7, &json!("not an address")), Ok(()));
    }

    #[test]
    fn nothing_outside_the_schema_is_fetched() {
        for s in [
            json!({"$ref": "https://example.com/person.json"}),
            json!({"$ref": "other.json"}),
            json!({"$id": "https://example.com/root.json", "properties": {"a": {"$ref": "a.json"}}}),
            json!({"$ref": "file:///etc/passwd"}),
            json!({"$schema": "https://example.com/my-meta-schema", "type": "string"}),
        ] {
            assert!(matches!(validate(&s, &json!(1)), Err(Invalid::Schema(_))), "{s}");
            let scored = score(json!({"schema": s}), "```json\n1\n```");
            assert_eq!(scored.total(), None);
            assert!(scored.error().unwrap().contains("bad schema"), "{:?}", scored.error());
        }
        let e = validate(&json!({"$ref": "https://example.com/person.json"}), &json!(1));
        assert!(matches!(e, Err(Invalid::Schema(m)) if m.contains("self-contained")));
    }

    #[test]
    fn a_keyword_no_draft_defines_is_a_schema_error_wherever_it_stands() {
        let bad = |s: Value| match validate(&s, &json!({})) {
            Err(Invalid::Schema(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        let m = bad(json!({"type": "object", "requried": ["a"]}));
        assert!(m.starts_with("at /: `requried` is not a JSON Schema keyword"), "{m}");
        let m = bad(json!({"properties": {"a/b": {"items": [{"minimun": 1}]}}}));
        assert!(m.starts_with("at /properties/a~1b/items/0: `minimun`"), "{m}");
        assert!(bad(json!({"$defs": {"d": {"not": {"tpye": "string"}}}})).contains("`tpye`"));
        let scored = score(json!({"schema": {"requried": ["a"]}}), "```json\n{}\n```");
        assert!(scored.total().is_none() && scored.error().unwrap().contains("requried"), "{:?}", scored.error());
        // Names are not keywords; values of enum, const, default and examples are not schemas;
        // vendor keywords are allowed.
        let fine = json!({
            "properties": {"requried": {"type": "string", "x-order": 1}},
            "enum": [{"tpye": 1}], "const": {"tpye": 1}, "default": {"tpye": 1}, "examples": [{"tpye": 1}],
            "dependencies": {"a": ["b"]}, "items": true, "x-vendor": {"tpye": 1},
        });
        assert!(unknown_keyword(&fine, &mut String::new()).is_none());
    }

    #[test]
    fn patterns_run_in_linear_time_and_lookaround_is_refused() {
        let s = json!({"pattern": "^(a+)+$"});
        assert_eq!(violation(s, json!(format!("{}b", "a".repeat(100_000)))).1, "does not match pattern `^(a+)+$`");
        assert!(matches!(validate(&json!({"pattern": "^(?=a)"}), &json!("a")), Err(Invalid::Schema(_))));
    }

    #[test]
    fn a_schema_is_compiled_once_and_depth_is_bounded() {
        let checker = Checker::default();
        let (a, b) = (checker.compiled(&schema()).unwrap(), checker.compiled(&schema()).unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(checker.cache.lock().unwrap().len(), 1);
        assert!(checker.compiled(&json!({"type": "float"})).is_err());
        assert_eq!(checker.cache.lock().unwrap().len(), 2, "a broken schema is remembered too");
        let mut deep = json!({"type": "integer"});
        for _ in 1..MAX_DEPTH {
            deep = json!({"items": deep});
        }
        assert_eq!(validate(&deep, &json!([[1]])), Ok(()), "MAX_DEPTH levels, on a test thread's stack");
        deep = json!({"items": deep});
        let e = validate(&deep, &json!([1]));
        assert!(matches!(e, Err(Invalid::Schema(m)) if m.contains("deeper than")));
    }
}
