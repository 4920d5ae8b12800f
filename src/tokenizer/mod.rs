//! Tokenizer built from the vocabulary stored in GGUF metadata (`tokenizer.ggml.*`).
//!
//! The BPE merging itself runs in a `tokenizers` pipeline; everything around it (splitting
//! out special tokens, BOS/EOS, the SentencePiece space prefix, detokenization, end-of-generation
//! tokens) follows llama.cpp's `src/llama-vocab.cpp`, so ids match `llama-tokenize` for the same file.

use std::collections::HashMap;

use crate::{Error, Result};

pub mod hf_json;
mod merges;
mod pieces;
mod pretokenize;
mod special;
mod stream;

use merges::{build_hf, ranked_merges, score_merges};
use pieces::{clean_up_spaces, render_piece};
use pretokenize::{PreConfig, pre_config};
use special::{Attr, SHOWN_CONTROL_TEXTS, classify_special_texts};
pub use stream::StreamDecoder;

/// Everything the GGUF metadata says about the vocabulary (keys tokenizer.ggml.*), already extracted by the GGUF reader.
#[derive(Debug, Clone, Default)]
pub struct VocabSpec {
    /// tokenizer.ggml.model: "gpt2" (byte-level BPE), "llama" (SentencePiece BPE with scores) or
    /// "gemma4" (BPE with ranked merges over raw UTF-8, spaces as "▁").
    pub model: String,
    /// tokenizer.ggml.pre, e.g. "smollm", "llama-bpe", "qwen2", "default", "gpt-2".
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    pub scores: Option<Vec<f32>>,
    /// 1 normal, 2 unknown, 3 control, 4 user_defined, 5 unused, 6 byte
    pub token_types: Option<Vec<i32>>,
    /// gpt2: "a b" strings
    pub merges: Option<Vec<String>>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub unk_id: Option<u32>,
    pub eot_id: Option<u32>,
    pub eom_id: Option<u32>,
    pub pad_id: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_space_prefix: Option<bool>,
}

fn err(msg: impl Into<String>) -> Error {
    Error::Tokenizer(msg.into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// "gpt2": byte-level BPE with ranked merges.
    Bpe,
    /// "llama": SentencePiece BPE driven by token scores, with `<0xXX>` byte fallback.
    Spm,
    /// "gemma4": BPE with ranked merges over raw UTF-8 text whose spaces are written "▁", with
    /// `<0xXX>` byte fallback, each run of newlines on its own (one token where the vocabulary
    /// has the whole run).
    Gemma4,
    /// "none", "no_vocab" or "test" (llama.cpp's test models): token texts without a way to
    /// encode text, for files run from token ids (`run --prompt-ids`, `hearth logits`).
    Placeholder,
}

/// A tokenizer for one GGUF vocabulary, with llama.cpp's encode/decode semantics.
pub struct Tokenizer {
    kind: Kind,
    hf: tokenizers::Tokenizer,
    tokens: Vec<String>,
    attrs: Vec<Attr>,
    /// Each token rendered as llama.cpp prints it with special output on.
    pieces: Vec<Box<[u8]>>,
    /// Tokens split out of input text before BPE, longest text first.
    specials: Vec<u32>,
    /// Sorted, deduplicated.
    eog: Vec<u32>,
    /// Control tokens decoded as their text all the same (`SHOWN_CONTROL_TEXTS`), sorted.
    shown: Vec<u32>,
    /// The longest token text's bytes (at least 1), for the server's check of each prompt.
    max_token_bytes: usize,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    clean_spaces: bool,
}

enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

impl Tokenizer {
    pub fn from_vocab(spec: &VocabSpec) -> Result<Self> {
        let kind = match spec.model.as_str() {
            "gpt2" => Kind::Bpe,
            "llama" => Kind::Spm,
            "gemma4" => Kind::Gemma4,
            "none" | "no_vocab" | "test" => Kind::Placeholder,
            other => {
                return Err(err(format!(
                    "unsupported tokenizer model '{other}' (tokenizer.ggml.model); \
                     supported: 'gpt2' (byte-level BPE), 'llama' (SentencePiece) and 'gemma4', and placeholder \
                     vocabularies ('none', 'test') run from token ids"
                )));
            }
        };
        let n = spec.tokens.len();
        if n == 0 {
            return Err(err("the vocabulary is empty (tokenizer.ggml.tokens missing or has no entries)"));
        }
        let n32 = u32::try_from(n).map_err(|_| err(format!("vocabulary of {n} tokens is too large")))?;
        check_len("tokenizer.ggml.scores", spec.scores.as_deref(), n)?;
        check_len("tokenizer.ggml.token_type", spec.token_types.as_deref(), n)?;

        // llama.cpp renames empty tokens so every token has a distinct, non-empty text.
        let tokens: Vec<String> = spec
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| if t.is_empty() { format!("[EMPTY_{i}]") } else { t.clone() })
            .collect();
        let mut ids: HashMap<&str, u32> = HashMap::with_capacity(n);
        for (id, t) in (0..n32).zip(&tokens) {
            if let Some(prev) = ids.insert(t, id) {
                return Err(err(format!("duplicate token {t:?} in vocabulary (ids {prev} and {id})")));
            }
        }
        let mut attrs: Vec<Attr> = match &spec.token_types {
            Some(types) => types.iter().take(n).map(|&t| Attr::from_type(t)).collect(),
            None => vec![Attr::Normal; n],
        };

        let valid = |id: Option<u32>, key: &str| match id {
            Some(id) if id < n32 => Some(id),
            Some(id) => {
                log::warn!("tokenizer.ggml.{key} = {id} is outside the vocabulary ({n} tokens); ignored");
                None
            }
            None => None,
        };
        // llama.cpp's defaults for SentencePiece vocabularies: <unk>=0, <s>=1, </s>=2.
        let spm_default = |id: u32| (kind == Kind::Spm && id < n32).then_some(id);
        let bos = valid(spec.bos_id, "bos_token_id").or(spm_default(1));
        let eos = valid(spec.eos_id, "eos_token_id").or(spm_default(2));
        let unk = valid(spec.unk_id, "unknown_token_id").or(spm_default(0));
        let eot = valid(spec.eot_id, "eot_token_id");
        let eom = valid(spec.eom_id, "eom_token_id");

        let pre = match kind {
            Kind::Bpe => pre_config(spec.pre.as_deref()),
            Kind::Spm => PreConfig { regexes: &[], ignore_merges: false, add_bos: true, clean_spaces: false },
            Kind::Gemma4 => PreConfig { regexes: &[], ignore_merges: false, add_bos: true, clean_spaces: true },
            Kind::Placeholder => PreConfig { regexes: &[], ignore_merges: false, add_bos: false, clean_spaces: false },
        };
        // llama.cpp always adds BOS for Gemma 4, whatever the file says.
        let add_bos = kind == Kind::Gemma4 || spec.add_bos.unwrap_or(pre.add_bos);
        let add_eos = spec.add_eos.unwrap_or(false);
        if add_bos && bos.is_none() {
            return Err(err("tokenizer.ggml.add_bos_token is true, but no BOS token id is set"));
        }
        if add_eos && eos.is_none() {
            return Err(err("tokenizer.ggml.add_eos_token is true, but no EOS token id is set"));
        }

        let eog = classify_special_texts(&tokens, &mut attrs, &[eos, eot, eom]);
        let mut specials: Vec<u32> = (0..n32).zip(&attrs).filter(|(_, a)| a.is_special()).map(|(id, _)| id).collect();
        specials.sort_by_key(|&id| std::cmp::Reverse(tokens.get(id as usize).map_or(0, String::len)));
        let pieces = tokens.iter().zip(&attrs).map(|(t, &a)| render_piece(kind, t, a)).collect();
        let shown: Vec<u32> =
            (0..n32).filter(|&id| SHOWN_CONTROL_TEXTS.contains(&tokens[id as usize].as_str())).collect();

        let merges = match kind {
            Kind::Bpe | Kind::Gemma4 => {
                let merges = spec.merges.as_deref().ok_or_else(|| {
                    err(format!("{} vocabulary without merges (tokenizer.ggml.merges missing)", spec.model))
                })?;
                ranked_merges(merges, &ids)
            }
            // A tokenizer.json lists its merges; a GGUF file gives scores to derive them from.
            Kind::Spm => match &spec.merges {
                Some(merges) => ranked_merges(merges, &ids),
                None => score_merges(&tokens, spec.scores.as_deref().unwrap_or(&[]), &ids),
            },
            Kind::Placeholder => ranked_merges(&[], &ids),
        };
        let unk_text = match kind {
            Kind::Spm => unk.and_then(|id| tokens.get(id as usize)).cloned(),
            Kind::Bpe | Kind::Gemma4 | Kind::Placeholder => None,
        };
        let hf = build_hf(kind, &tokens, merges, unk_text, &pre)?;
        let max_token_bytes = tokens.iter().map(String::len).max().unwrap_or(1).max(1);

        Ok(Tokenizer {
            kind,
            hf,
            tokens,
            attrs,
            pieces,
            specials,
            eog,
            shown,
            max_token_bytes,
            bos,
            eos,
            add_bos,
            add_eos,
            add_space_prefix: spec.add_space_prefix.unwrap_or(kind == Kind::Spm),
            clean_spaces: pre.clean_spaces,
        })
    }

    /// llama.cpp semantics: `add_special` adds BOS/EOS when the vocabulary asks for them;
    /// with `parse_special`, control-token texts in the input (e.g. "<|im_start|>") become their ids,
    /// otherwise they are tokenized as plain text. User-defined tokens are always recognized.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        if self.kind == Kind::Placeholder {
            return Err(err(
                "this model's vocabulary is a placeholder (tokenizer.ggml.model 'none' or 'test'): it cannot \
                 encode text; give token ids instead (hearth run --prompt-ids, hearth logits --ids)",
            ));
        }
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        let mut prev_special = true;
        for fragment in self.split_specials(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    match self.kind {
                        Kind::Bpe | Kind::Placeholder => self.encode_text(t, &mut out)?,
                        Kind::Spm => {
                            // SentencePiece escapes spaces as "▁"; llama.cpp adds the dummy prefix
                            // to the start of the text and after every special token.
                            let mut escaped = String::with_capacity(t.len() + 3);
                            if self.add_space_prefix && prev_special {
                                escaped.push('▁');
                            }
                            escaped.extend(t.chars().map(|c| if c == ' ' { '▁' } else { c }));
                            self.encode_text(&escaped, &mut out)?;
                        }
                        Kind::Gemma4 => {
                            let escaped: String = t.chars().map(|c| if c == ' ' { '▁' } else { c }).collect();
                            for run in newline_runs(&escaped) {
                                let whole = run.starts_with('\n').then(|| self.hf.token_to_id(run)).flatten();
                                match whole {
                                    Some(id) => out.push(id),
                                    None => self.encode_text(run, &mut out)?,
                                }
                            }
                        }
                    }
                    prev_special = false;
                }
            }
        }
        if add_special && self.add_bos && out.len() >= 2 && out.get(1) == self.bos.as_ref() {
            log::warn!("the prompt starts with a BOS token and another one was added: it now has two");
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        Ok(out)
    }

    /// Text of `ids` as llama.cpp's `common_detokenize` gives it: control tokens produce nothing,
    /// the SentencePiece prefix space is dropped from the first token only (a leading BOS
    /// consumes that, so `[BOS, "▁Hi"]` gives " Hi"), and vocabularies that ask for it get
    /// llama.cpp's clean-up of spaces before punctuation. Use [`StreamDecoder`] for generated text.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut bytes = Vec::new();
        // The space SentencePiece put in front of the first word is not part of the text.
        let mut strip_space = self.add_space_prefix;
        for &id in ids {
            if id as usize >= self.tokens.len() {
                return Err(err(format!("token id {id} is outside the vocabulary ({} tokens)", self.tokens.len())));
            }
            let piece = self.piece(id, false);
            let piece = match piece {
                [b' ', rest @ ..] if strip_space => rest,
                _ => piece,
            };
            strip_space = false;
            bytes.extend_from_slice(piece);
        }
        if self.clean_spaces {
            bytes = clean_up_spaces(&bytes);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Raw bytes of one token as llama.cpp prints it with special tokens shown: byte-level
    /// characters decoded, "▁" as a space, `<0xAB>` as that byte, control tokens as their text.
    pub fn token_piece(&self, id: u32) -> Vec<u8> {
        self.piece(id, true).to_vec()
    }

    /// Whether `id` is a control token that decodes to no text (`<|im_end|>`; not the
    /// `SHOWN_CONTROL_TEXTS`, which decode as their text).
    pub fn decodes_to_nothing(&self, id: u32) -> bool {
        self.piece(id, false).is_empty() && self.pieces.get(id as usize).is_some_and(|p| !p.is_empty())
    }

    /// The texts of the control tokens (those only parsed with `parse_special`), longest first.
    pub fn control_texts(&self) -> impl Iterator<Item = &str> {
        self.specials
            .iter()
            .filter(|&&id| self.attrs.get(id as usize).is_some_and(|a| a.is_hidden()))
            .filter_map(|&id| self.tokens.get(id as usize).map(String::as_str))
    }

    /// The most bytes of text one token stands for (at least 1).
    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// End-of-generation ids (eos, eot, eom and the tokens llama.cpp recognizes by text), sorted.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The id of the token whose vocabulary string is `text` (a scan: for lookups at load).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.tokens.iter().position(|t| t == text).and_then(|i| u32::try_from(i).ok())
    }

    /// The vocabulary string as stored (empty entries appear as "[EMPTY_<id>]", as in llama.cpp).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    fn piece(&self, id: u32, special: bool) -> &[u8] {
        let i = id as usize;
        let hidden = self.attrs.get(i).is_some_and(|a| a.is_hidden()) && self.shown.binary_search(&id).is_err();
        match self.pieces.get(i) {
            Some(piece) if special || !hidden => piece,
            _ => &[],
        }
    }

    /// Splits special-token texts out of `text` like llama.cpp's `tokenizer_st_partition`:
    /// longest tokens first, each one cut out of the remaining text fragments left to right.
    fn split_specials<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut fragments = Vec::new();
        if !text.is_empty() {
            fragments.push(Fragment::Text(text));
        }
        for &id in &self.specials {
            let i = id as usize;
            let (Some(attr), Some(pattern)) = (self.attrs.get(i), self.tokens.get(i)) else {
                continue;
            };
            if !parse_special && attr.is_hidden() {
                continue;
            }
            let found = fragments.iter().any(|f| matches!(f, Fragment::Text(t) if t.contains(pattern.as_str())));
            if !found {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text(mut rest) = fragment else {
                    next.push(fragment);
                    continue;
                };
                while let Some(pos) = rest.find(pattern.as_str()) {
                    if pos > 0 {
                        next.push(Fragment::Text(&rest[..pos]));
                    }
                    next.push(Fragment::Token(id));
                    rest = &rest[pos + pattern.len()..];
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            fragments = next;
        }
        fragments
    }

    fn encode_text(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let encoding = self.hf.encode_fast(text, false).map_err(|e| err(format!("tokenization failed: {e}")))?;
        out.extend_from_slice(encoding.get_ids());
        Ok(())
    }
}

/// `text` cut into runs of newlines and runs of anything else, in order.
fn newline_runs(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let end = rest.find(|c: char| (c == '\n') != (first == '\n')).unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        rest = tail;
        Some(run)
    })
}

fn check_len<T>(key: &str, values: Option<&[T]>, n: usize) -> Result<()> {
    match values {
        Some(v) if v.len() < n => Err(err(format!("{key} has {} entries for {n} tokens", v.len()))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
