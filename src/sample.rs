//! Choosing the next token from logits on the CPU: temperature, top-k, top-p, min-p and the
//! repetition, presence and frequency penalties, reproducible from a seed. (Plain greedy decoding never reaches here: it
//! runs as an argmax on the GPU.)

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// 0 picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1: all).
    pub top_p: f32,
    /// Drop tokens less likely than min_p times the most likely one (0: none).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this (1: off).
    pub repeat_penalty: f32,
    /// Subtract this from the logit of every token seen recently (0: off; OpenAI's
    /// presence_penalty).
    pub presence_penalty: f32,
    /// Subtract this times its count from the logit of every token seen recently (0: off;
    /// OpenAI's frequency_penalty).
    pub frequency_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    /// llama.cpp's defaults.
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repeat_last_n: 64,
            seed: 0,
        }
    }
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        SamplerConfig { temperature: 0.0, ..Default::default() }
    }

    /// Refuses settings that mean nothing (a negative temperature, a probability outside 0..1).
    pub fn check(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::Error::Input(m.to_string()));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad("the temperature must be a finite number, 0 or more");
        }
        if !(0.0..=1.0).contains(&self.top_p) || !(0.0..=1.0).contains(&self.min_p) {
            return bad("top-p and min-p must be between 0 and 1");
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return bad("the repetition penalty must be a finite number above 0");
        }
        if !(-2.0..=2.0).contains(&self.presence_penalty) || !(-2.0..=2.0).contains(&self.frequency_penalty) {
            return bad("the presence and frequency penalties must be between -2 and 2");
        }
        Ok(())
    }

    /// True when the GPU argmax gives the same answer as this sampler.
    pub fn is_plain_greedy(&self) -> bool {
        self.temperature <= 0.0 && !self.penalizes()
    }

    fn penalizes(&self) -> bool {
        self.repeat_last_n > 0
            && (self.repeat_penalty != 1.0 || self.presence_penalty != 0.0 || self.frequency_penalty != 0.0)
    }
}

pub struct Sampler {
    config: SamplerConfig,
    rng: Xoshiro256PlusPlus,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Sampler {
        let rng = Xoshiro256PlusPlus::seed_from_u64(config.seed);
        Sampler { config, rng }
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Picks a token from `logits` given the tokens seen so far.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        self.sample_within(logits, history, None).unwrap_or(0)
    }

    /// Picks a token among those `allowed` allows (a bit per token, as
    /// `grammar::Constraint::allowed` gives it; None: any), or None when no allowed token has a
    /// logit.
    pub fn sample_within(&mut self, logits: &[f32], history: &[u32], allowed: Option<&[u32]>) -> Option<u32> {
        let c = &self.config;
        let mut cands: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|&(i, l)| !l.is_nan() && allowed.is_none_or(|a| crate::grammar::is_allowed(a, i as u32)))
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if cands.is_empty() {
            return None;
        }
        if c.penalizes() {
            penalize(&mut cands, &history[history.len().saturating_sub(c.repeat_last_n)..], c);
        }
        // Most likely first; equal logits keep the lower id first, as an argmax would.
        cands.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if c.temperature <= 0.0 {
            return Some(cands[0].0);
        }
        if c.top_k > 0 {
            cands.truncate(c.top_k);
        }
        let max = cands[0].1;
        let mut probs: Vec<f32> = cands.iter().map(|&(_, l)| ((l - max) / c.temperature).exp()).collect();
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        let mut keep = probs.len();
        if c.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= c.top_p {
                    keep = i + 1;
                    break;
                }
            }
        }
        if c.min_p > 0.0 {
            keep = keep.min(probs.iter().take_while(|&&p| p >= c.min_p * probs[0]).count().max(1));
        }
        let kept_total: f32 = probs[..keep].iter().sum();
        let mut r = self.rng.random::<f32>() * kept_total;
        for i in 0..keep {
            r -= probs[i];
            if r <= 0.0 {
                return Some(cands[i].0);
            }
        }
        Some(cands[keep - 1].0)
    }
}

/// The penalties for the tokens in `recent` (the candidates are still indexed by id), as
/// llama.cpp applies them: the repetition penalty scales a logit, then presence and frequency
/// subtract from it.
fn penalize(cands: &mut [(u32, f32)], recent: &[u32], c: &SamplerConfig) {
    let mut counts = std::collections::HashMap::<u32, u32>::new();
    for &id in recent {
        *counts.entry(id).or_default() += 1;
    }
    for (&id, &count) in &counts {
        let Some((_, l)) = cands.get_mut(id as usize) else { continue };
        *l = if *l > 0.0 { *l / c.repeat_penalty } else { *l * c.repeat_penalty };
        *l -= c.presence_penalty + c.frequency_penalty * count as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.0, 3.0, -1.0, 0.5]
    }

    #[test]
    fn meaningless_settings_are_refused() {
        assert!(SamplerConfig::default().check().is_ok());
        assert!(SamplerConfig::greedy().check().is_ok());
        for bad in [
            SamplerConfig { temperature: -0.1, ..Default::default() },
            SamplerConfig { temperature: f32::NAN, ..Default::default() },
            SamplerConfig { temperature: f32::INFINITY, ..Default::default() },
            SamplerConfig { repeat_penalty: f32::INFINITY, ..Default::default() },
            SamplerConfig { top_p: 1.5, ..Default::default() },
            SamplerConfig { min_p: -1.0, ..Default::default() },
            SamplerConfig { repeat_penalty: 0.0, ..Default::default() },
            SamplerConfig { presence_penalty: 2.5, ..Default::default() },
            SamplerConfig { frequency_penalty: f32::NAN, ..Default::default() },
        ] {
            assert!(bad.check().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn zero_temperature_is_argmax_with_lowest_id_on_ties() {
        let mut s = Sampler::new(SamplerConfig::greedy());
        assert_eq!(s.sample(&logits(), &[]), 1);
    }

    #[test]
    fn repetition_penalty_moves_away_from_seen_tokens() {
        let mut s = Sampler::new(SamplerConfig { temperature: 0.0, repeat_penalty: 2.0, ..Default::default() });
        assert_eq!(s.sample(&logits(), &[1, 3]), 2);
    }

    #[test]
    fn presence_and_frequency_penalties_subtract_per_seen_token_and_per_count() {
        // Logits 3.0 (id 1) and 3.0 (id 3), then 2.0 (id 2): id 1 seen twice, id 3 once.
        let greedy = |presence_penalty, frequency_penalty| {
            let config = SamplerConfig { temperature: 0.0, presence_penalty, frequency_penalty, ..Default::default() };
            assert!(!config.is_plain_greedy(), "penalties need the logits on the CPU");
            Sampler::new(config).sample(&logits(), &[1, 3, 1])
        };
        assert_eq!(greedy(0.5, 0.0), 1, "presence alone: 2.5 and 2.5 tie, the lower id wins");
        assert_eq!(greedy(0.0, 0.4), 3, "frequency: 3 - 0.8 against 3 - 0.4");
        assert_eq!(greedy(1.5, 0.0), 2, "both seen tokens fall below 2.0");
        assert_eq!(greedy(-1.0, 0.0), 1, "a negative penalty favours seen tokens");
        let outside = SamplerConfig { temperature: 0.0, presence_penalty: 2.0, repeat_last_n: 1, ..Default::default() };
        assert_eq!(Sampler::new(outside).sample(&logits(), &[3, 1]), 3, "only the last token is recent");
    }

    #[test]
    fn top_k_one_is_greedy_whatever_the_seed() {
        for seed in 0..20 {
            let mut s = Sampler::new(SamplerConfig { top_k: 1, seed, ..Default::default() });
            assert_eq!(s.sample(&logits(), &[]), 1);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_tokens_and_filters_hold() {
        let cfg = SamplerConfig { temperature: 1.5, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 42, ..Default::default() };
        let run = |cfg: &SamplerConfig| {
            let mut s = Sampler::new(cfg.clone());
            (0..200).map(|_| s.sample(&logits(), &[])).collect::<Vec<_>>()
        };
        assert_eq!(run(&cfg), run(&cfg));
        let all = run(&cfg);
        assert!(all.contains(&4), "a high temperature reaches unlikely tokens");
        // top_p small enough keeps only the two tied best tokens.
        let narrow = run(&SamplerConfig { top_p: 0.5, ..cfg.clone() });
        assert!(narrow.iter().all(|&t| t == 1 || t == 3), "{narrow:?}");
        assert!(narrow.contains(&1) && narrow.contains(&3));
        // min_p 0.5 drops everything below half the best probability.
        let minp = run(&SamplerConfig { min_p: 0.5, ..cfg });
        assert!(minp.iter().all(|&t| [1, 2, 3].contains(&t)), "{minp:?}");
    }
}
