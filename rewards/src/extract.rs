//! Answer extraction: find the answer in a completion, and say where it was found.
//!
//! Every extractor scans the text once, left to right, with no recursion and no regex, so a
//! megabyte completion or ten thousand nested braces cost linear time and never overflow the
//! stack. Offsets are byte offsets that always fall on `char` boundaries (the extractors only
//! cut at ASCII delimiters), so slicing the completion with them never panics.

use serde::{Deserialize, Serialize};

/// Where an answer was found in a completion (byte offsets), so format rewards and
/// diagnostics can point at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Found<'a> {
    /// The answer text, trimmed.
    pub text: &'a str,
    /// Byte offset of the untrimmed answer's start in the completion.
    pub start: usize,
    /// Byte offset of its end.
    pub end: usize,
}

impl<'a> Found<'a> {
    fn span(text: &'a str, start: usize, end: usize) -> Self {
        Self { text: text[start..end].trim(), start, end }
    }
}

/// An extraction rule, as named in reward configs (`extract = "boxed"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extractor {
    /// The last complete `\boxed{...}` (or `\fbox{...}`), nested braces allowed.
    Boxed,
    /// The last complete `<answer>...</answer>`.
    AnswerTag,
    /// The last non-empty line, when it starts with `ANSWER` (any case, optional `:`), or with
    /// `Final answer`.
    AnswerLine,
    /// The last number in the text (see [`last_number`]).
    LastNumber,
    /// The whole completion, trimmed.
    Whole,
    /// The first of `boxed`, `answer_tag`, `answer_line`, `last_number` that finds something:
    /// the order of how explicitly a completion marks its answer.
    Auto,
}

impl Extractor {
    /// Applies the rule; `Auto` reports which rule found the answer.
    pub fn find(self, text: &str) -> Option<(Extractor, Found<'_>)> {
        let found = match self {
            Extractor::Boxed => last_boxed(text),
            Extractor::AnswerTag => last_tag(text, "answer"),
            Extractor::AnswerLine => answer_line(text),
            Extractor::LastNumber => last_number(text),
            Extractor::Whole => Some(Found::span(text, 0, text.len())),
            Extractor::Auto => {
                return [Extractor::Boxed, Extractor::AnswerTag, Extractor::AnswerLine, Extractor::LastNumber]
                    .into_iter()
                    .find_map(|e| e.find(text));
            }
        };
        found.map(|f| (self, f))
    }

    /// The rule's config name.
    pub fn name(self) -> &'static str {
        match self {
            Extractor::Boxed => "boxed",
            Extractor::AnswerTag => "answer_tag",
            Extractor::AnswerLine => "answer_line",
            Extractor::LastNumber => "last_number",
            Extractor::Whole => "whole",
            Extractor::Auto => "auto",
        }
    }
}

/// The extractor a task asks for in its optional `extract` field, else `default`. A field that
/// names no rule is the task's fault, so an error (a verifier error with `?`), not a silent
/// fallback.
pub fn for_task(task: &rlvr_engine::Task, default: Extractor) -> Result<Extractor, UnknownExtractor> {
    match task.data.get("extract") {
        None => Ok(default),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|_| UnknownExtractor { task: task.id.clone(), found: v.clone() })
        }
    }
}

/// A task's `extract` field names no extraction rule.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "task {task}: `extract` must be one of boxed, answer_tag, answer_line, last_number, whole, auto; found {found}"
)]
pub struct UnknownExtractor {
    /// The task's id.
    pub task: String,
    /// What the field held.
    pub found: serde_json::Value,
}

impl From<UnknownExtractor> for rlvr_engine::RewardError {
    fn from(e: UnknownExtractor) -> Self {
        Self(e.to_string())
    }
}

/// The contents of the last complete `<tag>...</tag>` pair.
pub fn last_tag<'a>(text: &'a str, tag: &str) -> Option<Found<'a>> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let end = text.rfind(&close)?;
    let start = text[..end].rfind(&open)? + open.len();
    Some(Found::span(text, start, end))
}

/// The contents of the last complete `\boxed{...}` or `\fbox{...}`: the one that starts last,
/// so in `\boxed{\boxed{1}}` it is the inner `1`. Braces nest; an escaped `\{` or `\}` does not
/// count. One pass with a stack of open braces: linear in the text whatever the nesting.
pub fn last_boxed(text: &str) -> Option<Found<'_>> {
    let b = text.as_bytes();
    // For each open brace: whether it opens a box, and where its content starts.
    let mut stack: Vec<(bool, usize)> = Vec::new();
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() && (b[i + 1] == b'{' || b[i + 1] == b'}') => i += 1,
            b'{' => {
                let before = &text[..i];
                let boxed = before.ends_with("\\boxed") || before.ends_with("\\fbox");
                stack.push((boxed, i + 1));
            }
            b'}' => {
                if let Some((true, start)) = stack.pop()
                    && best.is_none_or(|(s, _)| start > s)
                {
                    best = Some((start, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    best.map(|(s, e)| Found::span(text, s, e))
}

/// The rest of the last non-empty line when it starts with `ANSWER` (any case, then `:` or
/// a space) or `Final answer`; `None` otherwise, so a stray "answer" mid-text is not taken.
pub fn answer_line(text: &str) -> Option<Found<'_>> {
    let trimmed_end = text.trim_end().len();
    let line_start = text[..trimmed_end].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..trimmed_end];
    let lead = line.len() - line.trim_start().len();
    let body = &line[lead..];
    let lower = body.get(..body.len().min(16))?.to_ascii_lowercase();
    let skip = ["final answer", "answer"].into_iter().find(|p| lower.starts_with(p))?.len();
    let rest = &body[skip..];
    let rest_trim = rest.trim_start();
    let rest_trim = match rest_trim.strip_prefix(':') {
        Some(r) => r,
        None if rest.len() > rest_trim.len() => rest_trim,
        None => return None,
    };
    let start = line_start + lead + body.len() - rest_trim.len();
    (!rest_trim.trim().is_empty()).then(|| Found::span(text, start, trimmed_end))
}

/// The last number in the text: an optional sign, digits with optional thousands separators
/// (`1,234,567`), an optional decimal part, an optional exponent (`2.5e-3`) and an optional
/// `%`. A trailing sentence period is not part of it.
pub fn last_number(text: &str) -> Option<Found<'_>> {
    let b = text.as_bytes();
    let mut last = None;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut start = i;
        if start > 0 && b[start - 1] == b'-' {
            start -= 1;
        }
        let mut j = digits(b, i);
        // Thousands groups: exactly three digits after each comma, first group at most three.
        if j - i <= 3 {
            while j + 3 < b.len() && b[j] == b',' && digits(b, j + 1) == j + 4 {
                j += 4;
            }
        }
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            j = digits(b, j + 1);
        }
        if j + 1 < b.len() && (b[j] == b'e' || b[j] == b'E') {
            let k = if j + 2 < b.len() && (b[j + 1] == b'-' || b[j + 1] == b'+') { j + 2 } else { j + 1 };
            if k < b.len() && b[k].is_ascii_digit() {
                j = digits(b, k);
            }
        }
        if j < b.len() && b[j] == b'%' {
            j += 1;
        }
        last = Some((start, j));
        i = j;
    }
    last.map(|(s, e)| Found::span(text, s, e))
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// The contents of the last complete `<answer>...</answer>`, trimmed: the answer format of the
/// built-in environments' prompts.
pub fn answer_tag(text: &str) -> Option<&str> {
    last_tag(text, "answer").map(|f| f.text)
}

/// Where a code fence (three backticks) may stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fences {
    /// Anywhere in the text, as models write them mid-sentence ("Here it is: ```sql"); a block
    /// closes at the next three backticks. What the SQL and code environments read.
    Anywhere,
    /// Only at the start of a line (after spaces or tabs), as Markdown has them; a block closes
    /// at a line that holds nothing but the fence, so backticks inside the body (a JSON string
    /// holding ```` ``` ````) and a fence named in prose do not end or open a block.
    LineStart,
}

/// One fenced code block of a completion (see [`fenced_blocks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fenced<'a> {
    /// The info string after the opening fence, trimmed: `python`, `sql`, or empty.
    pub info: &'a str,
    /// The body as written: from the line after the opening fence to the closing fence, or to
    /// the end of the text when the block is not closed.
    pub raw: &'a str,
    /// The body trimmed, with its position in the text.
    pub body: Found<'a>,
    /// Whether a closing fence ends the block. Only the last block can be unclosed: a
    /// completion cut by its token limit inside a fence.
    pub closed: bool,
}

impl Fenced<'_> {
    /// Whether the info string's first word is `lang`, ignoring ASCII case.
    pub fn is_lang(&self, lang: &str) -> bool {
        self.info.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case(lang))
    }
}

/// The fenced code blocks of `text`, in order, found in one left-to-right pass. The info string
/// runs from the opening fence to the end of its line; the body starts on the next line.
pub fn fenced_blocks(text: &str, fences: Fences) -> FencedBlocks<'_> {
    FencedBlocks { text, pos: 0, fences }
}

/// The iterator of [`fenced_blocks`].
#[derive(Clone, Debug)]
pub struct FencedBlocks<'a> {
    text: &'a str,
    pos: usize,
    fences: Fences,
}

impl FencedBlocks<'_> {
    /// The byte offset of the next fence at or after `from` that may open (or, with `closing`,
    /// close) a block.
    fn next_fence(&self, mut from: usize, closing: bool) -> Option<usize> {
        let text = self.text;
        loop {
            let at = from + text[from..].find("```")?;
            if self.fences == Fences::Anywhere {
                return Some(at);
            }
            let lead = text[..at].bytes().rev().take_while(|&b| b == b' ' || b == b'\t').count();
            let at_line_start = at == lead || text.as_bytes()[at - lead - 1] == b'\n';
            let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            if at_line_start && (!closing || text[at + 3..line_end].trim().is_empty()) {
                return Some(at);
            }
            from = line_end;
        }
    }
}

impl<'a> Iterator for FencedBlocks<'a> {
    type Item = Fenced<'a>;

    fn next(&mut self) -> Option<Fenced<'a>> {
        let text = self.text;
        let info_start = self.next_fence(self.pos, false)? + 3;
        let line_end = text[info_start..].find('\n').map_or(text.len(), |i| info_start + i);
        let body_start = (line_end + 1).min(text.len());
        let (body_end, closed) = match self.next_fence(body_start, true) {
            Some(close) => (close, true),
            None => (text.len(), false),
        };
        self.pos = if closed { body_end + 3 } else { text.len() };
        Some(Fenced {
            info: text[info_start..line_end].trim(),
            raw: &text[body_start..body_end],
            body: Found::span(text, body_start, body_end),
            closed,
        })
    }
}

/// The body of the last complete fenced code block whose info string names `lang`
/// (case-insensitive; `None` takes any block), with Markdown's fences ([`Fences::LineStart`]).
/// An unclosed fence is not a block.
pub fn code_block<'a>(text: &'a str, lang: Option<&str>) -> Option<Found<'a>> {
    fenced_blocks(text, Fences::LineStart)
        .filter(|b| b.closed && lang.is_none_or(|l| b.is_lang(l)))
        .last()
        .map(|b| b.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_complete_pair_wins() {
        let t = "<answer>1</answer> no, <answer> 2 </answer>";
        let f = last_tag(t, "answer").unwrap();
        assert_eq!(f.text, "2");
        assert_eq!(&t[f.start..f.end], " 2 ");
        assert_eq!(last_tag("<answer>3", "answer"), None);
        assert_eq!(last_tag("</answer> <answer>", "answer"), None);
    }

    #[test]
    fn boxed_nests_and_takes_the_last() {
        let t = r"so \boxed{1} then \boxed{\frac{1}{2}} done";
        let f = last_boxed(t).unwrap();
        assert_eq!(f.text, r"\frac{1}{2}");
        assert_eq!(&t[f.start..f.end], r"\frac{1}{2}");
        assert_eq!(last_boxed(r"\boxed{\{1, 2\}}").unwrap().text, r"\{1, 2\}");
        assert_eq!(last_boxed(r"\fbox{7}").unwrap().text, "7");
        assert_eq!(last_boxed(r"\boxed{3} \boxed{4").unwrap().text, "3");
        assert_eq!(last_boxed(r"\boxed{\boxed{5}}").unwrap().text, "5");
        assert_eq!(last_boxed("no box {x}"), None);
    }

    #[test]
    fn deep_nesting_and_huge_input_are_linear_and_safe() {
        let deep = format!("\\boxed{{{}x{}}}", "{".repeat(100_000), "}".repeat(100_000));
        assert!(last_boxed(&deep).unwrap().text.len() > 200_000);
        let unclosed = "\\boxed{".repeat(200_000);
        assert_eq!(last_boxed(&unclosed), None);
        let big = "é 1 ".repeat(500_000);
        assert_eq!(last_number(&big).unwrap().text, "1");
    }

    #[test]
    fn answer_line_is_the_final_line_only() {
        let f = answer_line("work\nANSWER: 42\n\n").unwrap();
        assert_eq!(f.text, "42");
        assert_eq!(answer_line("Final answer: x = 3").unwrap().text, "x = 3");
        assert_eq!(answer_line("answer 7").unwrap().text, "7");
        assert_eq!(answer_line("Answering is hard"), None);
        assert_eq!(answer_line("ANSWER: 1\nthen more"), None);
        assert_eq!(answer_line("answer:   "), None);
    }

    #[test]
    fn last_number_forms() {
        let n = |t| last_number(t).map(|f| f.text);
        assert_eq!(n("it is 1,234,567.5 dollars."), Some("1,234,567.5"));
        assert_eq!(n("x = -3."), Some("-3"));
        assert_eq!(n("rate 12.5% now"), Some("12.5%"));
        assert_eq!(n("about 6.02e23 atoms"), Some("6.02e23"));
        assert_eq!(n("values 1,2 and 10,00"), Some("00"));
        assert_eq!(n("3/4"), Some("4"));
        assert_eq!(n("none here"), None);
    }

    #[test]
    fn code_block_by_language() {
        let t = "```python\nprint(1)\n```\ntext\n```json\n{\"a\": 1}\n```\n```\nplain\n```";
        assert_eq!(code_block(t, Some("python")).unwrap().text, "print(1)");
        assert_eq!(code_block(t, Some("JSON")).unwrap().text, "{\"a\": 1}");
        assert_eq!(code_block(t, None).unwrap().text, "plain");
        assert_eq!(code_block("```json\n{}", Some("json")), None);
    }

    #[test]
    fn line_start_fences_ignore_backticks_inside_a_line() {
        let t = "Answer in a ```json block:\n  ```json\n{\"a\": \"```\"}\n```python\n ```\n";
        assert_eq!(code_block(t, Some("json")).unwrap().text, "{\"a\": \"```\"}\n```python");
        assert_eq!(code_block("````\nx\n```", None).unwrap().text, "x");
    }

    #[test]
    fn fences_anywhere_open_mid_line_and_report_an_unclosed_last_block() {
        let t = "see ```sql\nSELECT 1\n``` then ```py\nprint(2)\n```\n```python\ncut";
        let blocks: Vec<_> = fenced_blocks(t, Fences::Anywhere).map(|b| (b.info, b.raw, b.closed)).collect();
        assert_eq!(blocks, [("sql", "SELECT 1\n", true), ("py", "print(2)\n", true), ("python", "cut", false)]);
        let f = fenced_blocks("```", Fences::Anywhere).next().unwrap();
        assert_eq!((f.info, f.raw, f.closed), ("", "", false));
        assert!(fenced_blocks("no fence", Fences::Anywhere).next().is_none());
    }

    #[test]
    fn answer_tag_takes_the_last_complete_tag() {
        assert_eq!(answer_tag("<answer> 12 </answer>"), Some("12"));
        assert_eq!(answer_tag("<answer>1</answer> then <answer>2</answer>"), Some("2"));
        assert_eq!(answer_tag("<answer>1"), None);
        assert_eq!(answer_tag("</answer><answer>"), None);
    }

    #[test]
    fn auto_reports_the_rule_that_fired() {
        let t = "<answer>5</answer> and \\boxed{6}";
        assert_eq!(Extractor::Auto.find(t).unwrap().0, Extractor::Boxed);
        assert_eq!(Extractor::Auto.find("so 7 or 8").unwrap(), (Extractor::LastNumber, Found::span("so 7 or 8", 8, 9)));
        assert_eq!(Extractor::Auto.find("nothing"), None);
    }
}
