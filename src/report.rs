//! `rlvr report`: a summary table of a run's metrics, and PNG plots of its curves.

use crate::error::Result;
use crate::store::{RunStore, iteration_count, read_metrics};
use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// DejaVu Sans, shipped so plots have text on machines without fonts (license beside it).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// What `report` produced.
pub struct Report {
    /// The summary table, ready to print.
    pub table: String,
    /// The PNG files written.
    pub plots: Vec<PathBuf>,
}

/// Reads the run in `dir`, writes its plots into `dir/report/`, and returns the summary.
pub fn report(dir: &Path) -> Result<Report> {
    let db = RunStore::open_read_only(dir)?;
    let metrics = read_metrics(&db)?;
    let n = iteration_count(&db)?;
    let mut table = format!("run {} ({n} iterations)\n", dir.display());
    for line in headline(&metrics) {
        let _ = writeln!(table, "{line}");
    }
    // The warm start's values are measured once: shown as values, not as one-point series.
    let warm: Vec<(&String, f64)> = metrics
        .iter()
        .filter(|(k, _)| k.starts_with("sft/"))
        .filter_map(|(k, v)| v.first().map(|p| (k, p.1)))
        .collect();
    if !warm.is_empty() {
        let _ = writeln!(table, "warm start (sft):");
        for (name, v) in warm {
            let _ = writeln!(table, "  {name:<30} {:>12}", fmt(v));
        }
    }
    let _ = writeln!(table, "{:<32} {:>12} {:>12} {:>12} {:>12}", "metric", "first", "last", "min", "max");
    for (name, series) in metrics.iter().filter(|(k, _)| !k.starts_with("sft/")) {
        let (Some(first), Some(last)) = (series.first(), series.last()) else {
            continue;
        };
        let min = series.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max = series.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let _ =
            writeln!(table, "{name:<32} {:>12} {:>12} {:>12} {:>12}", fmt(first.1), fmt(last.1), fmt(min), fmt(max));
    }

    let out = dir.join("report");
    std::fs::create_dir_all(&out)?;
    // Registering twice (a second report in one process) is harmless; the first font stays.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let mut plots = Vec::new();
    let path = out.join("summary.png");
    if summary_plot(&path, &metrics).map_err(|e| anyhow!("drawing {}: {e}", path.display()))? {
        plots.push(path);
    }
    Ok(Report { table, plots })
}

/// The run's result in a few lines: held-out accuracy before training, after the warm start
/// and at the end (greedy and sampled), the best evaluated iteration, and where the time went.
/// Empty parts are left out (a run without evaluation has no accuracy line).
pub fn headline(metrics: &BTreeMap<String, Vec<(u64, f64)>>) -> Vec<String> {
    let one = |k: &str| metrics.get(k).and_then(|v| v.first()).map(|p| p.1);
    let last = |k: &str| metrics.get(k).and_then(|v| v.last()).copied();
    let pair = |greedy: Option<f64>, sampled: Option<f64>| match (greedy, sampled) {
        (Some(g), Some(s)) => Some(format!("{g:.3} greedy, {s:.3} sampled")),
        (Some(g), None) => Some(format!("{g:.3} greedy")),
        _ => None,
    };
    let mut parts = Vec::new();
    if let Some(b) = one("sft/eval_accuracy_before") {
        parts.push(format!("before training {b:.3} greedy"));
    }
    if let Some(p) = pair(one("start/eval_accuracy"), one("start/eval_sampled_accuracy")) {
        parts.push(format!("before training {p}"));
    }
    if let Some(p) = pair(one("sft/eval_accuracy"), one("sft/eval_sampled_accuracy")) {
        parts.push(format!("after SFT {p}"));
    }
    if let Some((it, g)) = last("eval/accuracy") {
        let sampled = last("eval/sampled_accuracy").filter(|s| s.0 == it).map(|s| s.1);
        parts.push(format!("at the end (iteration {}) {}", it + 1, pair(Some(g), sampled).unwrap_or_default()));
    }
    if let Some(best) =
        metrics.get("eval/accuracy").and_then(|v| v.iter().copied().reduce(|a, b| if b.1 > a.1 { b } else { a }))
    {
        parts.push(format!("best {:.3} at iteration {}", best.1, best.0 + 1));
    }
    let mut lines = Vec::new();
    if !parts.is_empty() {
        lines.push(format!("held-out accuracy: {}", parts.join("; ")));
    }
    let total = |k: &str| metrics.get(k).map(|v| v.iter().map(|p| p.1).sum::<f64>());
    let times: Vec<String> = [("SFT", "time/sft_s"), ("rollouts", "time/rollout_s"), ("updates", "time/update_s")]
        .iter()
        .filter_map(|(name, k)| total(k).map(|t| format!("{name} {t:.1} s")))
        .collect();
    if !times.is_empty() {
        lines.push(format!("time: {}", times.join(", ")));
    }
    lines
}

fn fmt(v: f64) -> String {
    if v.abs() >= 1e5 || (v != 0.0 && v.abs() < 1e-3) { format!("{v:.3e}") } else { format!("{v:.4}") }
}

/// One panel of the summary: one quantity, with its unit, drawn from some metrics.
struct Panel<'a> {
    title: &'static str,
    lines: Vec<(&'a str, &'a [(u64, f64)])>,
    /// A band around the first line: its half-width per iteration (a standard deviation).
    band: Option<&'a [(u64, f64)]>,
    /// Horizontal reference levels with their names (before training, after SFT).
    refs: Vec<(&'static str, f64)>,
    /// Draw the lines stacked (parts of a whole, such as the phases of an iteration's time).
    stacked: bool,
    /// Fix the axis to [0, 1] (accuracies, fractions).
    unit_range: bool,
}

/// The run as small multiples, one quantity per panel: held-out accuracy (greedy, sampled,
/// pass@k) with the levels before training and after SFT marked, the training reward with its
/// standard deviation, losses, KL and clip fraction, entropy, time per phase (stacked) and
/// throughput. Panels without data are left out; returns whether anything was drawn.
fn summary_plot(path: &Path, metrics: &BTreeMap<String, Vec<(u64, f64)>>) -> Result<bool, String> {
    fn get<'m>(metrics: &'m BTreeMap<String, Vec<(u64, f64)>>, k: &str) -> Option<(&'m str, &'m [(u64, f64)])> {
        metrics.get_key_value(k).filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.as_str(), v.as_slice()))
    }
    let get = |k: &str| get(metrics, k);
    let first = |k: &str| metrics.get(k).and_then(|v| v.first()).map(|p| p.1);
    let starting = |prefix: &str| -> Vec<(&str, &[(u64, f64)])> {
        metrics
            .iter()
            .filter(|(k, v)| k.starts_with(prefix) && !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect()
    };
    let mut accuracy: Vec<_> = ["eval/accuracy", "eval/sampled_accuracy"].into_iter().filter_map(get).collect();
    accuracy.extend(starting("eval/pass@"));
    accuracy.extend(starting("eval/accuracy/"));
    let refs: Vec<(&'static str, f64)> = [
        ("before training", "sft/eval_accuracy_before"),
        ("before training", "start/eval_accuracy"),
        ("after SFT", "sft/eval_accuracy"),
    ]
    .into_iter()
    .filter_map(|(name, k)| first(k).map(|v| (name, v)))
    .collect();
    let panel =
        |title, lines, unit_range| Panel { title, lines, band: None, refs: Vec::new(), stacked: false, unit_range };
    let mut panels = vec![
        Panel { refs, ..panel("Held-out accuracy", accuracy, true) },
        Panel {
            band: get("reward/std").map(|s| s.1),
            ..panel("Training reward (mean ± std)", get("reward/mean").into_iter().collect(), false)
        },
        panel("Loss", starting("loss/"), false),
        panel(
            "KL to the old policy, clip fraction",
            ["train/approx_kl_old", "train/clip_frac"].into_iter().filter_map(get).collect(),
            false,
        ),
        panel("Entropy (nats per token)", get("train/entropy").into_iter().collect(), false),
        Panel {
            stacked: true,
            ..panel(
                "Time per iteration (s, stacked)",
                ["time/generate_s", "time/env_s", "time/score_s", "time/update_s"]
                    .into_iter()
                    .filter_map(get)
                    .collect(),
                false,
            )
        },
        panel("Rollout throughput (tokens/s)", get("rollout/tokens_per_s").into_iter().collect(), false),
    ];
    panels.retain(|p| !p.lines.is_empty());
    if panels.is_empty() {
        return Ok(false);
    }
    let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
    let rows = panels.len().div_ceil(2);
    let root = BitMapBackend::new(path, (1200, 320 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let areas = root.split_evenly((rows, 2));
    let xmax = metrics.values().flat_map(|v| v.iter().map(|p| p.0)).max().unwrap_or(0) + 1;
    for (area, p) in areas.iter().zip(&panels) {
        draw_panel(area, p, xmax).map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(true)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    p: &Panel<'_>,
    xmax: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    // Iterations are counted from 1 on the axis; stacked lines are drawn as cumulative sums.
    let mut lines: Vec<(String, Vec<(f64, f64)>)> =
        p.lines.iter().map(|(k, v)| (k.to_string(), v.iter().map(|&(i, y)| ((i + 1) as f64, y)).collect())).collect();
    if p.stacked {
        for j in 1..lines.len() {
            let below = lines[j - 1].1.clone();
            for pt in &mut lines[j].1 {
                pt.1 += below.iter().find(|b| b.0 == pt.0).map_or(0.0, |b| b.1);
            }
        }
        widen_lone_points(&mut lines);
    }
    let band: Vec<(f64, f64, f64)> = match (p.band, lines.first()) {
        (Some(sd), Some((_, mean))) => mean
            .iter()
            .filter_map(|&(x, m)| sd.iter().find(|s| (s.0 + 1) as f64 == x).map(|s| (x, m - s.1, m + s.1)))
            .collect(),
        _ => Vec::new(),
    };
    let values = lines
        .iter()
        .flat_map(|l| l.1.iter().map(|p| p.1))
        .chain(band.iter().flat_map(|b| [b.1, b.2]))
        .chain(p.refs.iter().map(|r| r.1));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    // Headroom above the data holds the legend, so that it covers no point.
    let (lo, hi) = if p.unit_range {
        (0.0, 1.4)
    } else if (hi - lo).abs() < 1e-12 {
        (lo - 0.5, hi + 1.0)
    } else {
        let span = hi - lo;
        if p.stacked { (0.0, hi * 1.6) } else { (lo - span * 0.08, hi + span * 0.5) }
    };
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5f64..(xmax as f64 + 0.5), lo..hi)?;
    // Whole iterations only: a short run gets ticks 1, 2, 3, not 1.5.
    chart
        .configure_mesh()
        .x_desc("iteration")
        .x_labels((xmax as usize).min(10))
        .x_label_formatter(&|x| if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { String::new() })
        .y_label_formatter(&|y| if p.unit_range && *y > 1.0 + 1e-9 { String::new() } else { axis(*y) })
        .label_style(("sans-serif", 13))
        .draw()?;
    if !band.is_empty() {
        let color = Palette99::pick(0).mix(0.2);
        let mut outline: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
        outline.extend(band.iter().rev().map(|b| (b.0, b.1)));
        chart.draw_series(std::iter::once(Polygon::new(outline, color.filled())))?;
    }
    if p.stacked {
        // Filled bands, each part over the ones below it, so each phase is a band's height.
        for (i, (name, pts)) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let below: Vec<(f64, f64)> = match i {
                0 => pts.iter().map(|p| (p.0, 0.0)).collect(),
                _ => lines[i - 1].1.clone(),
            };
            let mut outline = pts.clone();
            outline.extend(below.into_iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(outline, color.mix(0.7).filled())))?
                .label(name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled()));
        }
    } else {
        for (i, (name, pts)) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&pt| Circle::new(pt, 3, color.filled())))?;
        }
    }
    for (k, (name, level)) in p.refs.iter().enumerate() {
        let color = if k == 0 { RGBColor(120, 120, 120) } else { RGBColor(200, 60, 60) };
        let dashes: Vec<(f64, f64)> = vec![(0.5, *level), (xmax as f64 + 0.5, *level)];
        chart
            .draw_series(DashedLineSeries::new(dashes, 6, 4, color.stroke_width(2)))?
            .label(format!("{name} {level:.3}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    // The legend sits outside the data's way: below the axis's top when values are high.
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// A stacked panel draws each part as the area between its line and the one below: a run of
/// one iteration would give areas of no width, an empty panel. Each line of a single point
/// becomes a bar 0.6 of an iteration wide, centred on it.
fn widen_lone_points(lines: &mut [(String, Vec<(f64, f64)>)]) {
    for (_, pts) in lines.iter_mut() {
        if let [(x, y)] = pts[..] {
            *pts = vec![(x - 0.3, y), (x + 0.3, y)];
        }
    }
}

/// An axis value: short, without trailing zeros (`0.25`, `7200`, `1.2e-5`).
fn axis(v: f64) -> String {
    // A tick one rounding error from zero is zero (not -5.6e-17).
    if v.abs() < 1e-12 {
        "0".into()
    } else if v.abs() >= 1e5 || v.abs() < 1e-3 {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A rate for an axis label: `1`, `10k`, `1M`.
fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{}G", v / 1e9),
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

/// A bar chart of each reward's throughput per core (log scale), labelled with its agreement
/// with the gold labels and the rows it rests on: speed and trust side by side.
pub fn bench_chart(path: &Path, report: &rlvr_rewards::bench::BenchReport) -> Result<()> {
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let draw = || -> Result<(), String> {
        let e = |e: &dyn std::fmt::Debug| format!("{e:?}");
        let n = report.rewards.len().max(1);
        let top = report.rewards.iter().map(|r| r.throughput.per_core_per_s).fold(10.0, f64::max) * 10.0;
        let root = BitMapBackend::new(path, (160 * n as u32 + 200, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Reward throughput per core (label: agreement with gold)", ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(72)
            // A segmented range has one segment per value up to and including its end.
            .build_cartesian_2d((0..n - 1).into_segmented(), (1f64..top).log_scale())
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc("scores per second, one core")
            .y_label_formatter(&|v| si(*v))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => report.rewards.get(*i).map_or(String::new(), |r| r.id.clone()),
                _ => String::new(),
            })
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|x| e(&x))?;
        for (i, r) in report.rewards.iter().enumerate() {
            let v = r.throughput.per_core_per_s.max(1.0);
            let color = Palette99::pick(i).to_rgba();
            // A bar three quarters of its slot wide, so that neighbours stand apart.
            let (left, top) = chart.backend_coord(&(SegmentValue::Exact(i), v));
            let (centre, bottom) = chart.backend_coord(&(SegmentValue::CenterOf(i), 1.0));
            let half = (centre - left) * 3 / 4;
            root.draw(&Rectangle::new([(centre - half, top), (centre + half, bottom)], color.filled()))
                .map_err(|x| e(&x))?;
            // Centred over the bar, so that a long label does not run into the next one.
            let style = TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{:.1}% of {}", 100.0 * r.agreement.accuracy, r.agreement.rows),
                    (SegmentValue::CenterOf(i), v * 1.15),
                    style,
                )))
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))
    };
    Ok(draw().map_err(|e| anyhow!("drawing {}: {e}", path.display()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_iteration_stacks_into_bars_with_width() {
        let mut lines = vec![("a".to_string(), vec![(1.0, 2.0)]), ("b".to_string(), vec![(1.0, 3.0), (2.0, 4.0)])];
        widen_lone_points(&mut lines);
        assert_eq!(lines[0].1, vec![(0.7, 2.0), (1.3, 2.0)]);
        assert_eq!(lines[1].1, vec![(1.0, 3.0), (2.0, 4.0)], "lines of several points are drawn as they are");
    }

    #[test]
    fn the_headline_says_the_result() {
        let m: BTreeMap<String, Vec<(u64, f64)>> = [
            ("sft/eval_accuracy_before", vec![(0, 0.125)]),
            ("sft/eval_accuracy", vec![(0, 0.5)]),
            ("sft/eval_sampled_accuracy", vec![(0, 0.375)]),
            ("eval/accuracy", vec![(1, 0.625), (3, 0.875), (5, 0.75)]),
            ("eval/sampled_accuracy", vec![(1, 0.5), (3, 0.625), (5, 0.7)]),
            ("time/sft_s", vec![(0, 12.0)]),
            ("time/rollout_s", vec![(0, 1.0), (1, 2.0)]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let h = headline(&m);
        assert_eq!(
            h[0],
            "held-out accuracy: before training 0.125 greedy; after SFT 0.500 greedy, 0.375 sampled; \
             at the end (iteration 6) 0.750 greedy, 0.700 sampled; best 0.875 at iteration 4"
        );
        assert_eq!(h[1], "time: SFT 12.0 s, rollouts 3.0 s");
        assert!(headline(&BTreeMap::new()).is_empty(), "a run with nothing measured says nothing");
    }
}
