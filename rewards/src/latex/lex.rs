//! Cleaning and tokens: what carries no meaning is dropped, the rest becomes tokens with the
//! column each starts at, so errors can point at the answer as written.

use super::{ParseError, Rel, err};
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Num(String),
    Letter(char),
    Cmd(String),
    Sym(char),
    LBraceLit,
    RBraceLit,
    /// `= < <= \le \neq \approx ...`
    Rel(Rel),
    /// `\\`: a matrix row ends.
    RowSep,
    /// `\begin{name}` (an `array`'s column spec is skipped).
    Begin(String),
    /// `\end{name}`.
    End(String),
}

/// A token as it is written in LaTeX, for messages.
impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => f.write_str(n),
            Tok::Letter(c) | Tok::Sym(c) => write!(f, "{c}"),
            Tok::Cmd(c) => write!(f, "\\{c}"),
            Tok::LBraceLit => f.write_str("\\{"),
            Tok::RBraceLit => f.write_str("\\}"),
            Tok::Rel(r) => f.write_str(r.symbol()),
            Tok::RowSep => f.write_str("\\\\"),
            Tok::Begin(n) => write!(f, "\\begin{{{n}}}"),
            Tok::End(n) => write!(f, "\\end{{{n}}}"),
        }
    }
}

/// Text that escaped its backslashes twice (`\\frac`, from JSON written by hand or a model
/// that escaped its LaTeX): a doubled backslash before a letter is one. A doubled backslash
/// before anything else is a matrix row break and stays.
fn undouble_backslashes(s: &str) -> String {
    if !s.contains("\\\\") {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') {
            if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) {
                out.push('\\');
            } else {
                out.push_str("\\\\");
            }
            i += 2;
        } else {
            let c = s[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The content of a text command that makes up the whole answer (`\text{Evelyn}`,
/// `$\textbf{(C)}$`), so that word answers are compared as words, not dropped as units.
pub(super) fn whole_text(s: &str) -> Option<&str> {
    let t = s.trim().trim_matches('$').trim().trim_end_matches('.').trim();
    for cmd in ["\\text{", "\\textbf{", "\\textnormal{", "\\textit{", "\\mathrm{", "\\mbox{"] {
        if let Some(rest) = t.strip_prefix(cmd) {
            let open = cmd.len() - 1;
            if super::match_brace(t, open) == Some(t.len() - 1) {
                return Some(&rest[..rest.len() - 1]);
            }
        }
    }
    None
}

/// Drops what carries no mathematical meaning: `$`, `\left`, spacing, `\text{..}` (units; the
/// words "and" and "or" become commas), degree marks, a trailing period.
pub(super) fn clean(s: &str) -> String {
    // Matrix row breaks `\\` are set aside first, so that spacing commands (`\ `) cannot eat
    // half of one.
    let mut out = undouble_backslashes(s.trim()).replace("\\\\", "\u{0}");
    // `11,\! 111`: a comma with a negative thin space is a thousands separator.
    while let Some(i) = out.find(",\\!") {
        let rest = out[i + 3..].trim_start().to_string();
        out.truncate(i);
        out.push_str(&rest);
    }
    for (from, to) in [
        ("\\displaystyle", ""),
        ("\\boxed", ""),
        ("\\fbox", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("\\bigl", ""),
        ("\\bigr", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\cfrac", "\\frac"),
        ("\\textnormal", "\\text"),
        ("\\qquad", " "),
        ("\\quad", " "),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("°", ""),
        ("\\%", "%"),
        ("{,}", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\ ", ""),
        ("\\$", ""),
        ("$", ""),
        ("~", ""),
        ("\\[", ""),
        ("\\]", ""),
        ("\\(", ""),
        ("\\)", ""),
    ] {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    // `\text{...}`, `\mbox{...}`: units and words, dropped; "and", "or" separate answers.
    for cmd in ["\\text", "\\mbox", "\\textbf", "\\textit"] {
        let pat = format!("{cmd}{{");
        let mut from = 0;
        while let Some(i) = out[from..].find(&pat).map(|i| i + from) {
            let open = i + cmd.len();
            let close = super::match_brace(&out, open).unwrap_or(out.len() - 1);
            let word = out[open + 1..close].trim();
            let keep = if matches!(word, "and" | "or" | "," | ";") { "," } else { "" };
            out.replace_range(i..=close, keep);
            from = i + keep.len();
        }
    }
    for cmd in ["\\mathrm", "\\mathbf", "\\boldsymbol", "\\operatorname", "\\mathit"] {
        if out.contains(cmd) {
            out = out.replace(cmd, "");
        }
    }
    let out = out.replace('\u{0}', "\\\\");
    let t = out.trim().trim_end_matches('.').trim();
    // `1,234,567` as a whole answer is one number, not a list.
    if is_thousands(t) {
        return t.replace(',', "");
    }
    t.to_string()
}

fn is_thousands(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    let int = t.split('.').next().unwrap_or("");
    if t.split('.').count() > 2 || !int.contains(',') {
        return false;
    }
    let mut groups = int.split(',');
    let first = groups.next().unwrap_or("");
    (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
        && t.split('.').nth(1).is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// The relation a command names, if it is one.
fn rel_command(name: &str) -> Option<Rel> {
    Some(match name {
        "le" | "leq" | "leqslant" => Rel::Le,
        "ge" | "geq" | "geqslant" => Rel::Ge,
        "lt" => Rel::Lt,
        "gt" => Rel::Gt,
        "ne" | "neq" => Rel::Ne,
        "approx" => Rel::Approx,
        _ => return None,
    })
}

/// A word at `i` of `cs` standing alone (no letter before it, none after it): "and" and "or"
/// separate answers, "percent", "percentage" and "pct" mark a percentage.
fn word_at(cs: &[char], i: usize) -> Option<(usize, Tok)> {
    if i > 0 && cs[i - 1].is_alphabetic() {
        return None;
    }
    for (w, tok) in [
        ("percentage", Tok::Sym('%')),
        ("percent", Tok::Sym('%')),
        ("pct", Tok::Sym('%')),
        ("and", Tok::Sym(',')),
        ("or", Tok::Sym(',')),
    ] {
        let n = w.chars().count();
        if cs.len() >= i + n
            && cs[i..i + n].iter().copied().eq(w.chars())
            && !cs.get(i + n).is_some_and(|c| c.is_lowercase())
        {
            return Some((n, tok));
        }
    }
    None
}

/// The tokens of `s`, each with the column (1-based, in characters) where it starts.
pub(super) fn lex(s: &str) -> Result<(Vec<Tok>, Vec<usize>), ParseError> {
    let mut toks = Vec::new();
    let mut cols = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        cols.push(i + 1);
        if c.is_ascii_digit() || (c == '.' && cs.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < cs.len() && cs[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < cs.len() && cs[i] == '.' && cs[i + 1].is_ascii_digit() {
                i += 1;
                while i < cs.len() && cs[i].is_ascii_digit() {
                    i += 1;
                }
            } else if i < cs.len() && cs[i] == '.' && start < i {
                i += 1; // "2." is 2.0
            }
            toks.push(Tok::Num(cs[start..i].iter().collect()));
        } else if c == '\\' {
            let start = i + 1;
            i += 1;
            while i < cs.len() && cs[i].is_ascii_alphabetic() {
                i += 1;
            }
            if i == start {
                match cs.get(i) {
                    Some('{') => toks.push(Tok::LBraceLit),
                    Some('}') => toks.push(Tok::RBraceLit),
                    Some('\\') => toks.push(Tok::RowSep),
                    Some(other) => return err(format!("unsupported escape `\\{other}` at column {}", i)),
                    None => return err("dangling backslash"),
                }
                i += 1;
                continue;
            }
            let name: String = cs[start..i].iter().collect();
            if let Some(r) = rel_command(&name) {
                toks.push(Tok::Rel(r));
            } else if name == "pm" || name == "mp" {
                toks.push(Tok::Sym('±'));
            } else if name == "begin" || name == "end" {
                let env =
                    braced_word(&cs, &mut i).ok_or_else(|| ParseError(format!("`\\{name}` without `{{name}}`")))?;
                if name == "begin" {
                    if env == "array" {
                        braced_word(&cs, &mut i);
                    }
                    toks.push(Tok::Begin(env));
                } else {
                    toks.push(Tok::End(env));
                }
            } else {
                toks.push(Tok::Cmd(name));
            }
        } else if c.is_alphabetic() {
            if let Some((n, tok)) = word_at(&cs, i) {
                toks.push(tok);
                i += n;
            } else {
                toks.push(Tok::Letter(c));
                i += 1;
            }
        } else if c == '<' || c == '>' || (c == '!' && cs.get(i + 1) == Some(&'=')) {
            let or_equal = cs.get(i + 1) == Some(&'=');
            toks.push(Tok::Rel(match (c, or_equal) {
                ('<', false) => Rel::Lt,
                ('<', true) => Rel::Le,
                ('>', false) => Rel::Gt,
                ('>', true) => Rel::Ge,
                _ => Rel::Ne,
            }));
            i += 1 + usize::from(or_equal);
        } else if c == '=' {
            toks.push(Tok::Rel(Rel::Eq));
            i += 1;
        } else if "+-*/^_(){}[],|%!:;&".contains(c) {
            toks.push(Tok::Sym(c));
            i += 1;
        } else {
            let tok = match c {
                '·' | '×' => Tok::Sym('*'),
                '÷' => Tok::Sym('/'),
                '−' => Tok::Sym('-'),
                '±' => Tok::Sym('±'),
                'π' => Tok::Cmd("pi".into()),
                '∞' => Tok::Cmd("infty".into()),
                '≤' => Tok::Rel(Rel::Le),
                '≥' => Tok::Rel(Rel::Ge),
                '≠' => Tok::Rel(Rel::Ne),
                '≈' => Tok::Rel(Rel::Approx),
                _ => return err(format!("unsupported character `{c}` at column {}", i + 1)),
            };
            toks.push(tok);
            i += 1;
        }
    }
    Ok((toks, cols))
}

/// `{word}` at `i` (after optional spaces), advancing past it.
fn braced_word(cs: &[char], i: &mut usize) -> Option<String> {
    let mut j = *i;
    while cs.get(j).is_some_and(|c| c.is_whitespace()) {
        j += 1;
    }
    if cs.get(j) != Some(&'{') {
        return None;
    }
    let close = cs[j..].iter().position(|&c| c == '}')? + j;
    *i = close + 1;
    Some(cs[j + 1..close].iter().collect::<String>().trim().to_string())
}
