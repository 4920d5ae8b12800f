//! Log-probabilities of generated tokens, for clients that ask for them (the OpenAI API's
//! `logprobs`): the model's own distribution at each step, the log-softmax of its raw logits,
//! before repetition penalties, temperature or truncation shape the sampling.

/// One generated token's log-probability and the most likely tokens' at that step.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprobs {
    pub id: u32,
    pub logprob: f32,
    /// Most likely first (equal ones by lower id), at most the number asked for.
    pub top: Vec<(u32, f32)>,
}

/// The most ever returned per step (the OpenAI API's limit for chat).
pub const MAX_TOP: usize = 20;

pub fn token_logprobs(logits: &[f32], id: u32, top_n: usize) -> TokenLogprobs {
    let finite = || logits.iter().copied().filter(|l| l.is_finite());
    let max = finite().fold(f32::NEG_INFINITY, f32::max);
    let log_total = max as f64 + finite().map(|l| ((l - max) as f64).exp()).sum::<f64>().ln();
    let logprob = |l: f32| (l as f64 - log_total) as f32;
    let mut ranked: Vec<u32> = (0..logits.len() as u32).filter(|&i| logits[i as usize].is_finite()).collect();
    let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
    let n = top_n.min(MAX_TOP).min(ranked.len());
    if n > 0 && n < ranked.len() {
        ranked.select_nth_unstable_by(n - 1, by_logit);
    }
    ranked.truncate(n);
    ranked.sort_by(by_logit);
    TokenLogprobs {
        id,
        logprob: logits.get(id as usize).map_or(f32::NEG_INFINITY, |&l| logprob(l)),
        top: ranked.into_iter().map(|i| (i, logprob(logits[i as usize]))).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_are_the_log_softmax_of_the_logits_with_the_best_first() {
        let logits = [1.0, 3.0, f32::NAN, 2.0, 3.0, -1.0];
        let got = token_logprobs(&logits, 3, 3);
        let total: f64 = [1.0f64, 3.0, 2.0, 3.0, -1.0].iter().map(|l| l.exp()).sum();
        let want = |l: f64| (l - total.ln()) as f32;
        assert!((got.logprob - want(2.0)).abs() < 1e-6, "{got:?}");
        let ids: Vec<u32> = got.top.iter().map(|t| t.0).collect();
        assert_eq!(ids, [1, 4, 3], "ties by lower id, NaN left out");
        assert!((got.top[0].1 - want(3.0)).abs() < 1e-6 && (got.top[2].1 - want(2.0)).abs() < 1e-6);
        let probabilities: f32 = token_logprobs(&logits, 0, MAX_TOP).top.iter().map(|t| t.1.exp()).sum();
        assert!((probabilities - 1.0).abs() < 1e-5, "all finite tokens listed: {probabilities}");
        assert!(token_logprobs(&logits, 0, 0).top.is_empty());
    }
}
