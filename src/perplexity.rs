//! Perplexity with llama-perplexity's protocol, so the figures compare: the text's tokens are
//! cut into non-overlapping chunks of `n_ctx`, each evaluated from an empty cache, and only the
//! second half of each chunk is scored (logits at positions n_ctx/2 .. n_ctx-2 predicting the
//! token after each). With a BOS-adding vocabulary the first token of each chunk becomes BOS.

use crate::generate::Session;
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Perplexity {
    /// Running perplexity after each chunk.
    pub running: Vec<f64>,
    pub ppl: f64,
    /// llama-perplexity's "+/-": the standard error of the mean NLL, times the perplexity.
    pub uncertainty: f64,
    pub scored_tokens: usize,
}

/// Negative log-likelihood of `target` under `logits`, in f64.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    let t = logits.get(target as usize).map_or(f64::NEG_INFINITY, |&v| v as f64);
    (sum.ln() + max) - t
}

/// Evaluates `tokens` chunk by chunk; `on_chunk(index, running_ppl)` after each.
pub async fn perplexity(
    session: &mut Session,
    tokens: &[u32],
    n_ctx: usize,
    bos: Option<u32>,
    max_chunks: Option<usize>,
    mut on_chunk: impl FnMut(usize, f64),
) -> Result<Perplexity> {
    if n_ctx < 4 {
        return Err(Error::Input(format!("--ctx {n_ctx} is too small for perplexity (at least 4)")));
    }
    let mut n_chunks = tokens.len() / n_ctx;
    if let Some(m) = max_chunks {
        n_chunks = n_chunks.min(m);
    }
    if n_chunks == 0 {
        return Err(Error::Input(format!(
            "the text has {} tokens, fewer than one chunk of {n_ctx}: use a longer text or a smaller --ctx",
            tokens.len()
        )));
    }
    let vocab = session.model.config.n_vocab;
    let first = n_ctx / 2;
    let (mut sum, mut sum2, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut running = Vec::with_capacity(n_chunks);
    for c in 0..n_chunks {
        let mut chunk = tokens[c * n_ctx..][..n_ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        session.reset();
        let logits = session.logits_from(&chunk, first).await?;
        for (i, row) in logits.chunks_exact(vocab).take(n_ctx - first - 1).enumerate() {
            let v = nll(row, chunk[first + i + 1]);
            sum += v;
            sum2 += v * v;
            count += 1;
        }
        let ppl = (sum / count as f64).exp();
        running.push(ppl);
        on_chunk(c, ppl);
    }
    let mean = sum / count as f64;
    let ppl = mean.exp();
    let var = sum2 / count as f64 - mean * mean;
    let uncertainty = if var > 0.0 && count > 1 { (var / (count - 1) as f64).sqrt() * ppl } else { 0.0 };
    Ok(Perplexity { running, ppl, uncertainty, scored_tokens: count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nll_is_the_negative_log_softmax() {
        let logits = [1.0f32, 2.0, 3.0];
        let z: f64 = logits.iter().map(|&v| (v as f64).exp()).sum();
        assert!((nll(&logits, 2) - (z.ln() - 3.0)).abs() < 1e-12);
        assert!(nll(&[1000.0, 0.0], 0) < 1e-12, "large logits do not overflow");
    }
}
