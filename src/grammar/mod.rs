//! Structured output: generation held to a JSON schema or a grammar, so the answer always
//! parses. llguidance compiles the grammar against the vocabulary (`vocab.rs`) and says, before
//! each token, which tokens may come next; generation picks among those only — greedy on the
//! GPU through a bitmask (`ops::argmax`), sampled on the CPU from the logits it reads anyway.

mod vocab;

use crate::tokenizer::Tokenizer;
use crate::{Error, Result};
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// What the output must be.
#[derive(Clone, Debug, PartialEq)]
pub enum Grammar {
    /// Any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    JsonObject,
    /// JSON valid under this schema.
    JsonSchema(Value),
    /// A grammar in llguidance's Lark syntax (which can embed JSON schemas: `%json {...}`).
    Lark(String),
}

impl Grammar {
    fn top_level(&self) -> TopLevelGrammar {
        match self {
            Grammar::JsonObject => {
                TopLevelGrammar::from_json_schema(one_line_json(serde_json::json!({"type": "object"})))
            }
            Grammar::JsonSchema(schema) => TopLevelGrammar::from_json_schema(one_line_json(schema.clone())),
            Grammar::Lark(text) => TopLevelGrammar::from_lark(text.clone()),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Grammar::JsonObject | Grammar::JsonSchema(_) => "the JSON schema",
            Grammar::Lark(_) => "the grammar",
        }
    }
}

/// JSON on one line, items separated by ", " and keys by ": " (as OpenAI's answers look),
/// unless the schema chooses otherwise (llguidance's `x-guidance` options). Free whitespace
/// lets a small model spend its tokens on blank lines.
pub fn one_line_json(mut schema: Value) -> Value {
    if let Some(object) = schema.as_object_mut()
        && !object.contains_key("x-guidance")
    {
        let options = serde_json::json!({"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "});
        object.insert("x-guidance".into(), options);
    }
    schema
}

/// Compiles grammars for one model; the vocabulary's trie is built at the first one (tens of
/// milliseconds for a 150k vocabulary) and shared by all after it.
pub struct GrammarCompiler {
    n_vocab: usize,
    factory: OnceLock<std::result::Result<Arc<ParserFactory>, String>>,
}

impl GrammarCompiler {
    pub fn new(n_vocab: usize) -> GrammarCompiler {
        GrammarCompiler { n_vocab, factory: OnceLock::new() }
    }

    /// A constraint that starts at the beginning of `grammar`; a grammar llguidance cannot
    /// compile (a schema feature it lacks, a syntax error) is refused here, before any work.
    pub fn compile(&self, tok: &Tokenizer, grammar: &Grammar) -> Result<Constraint> {
        let factory = self
            .factory
            .get_or_init(|| {
                let mut factory = ParserFactory::new_simple(&vocab::token_env(tok, self.n_vocab))
                    .map_err(|e| format!("cannot prepare the vocabulary for structured output: {e}"))?;
                factory.quiet();
                Ok(Arc::new(factory))
            })
            .as_ref()
            .map_err(|e| Error::Input(e.clone()))?;
        let parser = factory
            .create_parser(grammar.top_level())
            .map_err(|e| Error::Input(format!("{} cannot be used: {e}", grammar.what())))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(Error::Input(format!("{} cannot be used: {e}", grammar.what())));
        }
        let eos = factory.tok_env().tok_trie().eos_token();
        Ok(Constraint { matcher, eos, eog: tok.eog_ids().to_vec(), n_vocab: self.n_vocab })
    }
}

/// One generation's progress through its grammar.
pub struct Constraint {
    matcher: Matcher,
    /// The token llguidance allows where the grammar may end; every end-of-generation token is
    /// allowed with it.
    eos: u32,
    eog: Vec<u32>,
    n_vocab: usize,
}

impl Constraint {
    /// The tokens that may come next, as a bitmask: bit `i % 32` of word `i / 32` for token
    /// `i`, one word per 32 tokens of the vocabulary.
    pub fn allowed(&mut self) -> Result<Vec<u32>> {
        let words = self.n_vocab.div_ceil(32);
        let mut mask = vec![0u32; words];
        if self.matcher.is_stopped() {
            self.allow_ending(&mut mask, true);
            return Ok(mask);
        }
        let vob = self.matcher.compute_mask().map_err(|e| self.failure(e))?;
        let set = vob.as_slice();
        let n = set.len().min(words);
        mask[..n].copy_from_slice(&set[..n]);
        let may_end = vob.is_allowed(self.eos);
        self.allow_ending(&mut mask, may_end);
        if mask.iter().all(|&w| w == 0) {
            return Err(Error::Input("the grammar allows no token at this point".into()));
        }
        Ok(mask)
    }

    fn allow_ending(&self, mask: &mut [u32], on: bool) {
        for &id in self.eog.iter().chain([&self.eos]) {
            if let Some(word) = mask.get_mut(id as usize / 32) {
                let bit = 1 << (id % 32);
                *word = if on { *word | bit } else { *word & !bit };
            }
        }
    }

    /// Moves past `id`, which `allowed` allowed.
    pub fn accept(&mut self, id: u32) -> Result<()> {
        self.matcher.consume_token(id).map_err(|e| self.failure(e))
    }

    /// True once the grammar is complete and allows nothing more: generation ends here.
    pub fn is_complete(&self) -> bool {
        self.matcher.is_stopped()
    }

    fn failure(&self, e: impl std::fmt::Display) -> Error {
        Error::Input(format!("structured output failed: {e}"))
    }
}

/// Whether bit `id` of `mask` is set.
pub fn is_allowed(mask: &[u32], id: u32) -> bool {
    mask.get(id as usize / 32).is_some_and(|w| w >> (id % 32) & 1 == 1)
}

/// Whether `grammar` takes `text` whole (a vocabulary of single bytes: what the grammar says,
/// apart from any model's tokens).
#[cfg(test)]
pub(crate) fn takes_text(grammar: &Grammar, text: &str) -> bool {
    takes_text_with_specials(grammar, text, &[])
}

/// As `takes_text`, in a vocabulary where each of `specials` is also a special token, of id
/// 256, 257, …: where one appears in `text`, it is that token (a grammar names it `<[256]>`).
#[cfg(test)]
pub(crate) fn takes_text_with_specials(grammar: &Grammar, text: &str, specials: &[&str]) -> bool {
    use llguidance::toktrie::{ApproximateTokEnv, TokRxInfo, TokTrie};
    let mut words: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for special in specials {
        words.push([&[TokTrie::SPECIAL_TOKEN_MARKER][..], special.as_bytes()].concat());
    }
    let info = TokRxInfo::new(words.len() as u32, 0);
    let env: llguidance::toktrie::TokEnv = Arc::new(ApproximateTokEnv::new(TokTrie::from(&info, &words)));
    let mut factory = ParserFactory::new_simple(&env).expect("a factory");
    factory.quiet();
    let mut matcher = Matcher::new(factory.create_parser(grammar.top_level()));
    let mut tokens = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match specials.iter().position(|s| rest.starts_with(s)) {
            Some(i) => {
                tokens.push(256 + i as u32);
                rest = &rest[specials[i].len()..];
            }
            None => {
                let c = rest.chars().next().map_or(1, char::len_utf8);
                tokens.extend(rest[..c].bytes().map(u32::from));
                rest = &rest[c..];
            }
        }
    }
    matcher.consume_tokens(&tokens).is_ok() && matcher.is_accepting().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_held_to_one_line_unless_the_schema_says_otherwise() {
        let schema =
            Grammar::JsonSchema(serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}}));
        assert!(takes_text(&schema, r#"{"a": 1}"#));
        assert!(!takes_text(&schema, "{\n  \"a\": 1\n}"));
        assert!(!takes_text(&schema, r#"{"a": "x"}"#));
        let flexible = serde_json::json!({"type": "object", "x-guidance": {"whitespace_flexible": true}});
        assert!(takes_text(&Grammar::JsonSchema(flexible), "{\n}"));
        assert!(takes_text(&Grammar::JsonObject, r#"{"b": [1, 2]}"#));
        assert!(!takes_text(&Grammar::JsonObject, "[1]"));
    }
}
