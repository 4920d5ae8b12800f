//! BPE merges (ranked for byte-level vocabularies, derived from scores for SentencePiece ones)
//! and the `tokenizers` pipeline built from them.

use std::collections::{HashMap, HashSet};

use tokenizers::SplitDelimiterBehavior;
use tokenizers::models::bpe::{BPE, Merges, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};

use super::pretokenize::PreConfig;
use super::{Kind, err};
use crate::Result;

/// gpt2 merges "a b" in rank order, dropping those HF's BPE cannot represent (parts or result not
/// in the vocabulary) and repeats (llama.cpp keeps the first rank).
pub(super) fn ranked_merges(merges: &[String], ids: &HashMap<&str, u32>) -> Merges {
    let mut out = Vec::with_capacity(merges.len());
    let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(merges.len());
    let mut joined = String::new();
    let mut skipped = 0usize;
    for m in merges {
        // llama.cpp splits at the first space after the first byte.
        let Some(pos) = m.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1) else {
            skipped += 1;
            continue;
        };
        let (a, b) = (&m[..pos], &m[pos + 1..]);
        joined.clear();
        joined.push_str(a);
        joined.push_str(b);
        let known = ids.contains_key(a) && ids.contains_key(b) && ids.contains_key(joined.as_str());
        if !known {
            skipped += 1;
        } else if seen.insert((a, b)) {
            out.push((a.to_owned(), b.to_owned()));
        }
    }
    if skipped > 0 {
        log::warn!("ignored {skipped} BPE merges that are malformed or refer to tokens outside the vocabulary");
    }
    out
}

/// Merges for SentencePiece BPE: llama.cpp merges any two adjacent symbols whose concatenation
/// is a token, best-scored token first. Every split of a token into two tokens is thus a merge,
/// ranked by the merged token's score (ties: lower id first).
pub(super) fn score_merges(tokens: &[String], scores: &[f32], ids: &HashMap<&str, u32>) -> Merges {
    let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let score = scores.get(i).copied().unwrap_or(0.0);
        for (split, _) in t.char_indices().skip(1) {
            if ids.contains_key(&t[..split]) && ids.contains_key(&t[split..]) {
                candidates.push((score, i, split));
            }
        }
    }
    candidates.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    candidates
        .into_iter()
        .filter_map(|(_, i, split)| {
            let t = tokens.get(i)?;
            Some((t[..split].to_owned(), t[split..].to_owned()))
        })
        .collect()
}

pub(super) fn build_hf(
    kind: Kind,
    tokens: &[String],
    merges: Merges,
    unk: Option<String>,
    pre: &PreConfig,
) -> Result<tokenizers::Tokenizer> {
    let vocab: Vocab = tokens.iter().cloned().zip(0u32..).collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(matches!(kind, Kind::Spm | Kind::Gemma4))
        .ignore_merges(pre.ignore_merges);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let bpe = builder.build().map_err(|e| err(format!("cannot build BPE model: {e}")))?;
    let mut hf = tokenizers::Tokenizer::new(bpe);
    if kind == Kind::Bpe {
        let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(pre.regexes.len() + 1);
        for re in pre.regexes {
            let split = Split::new(SplitPattern::Regex((*re).to_owned()), SplitDelimiterBehavior::Isolated, false)
                .map_err(|e| err(format!("bad pre-tokenizer regex {re:?}: {e}")))?;
            steps.push(split.into());
        }
        steps.push(ByteLevel::new(false, false, false).into());
        hf.with_pre_tokenizer(Some(Sequence::new(steps)));
    }
    Ok(hf)
}
