//! Choosing the next token from logits: temperature, top-k, top-p, min-p, greedy, with a
//! per-sequence random stream.
//!
//! The filters apply in the order of HF `transformers` and vLLM: temperature, then top-k, then
//! top-p, then min-p (relative to the most likely token), then renormalisation. The returned
//! log-probability is that of the chosen token under this final distribution, the one the
//! token was actually drawn from, which is what an importance ratio needs. Greedy decoding
//! draws from no distribution; it reports the model's own log-softmax at temperature 1.

use serde::{Deserialize, Serialize};

/// Sampling settings of a policy (`[policy.config]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingConfig {
    /// Divides the logits. Default 1.0; 0 means greedy.
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 keeps all. Default 0.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`. Default 1.0.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one. Default 0.0.
    pub min_p: f32,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0 }
    }
}

impl SamplingConfig {
    /// Checks the ranges, so a typo is an error at build time rather than NaN at run time.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(format!("temperature must be >= 0, got {}", self.temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must lie in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("min_p must lie in [0, 1], got {}", self.min_p));
        }
        Ok(())
    }
}

/// A small, fast, seedable generator (SplitMix64): one per sequence, so a sequence's samples
/// depend only on its own seed, never on what else shares its batch.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

/// The most likely token and its log-softmax.
pub fn argmax(logits: &[f32]) -> (u32, f32) {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    (best as u32, logits[best] - log_sum_exp(logits, 1.0))
}

fn log_sum_exp(logits: &[f32], temp: f32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) / temp;
    let sum: f64 = logits.iter().map(|&l| f64::from((l / temp - max).exp())).sum();
    max + sum.ln() as f32
}

/// The distribution that [`sample`] draws from: `(token, probability)` pairs, most likely
/// first, summing to 1. Exposed so tests can check each filter by hand.
pub fn distribution(logits: &[f32], cfg: &SamplingConfig) -> Vec<(u32, f64)> {
    let temp = cfg.temperature.max(f32::MIN_POSITIVE);
    let lse = log_sum_exp(logits, temp);
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let logit = |i: &u32| logits[*i as usize];
    if cfg.top_k > 0 && cfg.top_k < ids.len() {
        ids.select_nth_unstable_by(cfg.top_k - 1, |a, b| logit(b).total_cmp(&logit(a)));
        ids.truncate(cfg.top_k);
    }
    ids.sort_unstable_by(|a, b| logit(b).total_cmp(&logit(a)).then(a.cmp(b)));
    let mut probs: Vec<(u32, f64)> =
        ids.into_iter().map(|i| (i, f64::from((logits[i as usize] / temp - lse).exp()))).collect();
    // Renormalise after top-k so that top-p reads the distribution top-k left.
    let z: f64 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= z);
    if cfg.top_p < 1.0 {
        let mut acc = 0.0;
        let keep = probs
            .iter()
            .position(|p| {
                acc += p.1;
                acc >= f64::from(cfg.top_p)
            })
            .map_or(probs.len(), |i| i + 1);
        probs.truncate(keep);
    }
    if cfg.min_p > 0.0 {
        let floor = probs[0].1 * f64::from(cfg.min_p);
        probs.retain(|p| p.1 >= floor);
    }
    let z: f64 = probs.iter().map(|p| p.1).sum();
    probs.iter_mut().for_each(|p| p.1 /= z);
    probs
}

/// Draws the next token; returns it with its log-probability (see the module docs).
pub fn sample(logits: &[f32], cfg: &SamplingConfig, greedy: bool, rng: &mut Rng) -> (u32, f32) {
    if greedy || cfg.temperature == 0.0 {
        return argmax(logits);
    }
    let no_filter = cfg.top_k == 0 && cfg.top_p >= 1.0 && cfg.min_p <= 0.0;
    let u = rng.uniform();
    if no_filter {
        // The common case needs no sort: one pass for the normaliser, one to draw.
        let lse = log_sum_exp(logits, cfg.temperature);
        let mut acc = 0.0;
        let mut last = 0;
        for (i, &l) in logits.iter().enumerate() {
            let lp = l / cfg.temperature - lse;
            acc += f64::from(lp.exp());
            last = i;
            if acc > u {
                return (i as u32, lp);
            }
        }
        return (last as u32, logits[last] / cfg.temperature - lse);
    }
    let dist = distribution(logits, cfg);
    let mut acc = 0.0;
    for &(id, p) in &dist {
        acc += p;
        if acc > u {
            return (id, p.ln() as f32);
        }
    }
    let &(id, p) = dist.last().expect("a distribution keeps at least one token");
    (id, p.ln() as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f32, top_k: usize, top_p: f32, min_p: f32) -> SamplingConfig {
        SamplingConfig { temperature, top_k, top_p, min_p }
    }

    // ln of probabilities 0.5, 0.25, 0.15, 0.1: softmax gives them back exactly.
    fn logits() -> Vec<f32> {
        [0.1f32, 0.5, 0.15, 0.25].iter().map(|p| p.ln()).collect()
    }

    fn close(d: &[(u32, f64)], want: &[(u32, f64)]) {
        assert_eq!(d.len(), want.len(), "{d:?} vs {want:?}");
        for (a, b) in d.iter().zip(want) {
            assert_eq!(a.0, b.0, "{d:?} vs {want:?}");
            assert!((a.1 - b.1).abs() < 1e-6, "{d:?} vs {want:?}");
        }
    }

    #[test]
    fn filters_match_hand_computed_distributions() {
        let l = logits();
        close(&distribution(&l, &cfg(1.0, 0, 1.0, 0.0)), &[(1, 0.5), (3, 0.25), (2, 0.15), (0, 0.1)]);
        // top-k 2 keeps 0.5 and 0.25, renormalised to 2/3 and 1/3.
        close(&distribution(&l, &cfg(1.0, 2, 1.0, 0.0)), &[(1, 2.0 / 3.0), (3, 1.0 / 3.0)]);
        // top-p 0.8: 0.5 + 0.25 = 0.75 < 0.8, so 0.15 joins: 0.9 in all.
        close(&distribution(&l, &cfg(1.0, 0, 0.8, 0.0)), &[(1, 0.5 / 0.9), (3, 0.25 / 0.9), (2, 0.15 / 0.9)]);
        // min-p 0.25: floor 0.125 drops only the 0.1.
        close(&distribution(&l, &cfg(1.0, 0, 1.0, 0.25)), &[(1, 0.5 / 0.9), (3, 0.25 / 0.9), (2, 0.15 / 0.9)]);
        // temperature 0.5 squares the probabilities: 0.25, 0.0625, 0.0225, 0.01 (sum 0.345).
        close(
            &distribution(&l, &cfg(0.5, 0, 1.0, 0.0)),
            &[(1, 0.25 / 0.345), (3, 0.0625 / 0.345), (2, 0.0225 / 0.345), (0, 0.01 / 0.345)],
        );
    }

    #[test]
    fn sampled_frequencies_and_logprobs_follow_the_distribution() {
        let l = logits();
        for c in [cfg(1.0, 0, 1.0, 0.0), cfg(1.0, 0, 0.8, 0.0), cfg(0.7, 3, 1.0, 0.1)] {
            let dist = distribution(&l, &c);
            let mut rng = Rng::new(7);
            let mut counts = [0usize; 4];
            for _ in 0..20_000 {
                let (t, lp) = sample(&l, &c, false, &mut rng);
                counts[t as usize] += 1;
                let p = dist.iter().find(|d| d.0 == t).expect("drawn from the kept set").1;
                assert!((lp - p.ln() as f32).abs() < 1e-5);
            }
            for &(id, p) in &dist {
                let f = counts[id as usize] as f64 / 20_000.0;
                assert!((f - p).abs() < 0.015, "{c:?}: token {id} {f} vs {p}");
            }
            let kept: usize = dist.iter().map(|d| counts[d.0 as usize]).sum();
            assert_eq!(kept, 20_000, "nothing outside the kept set");
        }
    }

    #[test]
    fn greedy_takes_the_argmax_with_its_log_softmax() {
        let (t, lp) = sample(&logits(), &cfg(1.0, 0, 1.0, 0.0), true, &mut Rng::new(0));
        assert_eq!(t, 1);
        assert!((lp - 0.5f32.ln()).abs() < 1e-6);
        assert_eq!(sample(&logits(), &cfg(0.0, 0, 1.0, 0.0), false, &mut Rng::new(0)).0, 1);
    }

    #[test]
    fn same_seed_same_draws() {
        let l = logits();
        let draw = |seed| {
            let mut r = Rng::new(seed);
            (0..50).map(|_| sample(&l, &SamplingConfig::default(), false, &mut r).0).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn bad_settings_are_rejected() {
        assert!(cfg(-1.0, 0, 1.0, 0.0).validate().is_err());
        assert!(cfg(1.0, 0, 0.0, 0.0).validate().is_err());
        assert!(cfg(1.0, 0, 1.0, 1.5).validate().is_err());
        assert!(SamplingConfig::default().validate().is_ok());
    }
}
