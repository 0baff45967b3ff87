//! The answer format `ANSWER [p0, p1, ...]`: parsing what a model wrote, checking it is a
//! distribution, and finding a task's reference distribution.

use super::infer;
use super::network::Network;
use super::query::Query;
use serde_json::Value;

/// Why a completion's answer could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// No `ANSWER` marker at all.
    #[error("no ANSWER line")]
    Missing,
    /// `ANSWER` not followed by a bracketed list.
    #[error("ANSWER is not followed by a [..] list")]
    NoList,
    /// An entry of the list is not a number.
    #[error("`{0}` is not a number")]
    NotANumber(String),
}

impl ParseError {
    /// A short stable name for diagnostics and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            ParseError::Missing => "no_answer",
            ParseError::NoList => "no_list",
            ParseError::NotANumber(_) => "not_a_number",
        }
    }
}

/// The numbers of the last `ANSWER [..]` of `text` (an optional `:` or `=` may follow ANSWER).
pub fn parse(text: &str) -> Result<Vec<f64>, ParseError> {
    let at = text.rfind("ANSWER").ok_or(ParseError::Missing)?;
    let rest = text[at + "ANSWER".len()..].trim_start();
    let rest = rest.strip_prefix([':', '=']).unwrap_or(rest).trim_start();
    let inner =
        rest.strip_prefix('[').and_then(|r| r.split_once(']')).map(|(inner, _)| inner).ok_or(ParseError::NoList)?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|s| s.trim().parse::<f64>().map_err(|_| ParseError::NotANumber(s.trim().chars().take(40).collect())))
        .collect()
}

/// Why numbers are not a probability distribution.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NotADistribution {
    /// An entry is NaN or infinite.
    #[error("entry {0} is not finite")]
    NotFinite(usize),
    /// An entry is below zero.
    #[error("entry {0} is negative")]
    Negative(usize),
    /// The entries do not sum to 1 within the tolerance.
    #[error("the entries sum to {0}")]
    Sum(f64),
}

impl NotADistribution {
    /// A short stable name for diagnostics and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            NotADistribution::NotFinite(_) => "not_finite",
            NotADistribution::Negative(_) => "negative",
            NotADistribution::Sum(_) => "sum_not_one",
        }
    }
}

/// Checks that `p` is a distribution: finite, non-negative, summing to 1 within `tolerance`.
pub fn check_distribution(p: &[f64], tolerance: f64) -> Result<(), NotADistribution> {
    if let Some(i) = p.iter().position(|x| !x.is_finite()) {
        return Err(NotADistribution::NotFinite(i));
    }
    if let Some(i) = p.iter().position(|&x| x < 0.0) {
        return Err(NotADistribution::Negative(i));
    }
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > tolerance {
        return Err(NotADistribution::Sum(sum));
    }
    Ok(())
}

/// The answer line for a distribution, with every digit kept so that the gold answer is exact.
pub fn format(p: &[f64]) -> String {
    let parts: Vec<String> = p.iter().map(|x| format!("{x}")).collect();
    format!("ANSWER [{}]", parts.join(", "))
}

/// The answer line for `p` rounded to `decimals` places by largest remainders, so that the
/// printed numbers still sum to exactly 1 (plain rounding of `[1/3, 1/3, 1/3]` gives 0.99).
pub fn format_rounded(p: &[f64], decimals: u32) -> String {
    let unit = 10u64.pow(decimals);
    let exact: Vec<f64> = p.iter().map(|x| x.max(0.0) * unit as f64).collect();
    let mut counts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut left = unit.saturating_sub(counts.iter().sum());
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for &i in order.iter().cycle().take(p.len() * 2) {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    let width = decimals as usize;
    let parts: Vec<String> = counts.iter().map(|&c| format!("{:.width$}", c as f64 / unit as f64)).collect();
    format!("ANSWER [{}]", parts.join(", "))
}

/// Total variation distance: half the L1 distance.
pub fn tvd(p: &[f64], q: &[f64]) -> f64 {
    0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>()
}

/// A task's reference distribution: its `answer` when present (checked to be a distribution),
/// else computed exactly from its `network` and `query`, so that users can score against
/// networks of their own. Errors describe a broken task.
pub fn reference(task: &Value) -> Result<Vec<f64>, String> {
    if let Some(a) = task.get("answer") {
        let p: Vec<f64> =
            serde_json::from_value(a.clone()).map_err(|e| format!("task `answer` must be a list of numbers: {e}"))?;
        if p.is_empty() {
            return Err("task `answer` is empty".into());
        }
        check_distribution(&p, 1e-6).map_err(|e| format!("task `answer` is not a distribution: {e}"))?;
        return Ok(p);
    }
    let net = task.get("network").ok_or("task has neither `answer` nor `network`")?;
    let query = task.get("query").ok_or("task has a `network` but no `query`")?;
    solve(net, query)
}

/// The exact answer to `query` on `network`, both as exported JSON.
pub fn solve(network: &Value, query: &Value) -> Result<Vec<f64>, String> {
    let model = Network::from_json(network).and_then(|n| n.compile()).map_err(|e| e.to_string())?;
    let query: Query = serde_json::from_value(query.clone()).map_err(|e| format!("query: {e}"))?;
    let resolved = query.resolve(&model).map_err(|e| e.to_string())?;
    infer::answer(&model, &resolved).map_err(|e| format!("query: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_last_answer_line() {
        assert_eq!(parse("think... ANSWER [0.5, 0.5]\nno wait\nANSWER: [0.25,0.75]"), Ok(vec![0.25, 0.75]));
        assert_eq!(parse("ANSWER [1e-1, 9E-1]."), Ok(vec![0.1, 0.9]));
        assert_eq!(parse("the answer is [0.5, 0.5]"), Err(ParseError::Missing));
        assert_eq!(parse("ANSWER 0.5, 0.5"), Err(ParseError::NoList));
        assert_eq!(parse("ANSWER [0.5, 0.5"), Err(ParseError::NoList));
        assert_eq!(parse("ANSWER [1/2, 1/2]"), Err(ParseError::NotANumber("1/2".into())));
        assert_eq!(parse("ANSWER []"), Ok(vec![]));
    }

    #[test]
    fn distributions_are_checked() {
        assert_eq!(check_distribution(&[0.5, 0.5], 0.01), Ok(()));
        assert_eq!(check_distribution(&[0.5, f64::NAN], 0.01), Err(NotADistribution::NotFinite(1)));
        assert_eq!(check_distribution(&[-0.1, 1.1], 0.01), Err(NotADistribution::Negative(0)));
        assert_eq!(check_distribution(&[0.5, 0.4], 0.01), Err(NotADistribution::Sum(0.9)));
        assert!((tvd(&[0.2, 0.8], &[0.5, 0.5]) - 0.3).abs() < 1e-12);
        let p = [0.1 + 0.2, 1.0 - (0.1 + 0.2)];
        assert_eq!(parse(&format(&p)), Ok(p.to_vec()), "formatting keeps every digit");
    }
}
