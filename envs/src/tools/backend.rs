//! Deterministic tools implemented in Rust: a calculator, unit conversion, an inventory (a
//! key-value store with state per episode), a calendar, and lookup over a small bundled table.
//!
//! Every call is validated against the tool's JSON Schema first; a tool's own failure (stock
//! too low, unknown country, division by zero) is a [`ToolError`] with category `tool_error`:
//! an observation the model can recover from, never an environment fault.

use super::parse::Call;
use super::schema::{self, Violation};
use super::value::Val;
use serde::Serialize;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Category of a failure inside a tool (as opposed to a malformed call).
pub const TOOL_ERROR: &str = "tool_error";

/// A failed call: its category (see [`super::ast_check::category`], or [`TOOL_ERROR`]) and message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolError {
    /// Which kind of failure.
    pub category: &'static str,
    /// What went wrong, for the model.
    pub message: String,
}

impl From<Violation> for ToolError {
    fn from(v: Violation) -> Self {
        Self { category: v.category, message: v.message }
    }
}

fn tool_err<T>(message: impl Into<String>) -> Result<T, ToolError> {
    Err(ToolError { category: TOOL_ERROR, message: message.into() })
}

/// The bundled lookup table: country, capital, continent, currency, population in millions
/// (rounded 2023 estimates; the table is the tool's truth, whatever the world says).
pub const COUNTRIES: &[(&str, &str, &str, &str, f64)] = &[
    ("Argentina", "Buenos Aires", "South America", "peso", 46.7),
    ("Australia", "Canberra", "Oceania", "Australian dollar", 26.6),
    ("Brazil", "Brasilia", "South America", "real", 216.4),
    ("Canada", "Ottawa", "North America", "Canadian dollar", 40.1),
    ("Egypt", "Cairo", "Africa", "Egyptian pound", 112.7),
    ("France", "Paris", "Europe", "euro", 68.2),
    ("Germany", "Berlin", "Europe", "euro", 84.5),
    ("India", "New Delhi", "Asia", "rupee", 1428.6),
    ("Italy", "Rome", "Europe", "euro", 58.9),
    ("Japan", "Tokyo", "Asia", "yen", 124.5),
    ("Kenya", "Nairobi", "Africa", "shilling", 55.1),
    ("Mexico", "Mexico City", "North America", "peso", 128.5),
    ("Nigeria", "Abuja", "Africa", "naira", 223.8),
    ("Norway", "Oslo", "Europe", "krone", 5.5),
    ("Peru", "Lima", "South America", "sol", 34.4),
    ("Poland", "Warsaw", "Europe", "zloty", 36.7),
    ("Spain", "Madrid", "Europe", "euro", 48.6),
    ("Thailand", "Bangkok", "Asia", "baht", 71.8),
    ("Vietnam", "Hanoi", "Asia", "dong", 98.9),
];

/// Lookup fields.
pub const FIELDS: [&str; 4] = ["capital", "continent", "currency", "population_millions"];

/// Units by dimension, with their factor to the dimension's base unit (temperature is affine).
const UNITS: &[(&str, &str, f64)] = &[
    ("m", "length", 1.0),
    ("km", "length", 1000.0),
    ("cm", "length", 0.01),
    ("mm", "length", 0.001),
    ("mi", "length", 1609.344),
    ("yd", "length", 0.9144),
    ("ft", "length", 0.3048),
    ("in", "length", 0.0254),
    ("kg", "mass", 1.0),
    ("g", "mass", 0.001),
    ("lb", "mass", 0.453_592_37),
    ("oz", "mass", 0.028_349_523_125),
    ("s", "time", 1.0),
    ("min", "time", 60.0),
    ("h", "time", 3600.0),
    ("day", "time", 86400.0),
    ("C", "temperature", 1.0),
    ("F", "temperature", 1.0),
    ("K", "temperature", 1.0),
];

/// The unit names `convert_units` accepts.
pub fn unit_names() -> Vec<&'static str> {
    UNITS.iter().map(|u| u.0).collect()
}

/// Every tool's declaration, in OpenAI's function format.
pub fn tool_specs() -> &'static [Json] {
    static SPECS: OnceLock<Vec<Json>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let f = |name: &str, desc: &str, props: Json, required: &[&str]| {
            json!({"type": "function", "function": {"name": name, "description": desc,
                "parameters": {"type": "object", "properties": props, "required": required}}})
        };
        let item = json!({"type": "string", "description": "item name", "minLength": 1, "maxLength": 64});
        let qty = json!({"type": "integer", "minimum": 1, "maximum": 1_000_000});
        let date = json!({"type": "string", "description": "YYYY-MM-DD", "minLength": 10, "maxLength": 10});
        let countries: Vec<&str> = COUNTRIES.iter().map(|c| c.0).collect();
        vec![
            f(
                "calculate",
                "Evaluate an arithmetic expression with + - * / ^ and parentheses.",
                json!({"expression": {"type": "string", "minLength": 1, "maxLength": 256}}),
                &["expression"],
            ),
            f(
                "convert_units",
                "Convert a value between units of length, mass, time or temperature.",
                json!({"value": {"type": "number"}, "from_unit": {"type": "string", "enum": unit_names()},
                     "to_unit": {"type": "string", "enum": unit_names()}}),
                &["value", "from_unit", "to_unit"],
            ),
            f("inventory_get", "How many units of an item are in stock.", json!({"item": item}), &["item"]),
            f(
                "inventory_add",
                "Add units of an item to the stock; returns the new quantity.",
                json!({"item": item, "quantity": qty}),
                &["item", "quantity"],
            ),
            f(
                "inventory_remove",
                "Remove units of an item from the stock; fails if there are too few.",
                json!({"item": item, "quantity": qty}),
                &["item", "quantity"],
            ),
            f(
                "calendar_add_days",
                "The date a number of days after (or, if negative, before) a date.",
                json!({"date": date, "days": {"type": "integer", "minimum": -36500, "maximum": 36500}}),
                &["date", "days"],
            ),
            f("calendar_weekday", "The day of the week of a date.", json!({"date": date}), &["date"]),
            f(
                "lookup_country",
                "Look up a fact about a country in the bundled table.",
                json!({"country": {"type": "string", "enum": countries}, "field": {"type": "string", "enum": FIELDS}}),
                &["country", "field"],
            ),
        ]
    })
}

/// The declarations of the tools named, in the order given.
pub fn specs_for(names: &[String]) -> Vec<Json> {
    names.iter().filter_map(|n| tool_specs().iter().find(|t| t["function"]["name"] == n.as_str()).cloned()).collect()
}

/// The per-episode state of the tools: the inventory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Backend {
    /// Item to quantity.
    pub inventory: BTreeMap<String, i64>,
}

impl Backend {
    /// A backend whose inventory is `state["inventory"]` (an object of item to count), if any.
    pub fn from_state(state: &Json) -> Result<Self, String> {
        let mut inventory = BTreeMap::new();
        if let Some(inv) = state.get("inventory") {
            let obj = inv.as_object().ok_or("`state.inventory` must be an object")?;
            for (k, v) in obj {
                let q = v
                    .as_i64()
                    .filter(|q| *q >= 0)
                    .ok_or_else(|| format!("inventory count of `{k}` must be a count"))?;
                inventory.insert(k.clone(), q);
            }
        }
        Ok(Self { inventory })
    }

    /// The state as JSON, comparable with a task's gold state.
    pub fn state(&self) -> Json {
        json!({ "inventory": self.inventory })
    }

    /// Validates `call` against `tools` and runs it.
    pub fn call(&mut self, tools: &[Json], call: &Call) -> Result<Json, ToolError> {
        schema::validate(tools, call)?;
        let s = |k: &str| call.arg(k).and_then(Val::as_str).unwrap_or_default().to_string();
        let i = |k: &str| match call.arg(k) {
            Some(Val::Int(i)) => *i as i64,
            Some(Val::Float(f)) => *f as i64,
            _ => 0,
        };
        let f = |k: &str| match call.arg(k) {
            Some(Val::Int(i)) => *i as f64,
            Some(Val::Float(f)) => *f,
            _ => 0.0,
        };
        match call.name.as_str() {
            "calculate" => Ok(json!({ "result": num_json(calculate(&s("expression"))?) })),
            "convert_units" => Ok(json!({ "result": num_json(convert(f("value"), &s("from_unit"), &s("to_unit"))?) })),
            "inventory_get" => {
                let item = s("item");
                match self.inventory.get(&item) {
                    Some(q) => Ok(json!({ "item": item, "quantity": q })),
                    None => tool_err(format!("no item named `{item}`; items: {}", self.items())),
                }
            }
            "inventory_add" => {
                let item = s("item");
                let q = self.inventory.entry(item.clone()).or_insert(0);
                *q += i("quantity");
                Ok(json!({ "item": item, "quantity": *q }))
            }
            "inventory_remove" => {
                let (item, n) = (s("item"), i("quantity"));
                let items = self.items();
                match self.inventory.get_mut(&item) {
                    None => tool_err(format!("no item named `{item}`; items: {items}")),
                    Some(q) if *q < n => tool_err(format!("only {q} `{item}` in stock, cannot remove {n}")),
                    Some(q) => {
                        *q -= n;
                        Ok(json!({ "item": item, "quantity": *q }))
                    }
                }
            }
            "calendar_add_days" => {
                let d = parse_date(&s("date"))?;
                Ok(json!({ "date": format_date(d + i("days")) }))
            }
            "calendar_weekday" => Ok(json!({ "weekday": weekday(parse_date(&s("date"))?) })),
            "lookup_country" => {
                let (country, field) = (s("country"), s("field"));
                let Some(row) = COUNTRIES.iter().find(|c| c.0 == country) else {
                    return tool_err(format!("no country `{country}` in the table"));
                };
                let value = match field.as_str() {
                    "capital" => json!(row.1),
                    "continent" => json!(row.2),
                    "currency" => json!(row.3),
                    _ => num_json(row.4),
                };
                Ok(json!({ "value": value }))
            }
            other => tool_err(format!("tool `{other}` is declared but has no implementation")),
        }
    }

    fn items(&self) -> String {
        self.inventory.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// A number as JSON: integral values as integers, so `6.0` prints as `6`.
pub fn num_json(x: f64) -> Json {
    if x.fract() == 0.0 && x.abs() < 1e15 { json!(x as i64) } else { json!(x) }
}

/// A number as an answer string: integral values without a fraction, others as JSON prints them.
pub fn fmt_num(x: f64) -> String {
    num_json(x).to_string()
}

/// Evaluates `+ - * / ^` and parentheses over decimal numbers (`^` is right-associative and
/// binds tighter than unary minus, as in maths).
pub fn calculate(expr: &str) -> Result<f64, ToolError> {
    let mut p = Calc { s: expr.as_bytes(), pos: 0, depth: 0 };
    let v = p.sum()?;
    p.ws();
    if p.pos != p.s.len() {
        return tool_err(format!("unexpected `{}` at position {}", expr[p.pos..].chars().next().unwrap_or(' '), p.pos));
    }
    if !v.is_finite() {
        return tool_err("the result is not a finite number");
    }
    Ok(v)
}

struct Calc<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Calc<'_> {
    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.pos).copied()
    }
    fn sum(&mut self) -> Result<f64, ToolError> {
        let mut v = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            let r = self.product()?;
            v = if op == b'+' { v + r } else { v - r };
        }
        Ok(v)
    }
    fn product(&mut self) -> Result<f64, ToolError> {
        let mut v = self.unary()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            let r = self.unary()?;
            if op == b'/' && r == 0.0 {
                return tool_err("division by zero");
            }
            v = if op == b'*' { v * r } else { v / r };
        }
        Ok(v)
    }
    fn unary(&mut self) -> Result<f64, ToolError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            return Ok(-self.unary()?);
        }
        self.power()
    }
    fn power(&mut self) -> Result<f64, ToolError> {
        let base = self.atom()?;
        if self.peek() == Some(b'^') {
            self.pos += 1;
            let e = self.unary()?;
            return Ok(base.powf(e));
        }
        Ok(base)
    }
    fn atom(&mut self) -> Result<f64, ToolError> {
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > 64 {
                    return tool_err("parentheses nest too deeply");
                }
                let v = self.sum()?;
                self.depth -= 1;
                if self.peek() != Some(b')') {
                    return tool_err("missing `)`");
                }
                self.pos += 1;
                Ok(v)
            }
            Some(b'0'..=b'9' | b'.') => {
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
                text.parse().or_else(|_| tool_err(format!("bad number `{text}`")))
            }
            Some(c) => tool_err(format!("unexpected `{}` at position {}", c as char, self.pos)),
            None => tool_err("unexpected end of expression"),
        }
    }
}

/// Converts `value` from one unit to another of the same dimension, rounded to 6 decimals.
pub fn convert(value: f64, from: &str, to: &str) -> Result<f64, ToolError> {
    let find = |u: &str| UNITS.iter().find(|x| x.0 == u);
    let (Some(a), Some(b)) = (find(from), find(to)) else {
        return tool_err("unknown unit");
    };
    if a.1 != b.1 {
        return tool_err(format!("cannot convert {} ({}) to {} ({})", a.0, a.1, b.0, b.1));
    }
    let out = if a.1 == "temperature" {
        let kelvin = match from {
            "C" => value + 273.15,
            "F" => (value - 32.0) * 5.0 / 9.0 + 273.15,
            _ => value,
        };
        match to {
            "C" => kelvin - 273.15,
            "F" => (kelvin - 273.15) * 9.0 / 5.0 + 32.0,
            _ => kelvin,
        }
    } else {
        value * a.2 / b.2
    };
    if !out.is_finite() {
        return tool_err("the result is not a finite number");
    }
    Ok((out * 1e6).round() / 1e6)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
pub fn parse_date(s: &str) -> Result<i64, ToolError> {
    let bad = || ToolError { category: TOOL_ERROR, message: format!("`{s}` is not a YYYY-MM-DD date") };
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or_else(bad);
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of a day number (inverse of [`parse_date`]).
pub fn format_date(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The English name of the weekday of a day number.
pub fn weekday(z: i64) -> &'static str {
    // 1970-01-01 was a Thursday.
    ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"][z.rem_euclid(7) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::parse::parse_calls;

    fn run(b: &mut Backend, text: &str) -> Result<Json, ToolError> {
        b.call(tool_specs(), &parse_calls(text).unwrap()[0])
    }

    #[test]
    fn calculator_and_units() {
        assert_eq!(calculate("2 + 3 * (4 - 1) ^ 2").unwrap(), 29.0);
        assert_eq!(calculate("-2 ^ 2").unwrap(), -4.0);
        assert_eq!(calculate("7 / 0").unwrap_err().message, "division by zero");
        assert!(calculate("2 +").is_err());
        assert_eq!(convert(1.0, "mi", "km").unwrap(), 1.609344);
        assert_eq!(convert(212.0, "F", "C").unwrap(), 100.0);
        assert!(convert(1.0, "kg", "m").is_err());
    }

    #[test]
    fn calendar() {
        assert_eq!(weekday(parse_date("2024-03-15").unwrap()), "Friday");
        assert_eq!(format_date(parse_date("2024-02-28").unwrap() + 2), "2024-03-01");
        assert_eq!(format_date(parse_date("2000-01-01").unwrap() - 1), "1999-12-31");
        assert!(parse_date("2023-02-29").is_err());
    }

    #[test]
    fn inventory_state_and_recoverable_errors() {
        let mut b = Backend::from_state(&json!({"inventory": {"bolts": 5}})).unwrap();
        assert_eq!(run(&mut b, "inventory_add(item='bolts', quantity=3)").unwrap()["quantity"], 8);
        let e = run(&mut b, "inventory_remove(item='bolts', quantity=9)").unwrap_err();
        assert_eq!(e.category, TOOL_ERROR);
        assert_eq!(run(&mut b, "inventory_remove(item='bolts', quantity=8)").unwrap()["quantity"], 0);
        assert_eq!(run(&mut b, "inventory_add(item='bolts', quantity=-1)").unwrap_err().category, "value_not_allowed");
        assert_eq!(b.state(), json!({"inventory": {"bolts": 0}}));
        assert_eq!(run(&mut b, "lookup_country(country='Peru', field='capital')").unwrap()["value"], "Lima");
    }
}
