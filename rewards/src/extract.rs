//! Answer extraction: find the answer in a completion, and say where it was found.

use serde::Serialize;

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

/// The contents of the last complete `<tag>...</tag>` pair.
pub fn last_tag<'a>(text: &'a str, tag: &str) -> Option<Found<'a>> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let end = text.rfind(&close)?;
    let start = text[..end].rfind(&open)? + open.len();
    Some(Found {
        text: text[start..end].trim(),
        start,
        end,
    })
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
}
