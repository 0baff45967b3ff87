//! Where a math answer is, following `math-verify`'s extraction: candidates in tiers, each
//! tier's candidates from the end of the text backwards; the verifier takes the first that
//! parses.
//!
//! The tiers, most explicit first:
//! 1. a `\boxed{}` (several boxes close together, or joined by "and", "or" or commas, are one
//!    answer of several values; the boxes inside one `$...$` are one answer), and Minerva's
//!    sentence "Final Answer: The final answer is $X$. I hope it is correct.";
//! 2. the last `<answer>...</answer>`;
//! 3. "final answer ... is X";
//! 4. a last line starting `ANSWER` (the rest of the line);
//! 5. "answer: ... X";
//! 6. "answer ... X";
//! 7. a LaTeX environment (`$..$`, `$$..$$`, `\(..\)`, `\[..\]`; several joined by "and",
//!    "or" or commas are one answer), a plain `\frac{a}{b}`, and (unless LaTeX only) a number
//!    standing alone: after a space, `=` or the start, with thousands separators (`1,000`,
//!    `1 000`), a decimal comma (`2,74`), a fraction (`2/3`) and a percent sign or word.
//!
//! ## Design
//! Hand-written scanners rather than regular expressions: every scan is a pass over the text
//! (the windows after "answer" are bounded, 50 to 100 characters), so a megabyte completion
//! costs linear time.

use crate::extract;

/// A place the answer may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Which rule found it (`boxed`, `final_answer`, `answer_tag`, `answer_line`, `answer`,
    /// `latex`, `number`).
    pub rule: &'static str,
    /// The answer's text; values from several boxes or environments are joined by `, `.
    pub text: String,
    /// Byte offset where it starts in the completion.
    pub start: usize,
    /// Byte offset where it ends.
    pub end: usize,
}

/// A LaTeX environment found in the text.
#[derive(Clone, Copy, Debug)]
struct Env {
    start: usize,
    end: usize,
    body: (usize, usize),
    percent: bool,
}

/// The tiers of candidates of one text, computed on demand: most completions have a box, and
/// then the later tiers are never scanned.
pub struct Finder<'a> {
    text: &'a str,
    numbers: bool,
    envs: std::cell::OnceCell<Vec<Env>>,
    groups: std::cell::OnceCell<Vec<(usize, usize, String)>>,
}

/// How many tiers there are.
pub const TIERS: usize = 7;

impl<'a> Finder<'a> {
    /// A finder over `text`; `numbers`: whether bare numbers count (math-verify's `expr`
    /// extraction beside its `latex` one).
    pub fn new(text: &'a str, numbers: bool) -> Self {
        Self { text, numbers, envs: Default::default(), groups: Default::default() }
    }

    fn envs(&self) -> &[Env] {
        self.envs.get_or_init(|| envs(self.text))
    }

    fn groups(&self) -> &[(usize, usize, String)] {
        self.groups.get_or_init(|| groups(self.text, self.envs(), false))
    }

    /// The candidates of tier `k` (0-based), from the end of the text backwards.
    pub fn tier(&self, k: usize) -> Vec<Candidate> {
        let (text, numbers) = (self.text, self.numbers);
        let mut out = Vec::new();
        match k {
            0 => {
                out.extend(boxed(text, self.envs()));
                out.extend(after_phrase(text, self.groups(), "final answer is", Phrase::Minerva, numbers));
            }
            1 => out.extend(extract::last_tag(text, "answer").map(|f| Candidate {
                rule: "answer_tag",
                text: f.text.to_string(),
                start: f.start,
                end: f.end,
            })),
            2 => out.extend(after_phrase(text, self.groups(), "final answer", Phrase::Is, numbers)),
            3 => out.extend(extract::answer_line(text).map(|f| Candidate {
                rule: "answer_line",
                text: f.text.to_string(),
                start: f.start,
                end: f.end,
            })),
            4 => out.extend(after_phrase(text, self.groups(), "answer:", Phrase::Near, numbers)),
            5 => out.extend(after_phrase(text, self.groups(), "answer", Phrase::Near, numbers)),
            6 => {
                out.extend(self.groups().iter().map(|(s, e, t)| Candidate {
                    rule: "latex",
                    text: t.clone(),
                    start: *s,
                    end: *e,
                }));
                out.extend(plain_fractions(text, self.envs()));
                if numbers {
                    out.extend(numbers_in(text).into_iter().map(|(s, e, t)| Candidate {
                        rule: "number",
                        text: t,
                        start: s,
                        end: e,
                    }));
                }
            }
            _ => {}
        }
        out.sort_by(|a, b| b.end.cmp(&a.end).then(a.start.cmp(&b.start)));
        out
    }
}

/// Every candidate, tier by tier, in the order to try them.
pub fn candidates(text: &str, numbers: bool) -> Vec<Candidate> {
    let f = Finder::new(text, numbers);
    (0..TIERS).flat_map(|k| f.tier(k)).collect()
}

/// Whether the text marks its answer (a box or a LaTeX environment) rather than being one.
pub fn is_marked(text: &str) -> bool {
    text.contains('$')
        || text.contains("\\boxed")
        || text.contains("\\fbox")
        || text.contains("\\(")
        || text.contains("\\[")
}

fn escaped(b: &[u8], i: usize) -> bool {
    i > 0 && b[i - 1] == b'\\'
}

/// The LaTeX environments, left to right, not overlapping: `$$..$$` and `\[..\]` may span
/// lines; `$..$` (not after a digit or backslash) and `\(..\)` may not. A percent sign or word
/// right after one belongs to it.
fn envs(text: &str) -> Vec<Env> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    // A closer that is not found from one place is not found from any later one: remember it,
    // so that many unclosed `$$` cost one scan, not one each.
    let (mut no_dd, mut no_bracket) = (false, false);
    let multiline = |from: usize, close: &str, none: &mut bool| {
        if *none {
            return None;
        }
        let r = find_close(text, from, close, true);
        *none = r.is_none();
        r
    };
    let mut i = 0;
    while i < b.len() {
        let found = if b[i] == b'$' && b.get(i + 1) == Some(&b'$') && !escaped(b, i) {
            multiline(i + 2, "$$", &mut no_dd)
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'[') && !escaped(b, i) {
            multiline(i + 2, "\\]", &mut no_bracket)
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'(') && !escaped(b, i) {
            find_close(text, i + 2, "\\)", false)
        } else if b[i] == b'$' && !escaped(b, i) && !(i > 0 && b[i - 1].is_ascii_digit()) {
            find_close(text, i + 1, "$", false)
        } else {
            None
        };
        match found {
            Some((body_end, end)) => {
                let open = if b[i] == b'$' && b.get(i + 1) == Some(&b'$') || b[i] == b'\\' { 2 } else { 1 };
                let (pend, percent) = percent_after(text, end);
                out.push(Env { start: i, end: pend, body: (i + open, body_end), percent });
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

/// The closing delimiter after `from` (not escaped, a non-empty body, no newline unless
/// `lines`): the body's end and the environment's end.
fn find_close(text: &str, from: usize, close: &str, lines: bool) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut j = from;
    while j < b.len() {
        if b[j] == b'\n' && !lines {
            return None;
        }
        if b[j..].starts_with(close.as_bytes()) && !escaped(b, j) && j > from {
            return Some((j, j + close.len()));
        }
        j += 1;
    }
    None
}

/// A percent sign or word after `at` (spaces allowed): where it ends, and whether it is there.
fn percent_after(text: &str, at: usize) -> (usize, bool) {
    let rest = &text[at..];
    let trimmed = rest.trim_start();
    let skip = rest.len() - trimmed.len();
    for w in ["\\%", "%", "percentage", "Percentage", "percent", "Percent", "pct", "Pct"] {
        if trimmed.starts_with(w) && !trimmed[w.len()..].starts_with(|c: char| c.is_alphabetic()) {
            return (at + skip + w.len(), true);
        }
    }
    (at, false)
}

/// Whether the text between two environments joins them into one answer: spaces and one of
/// `,`, `and`, `or` (`, and` too).
fn joins(gap: &str) -> bool {
    let g = gap.trim();
    let g = g.strip_prefix(',').map_or(g, str::trim_start);
    g.is_empty() || g == "and" || g == "or"
}

/// Runs of up to six environments joined by "and", "or" or commas, as one answer each:
/// (start, end, bodies joined by `, `). With `boxed`, only environments holding a box count,
/// and each contributes the contents of all its boxes.
fn groups(text: &str, envs: &[Env], boxed: bool) -> Vec<(usize, usize, String)> {
    let body = |e: &Env| -> Option<String> {
        let raw = &text[e.body.0..e.body.1];
        let s = if boxed {
            let boxes = all_boxes(raw);
            if boxes.is_empty() {
                return None;
            }
            boxes.iter().map(|&(s, e)| &raw[s..e]).collect::<Vec<_>>().join(", ")
        } else {
            raw.to_string()
        };
        Some(if e.percent { format!("{s}%") } else { s })
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < envs.len() {
        let Some(first) = body(&envs[i]) else {
            i += 1;
            continue;
        };
        let (start, mut end, mut parts) = (envs[i].start, envs[i].end, vec![first]);
        let mut j = i + 1;
        while j < envs.len() && parts.len() < 6 && joins(&text[end..envs[j].start]) {
            let Some(next) = body(&envs[j]) else { break };
            parts.push(next);
            end = envs[j].end;
            j += 1;
        }
        out.push((start, end, parts.join(", ")));
        i = j;
    }
    out
}

/// Every complete `\boxed{..}` or `\fbox{..}` in `text`, outermost ones, as body spans.
fn all_boxes(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let open = if b[i..].starts_with(b"\\boxed{") {
            i + 6
        } else if b[i..].starts_with(b"\\fbox{") {
            i + 5
        } else {
            i += 1;
            continue;
        };
        let mut depth = 0usize;
        let mut j = open;
        let mut close = None;
        while j < b.len() {
            match b[j] {
                b'\\' if matches!(b.get(j + 1), Some(b'{' | b'}')) => j += 1,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(j);
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        match close {
            Some(c) => {
                out.push((open + 1, c));
                i = c + 1;
            }
            None => break,
        }
    }
    out
}

/// Boxed candidates: each run of environments holding boxes, and the last box joined with the
/// boxes just before it (math-verify's rule: a gap under 10 characters, or under 70 that holds
/// "and", "or", `,` or `;` between different answers).
fn boxed(text: &str, envs: &[Env]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = groups(text, envs, true)
        .into_iter()
        .map(|(s, e, t)| Candidate { rule: "boxed", text: t, start: s, end: e })
        .collect();
    let boxes = all_boxes(text);
    if let Some(&(ls, le)) = boxes.last() {
        let mut parts = vec![&text[ls..le]];
        let mut start = ls;
        for w in boxes.windows(2).rev() {
            let (prev, cur) = (w[0], w[1]);
            if cur.0 != start {
                break;
            }
            // The gap runs from the previous box's `}` to this box's `\boxed{`.
            let gap_start = prev.1 + 1;
            let gap_end = text[..cur.0].rfind('\\').unwrap_or(cur.0);
            let gap = text.get(gap_start..gap_end).unwrap_or("");
            let content = &text[prev.0..prev.1];
            let separated = ["and", "or", ",", ";"].iter().any(|s| gap.contains(s));
            if gap.len() < 10 || (content != parts[0] && gap.len() < 70 && separated) {
                parts.insert(0, content);
                start = prev.0;
            } else {
                break;
            }
        }
        out.push(Candidate { rule: "boxed", text: parts.join(", "), start, end: le + 1 });
    }
    out
}

/// How an answer follows a phrase.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phrase {
    /// "final answer is" X ". I hope".
    Minerva,
    /// "final answer" ... "is" X, within 100 characters.
    Is,
    /// "answer" ... X: an environment starting within 50 characters, or a number after the
    /// last `=` within 100 characters of the line, or the first number within 50.
    Near,
}

/// Case-insensitive occurrences of an ASCII phrase.
fn occurrences<'a>(text: &'a str, phrase: &'a str) -> impl Iterator<Item = usize> + 'a {
    let b = text.as_bytes();
    let p = phrase.as_bytes();
    (0..b.len().saturating_sub(p.len() - 1)).filter(move |&i| b[i..i + p.len()].eq_ignore_ascii_case(p))
}

fn after_phrase(
    text: &str,
    groups: &[(usize, usize, String)],
    phrase: &str,
    how: Phrase,
    numbers: bool,
) -> Vec<Candidate> {
    let rule = match how {
        Phrase::Minerva | Phrase::Is => "final_answer",
        Phrase::Near => "answer",
    };
    // Groups are sorted by start: the first starting at or after a place is a binary search.
    let group_from = |at: usize| groups.get(groups.partition_point(|g| g.0 < at));
    let group_at = |at: usize| group_from(at).filter(|g| g.0 == at);
    let number_at = |at: usize| number(text, at, at);
    let mut out = Vec::new();
    for at in occurrences(text, phrase) {
        let after = at + phrase.len();
        let found: Option<(usize, usize, String)> = match how {
            Phrase::Minerva => {
                let rest = &text[after..];
                let body = rest.strip_prefix(':').unwrap_or(rest);
                let pos = text.len() - body.trim_start().len();
                let hit = group_at(pos).cloned().or_else(|| if numbers { number_at(pos) } else { None });
                hit.filter(|h| {
                    let tail = &text[h.1..];
                    let tail = tail.strip_prefix('.').unwrap_or(tail);
                    let tail = tail.strip_prefix(char::is_whitespace).unwrap_or(tail);
                    tail.starts_with("I hope")
                })
            }
            Phrase::Is => {
                let window_end = floor_char(text, (after + 100).min(text.len()));
                let mut hit = None;
                for (k, _) in
                    text[after..window_end].match_indices(" is").chain(text[after..window_end].match_indices("\nis"))
                {
                    let mut pos = after + k + 3;
                    if text[pos..].starts_with(':') {
                        pos += 1;
                    }
                    let env_pos = pos + (text[pos..].len() - text[pos..].trim_start().len());
                    hit =
                        group_at(env_pos).cloned().or_else(|| if numbers { number(text, pos, env_pos) } else { None });
                    if hit.is_some() {
                        break;
                    }
                }
                hit
            }
            Phrase::Near => {
                let near = floor_char(text, (after + 50).min(text.len()));
                let hit = group_from(after).filter(|g| g.0 <= near).cloned();
                hit.or_else(|| if numbers { number_near(text, after) } else { None })
            }
        };
        if let Some((s, e, t)) = found {
            out.push(Candidate { rule, text: t, start: s, end: e });
        }
    }
    out
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// After "answer": a number after the last `=` within 100 characters of the same line, else
/// the first number within 50; a number followed by `=` is a step, not the answer.
fn number_near(text: &str, after: usize) -> Option<(usize, usize, String)> {
    let line_end = text[after..].find('\n').map_or(text.len(), |i| after + i);
    let window = floor_char(text, (after + 101).min(line_end));
    let not_step = |n: &(usize, usize, String)| !text[n.1..].trim_start().starts_with('=');
    if let Some(eq) = text[after..window].rfind('=')
        && let Some(n) = number(
            text,
            after + eq + 1,
            after + eq + 1 + (text[after + eq + 1..].len() - text[after + eq + 1..].trim_start().len()),
        )
        && not_step(&n)
    {
        return Some(n);
    }
    let near = floor_char(text, (after + 50).min(line_end));
    let mut at = after;
    while at <= near {
        let n = number(text, at, near + 1)?;
        if not_step(&n) {
            return Some(n);
        }
        at = n.1;
    }
    None
}

/// Plain `\frac{a}{b}` of two numbers outside any environment.
fn plain_fractions(text: &str, envs: &[Env]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("\\frac{") {
        if envs.iter().any(|e| e.start <= i && i < e.end) {
            continue;
        }
        let start = if i > 0 && text.as_bytes()[i - 1] == b'-' { i - 1 } else { i };
        let rest = &text[i + 6..];
        let Some(n_end) = rest.find('}') else { continue };
        let (n, after) = (&rest[..n_end], &rest[n_end + 1..]);
        let Some(d_rest) = after.strip_prefix('{') else { continue };
        let Some(d_end) = d_rest.find('}') else { continue };
        let d = &d_rest[..d_end];
        let simple = |s: &str| {
            let s = s.strip_prefix('-').unwrap_or(s);
            !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.' || c == b',')
        };
        if simple(n) && simple(d) {
            let end = i + 6 + n_end + 1 + 1 + d_end + 1;
            out.push(Candidate { rule: "latex", text: text[start..end].to_string(), start, end });
        }
    }
    out
}

/// Every number standing alone, left to right, not overlapping: (start, end, its text
/// normalised: no thousands separators, a decimal point, `%` for a percent word).
fn numbers_in(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(n) = number(text, at, text.len()) {
        at = n.1;
        out.push(n);
    }
    out
}

/// The first number standing alone that starts in `from..=last`: after the text's start, a
/// space or `=` (then an optional currency sign).
fn number(text: &str, from: usize, last: usize) -> Option<(usize, usize, String)> {
    let b = text.as_bytes();
    let mut i = from;
    while i < b.len() && i <= last {
        let anchored = i == 0 || b[i - 1].is_ascii_whitespace() || b[i - 1] == b'=';
        if anchored {
            let mut j = i;
            // A currency sign before the digits.
            if let Some(c) = text[j..].chars().next()
                && "$€£¥₹".contains(c)
            {
                j += c.len_utf8();
            }
            if let Some((mut end, mut digits)) = number_body(b, j) {
                // `2/3`: a fraction of two numbers.
                if b.get(end) == Some(&b'/')
                    && let Some((dend, den)) = number_body(b, end + 1).filter(|d| !d.1.starts_with('-'))
                {
                    digits = format!("{digits}/{den}");
                    end = dend;
                }
                let (pend, percent) = percent_after(text, end);
                let t = if percent { format!("{digits}%") } else { digits };
                return Some((i, if percent { pend } else { end }, t));
            }
        }
        i += 1;
        while i < b.len() && !text.is_char_boundary(i) {
            i += 1;
        }
    }
    None
}

/// A number at `j` in math-verify's forms: `1,234,567.5` and `1 234` (thousands), `123,45`
/// and `123.45`, `.5`, `-12`. Returns its end and its plain digits.
fn number_body(b: &[u8], j: usize) -> Option<(usize, String)> {
    let digits_from = |k: usize| {
        let mut e = k;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
        e
    };
    let neg = b.get(j) == Some(&b'-');
    let d0 = j + usize::from(neg);
    let sign = if neg { "-" } else { "" };
    let int_end = digits_from(d0);
    let text = |s: usize, e: usize| String::from_utf8_lossy(&b[s..e]).into_owned();
    if int_end == d0 {
        // `.5`
        if !neg && b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
            let e = digits_from(j + 1);
            return Some((e, format!("0{}", text(j, e))));
        }
        return None;
    }
    // Thousands groups: a first group of 1-3 digits not starting with 0, then groups of three.
    if b[d0] != b'0' && int_end - d0 <= 3 {
        let mut e = int_end;
        let mut groups = 0;
        while e + 3 < b.len() + 1
            && matches!(b.get(e), Some(b',' | b' '))
            && digits_from(e + 1) == e + 4
            && e + 4 <= b.len()
        {
            e += 4;
            groups += 1;
        }
        if groups > 0 {
            let int: String = text(d0, e).chars().filter(char::is_ascii_digit).collect();
            if b.get(e) == Some(&b'.') && b.get(e + 1).is_some_and(u8::is_ascii_digit) {
                let f = digits_from(e + 1);
                return Some((f, format!("{sign}{int}{}", text(e, f))));
            }
            return Some((e, format!("{sign}{int}")));
        }
    }
    // A decimal point or comma.
    if matches!(b.get(int_end), Some(b'.' | b',')) && b.get(int_end + 1).is_some_and(u8::is_ascii_digit) {
        let f = digits_from(int_end + 1);
        return Some((f, format!("{sign}{}.{}", text(d0, int_end), text(int_end + 1, f))));
    }
    Some((int_end, format!("{sign}{}", text(d0, int_end))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str, numbers: bool) -> Option<String> {
        candidates(text, numbers).into_iter().next().map(|c| c.text)
    }

    #[test]
    fn numbers_in_math_verify_forms() {
        let n = |t: &str| numbers_in(t).last().map(|x| x.2.clone());
        assert_eq!(n("7,425,000").as_deref(), Some("7425000"));
        assert_eq!(n("1 000").as_deref(), Some("1000"));
        assert_eq!(n("1000,99").as_deref(), Some("1000.99"));
        assert_eq!(n("Soucis : 2,74 $ a..").as_deref(), Some("2.74"));
        assert_eq!(n(".4").as_deref(), Some("0.4"));
        assert_eq!(n("the number is not 10 which is 1,000.99€").as_deref(), Some("1000.99"));
        assert_eq!(n("$1,000.99").as_deref(), Some("1000.99"));
        assert_eq!(n("28 percent").as_deref(), Some("28%"));
        assert_eq!(n("AZYUK2A"), None, "a digit inside a word is not a number");
        assert_eq!(n("x^2"), None);
    }

    #[test]
    fn boxes_join_when_close_or_separated() {
        assert_eq!(first(r"\boxed{1} papers and \boxed{2} bins", false).as_deref(), Some("1, 2"));
        assert_eq!(first(r"\boxed{1} no no no no no \boxed{2}", false).as_deref(), Some("2"));
        assert_eq!(first(r"$\boxed{1}\boxed{2}$", false).as_deref(), Some("1, 2"));
        assert_eq!(first(r"$1$ and $2$ and $3$", false).as_deref(), Some("1, 2, 3"));
        assert_eq!(first(r"so \boxed{\frac{1}{2}}.", false).as_deref(), Some(r"\frac{1}{2}"));
    }

    #[test]
    fn environments_and_sentences() {
        assert_eq!(first("So: $ 9 $", false).as_deref(), Some(" 9 "));
        assert_eq!(first("Answer $ \n 9 \n $", false), None, "an inline `$` ends on its line");
        assert_eq!(first("Answer $$ \n 9 \n $$", false).as_deref(), Some(" \n 9 \n "));
        assert_eq!(first("Final Answer: The final answer is $2$. I hope it is correct.", false).as_deref(), Some("2"));
        assert_eq!(first("Final Answer: The largest $n$ is 34.", true).as_deref(), Some("34"));
        assert_eq!(first("Therefore, answer is 189.\n\nAnother thought: 7", true).as_deref(), Some("189"));
        assert_eq!(first("$28$ percent", false).as_deref(), Some("28%"));
    }

    #[test]
    fn megabyte_text_is_linear() {
        let big = format!("{}$1$", "a $ b \\boxed{ answer: 1 = ".repeat(40_000));
        assert!(!candidates(&big, true).is_empty());
    }
}
