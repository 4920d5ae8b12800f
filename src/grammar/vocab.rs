//! The vocabulary as llguidance sees it: each token's bytes in a trie, so a grammar's lexer can
//! tell which tokens may come next.

use crate::tokenizer::Tokenizer;
use llguidance::toktrie::{ApproximateTokEnv, TokEnv, TokRxInfo, TokTrie};
use std::sync::Arc;

/// The token environment for a model of `n_vocab` logits over `tok`. A token stands for the
/// bytes the stream decoder emits for it, so what the grammar accepts is exactly the text a
/// client receives; control tokens (which decode to nothing) are llguidance's special tokens,
/// which a grammar names (`<[id]>`) rather than spells. Rows past the vocabulary (padded
/// embeddings) have no bytes and are never allowed.
pub fn token_env(tok: &Tokenizer, n_vocab: usize) -> TokEnv {
    let words: Vec<Vec<u8>> = (0..n_vocab as u32)
        .map(|id| {
            if id as usize >= tok.vocab_size() {
                Vec::new()
            } else if tok.decodes_to_nothing(id) {
                let mut word = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                word.extend_from_slice(&tok.token_piece(id));
                word
            } else {
                tok.token_piece(id)
            }
        })
        .collect();
    let eos = tok.eos_id().or_else(|| tok.eog_ids().first().copied()).unwrap_or(0);
    let info = TokRxInfo { tok_bos: tok.bos_id(), ..TokRxInfo::new(n_vocab as u32, eos) };
    // Tokens are looked up by their bytes (greedy through the trie) where llguidance needs to
    // tokenize a forced string: hearth never feeds such tokens, it only reads masks.
    Arc::new(ApproximateTokEnv::new(TokTrie::from(&info, &words)))
}
