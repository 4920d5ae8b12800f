//! Tokenizer built from the vocabulary stored in GGUF metadata (`tokenizer.ggml.*`).
//!
//! The BPE merging itself runs in a `tokenizers` pipeline; everything around it (splitting
//! out special tokens, BOS/EOS, the SentencePiece space prefix, detokenization, end-of-generation
//! tokens) follows llama.cpp's `src/llama-vocab.cpp`, so ids match `llama-tokenize` for the same file.

use std::collections::{HashMap, HashSet};

use tokenizers::SplitDelimiterBehavior;
use tokenizers::models::bpe::{BPE, Merges, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};

use crate::{Error, Result};

/// Everything the GGUF metadata says about the vocabulary (keys tokenizer.ggml.*), already extracted by the GGUF reader.
#[derive(Debug, Clone, Default)]
pub struct VocabSpec {
    /// tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE with scores).
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
enum Kind {
    /// "gpt2": byte-level BPE with ranked merges.
    Bpe,
    /// "llama": SentencePiece BPE driven by token scores, with `<0xXX>` byte fallback.
    Spm,
}

/// Token attribute from `tokenizer.ggml.token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    Undefined,
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl Attr {
    fn from_type(t: i32) -> Self {
        match t {
            1 => Attr::Normal,
            2 => Attr::Unknown,
            3 => Attr::Control,
            4 => Attr::UserDefined,
            5 => Attr::Unused,
            6 => Attr::Byte,
            _ => Attr::Undefined,
        }
    }

    /// Control and unknown tokens render as nothing unless special output is requested, and are
    /// only recognized in input text with `parse_special`.
    fn is_hidden(self) -> bool {
        matches!(self, Attr::Control | Attr::Unknown)
    }

    fn is_special(self) -> bool {
        matches!(self, Attr::Control | Attr::Unknown | Attr::UserDefined)
    }
}

/// Token texts llama.cpp treats as end of generation, whatever their type (they become control tokens).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Fill-in-the-middle roles llama.cpp detects by text: (texts, ends generation). The first match
/// of each role becomes a control token.
const FIM_ROLES: &[(&[&str], bool)] = &[
    (
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
        false,
    ),
    (
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
        false,
    ),
    (
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
        false,
    ),
    (&["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"], true),
    (&["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"], true),
    (&["<|file_sep|>"], true),
];

// Pre-tokenizer regexes, as llama.cpp writes them (its versions differ slightly from the
// tokenizer.json originals, e.g. case-insensitive groups spelled out).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";
const BAILINGMOE: &str = r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PORO: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";
const DIGIT: &str = r"\p{N}";
const CJK: &str = r"[一-龥ࠀ-一가-퟿]+";
const DEEPSEEK_LLM_LETTERS: &str = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\x{1F7D}ᾀ-ᾴᾶ-ᾼ\x{1FBE}ῂ-ῄῆ-ῌῐ-\x{1FD3}ῖ-\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\x{2126}ℨ\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";

const DEFAULT_SET: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"];
const FALCON_SET: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"];
const DEEPSEEK_LLM_SET: &[&str] =
    &[r"[\r\n]", DEEPSEEK_LLM_LETTERS, r"\s?[!-/:-~！-／：-～‘-‟　-。]+", r"\s+$", CJK, r"\p{N}+"];
const DEEPSEEK_CODER_SET: &[&str] = &[r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, DIGIT];
const CHAMELEON_SET: &[&str] = &[
    r"<sentinel:[0-9]+>",
    r"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    r"([\t\n]|    |  )",
    DIGIT,
    r"[\p{P}!-/:-@\[-`{-~]",
    GPT2,
];
const MINICPM5_SET: &[&str] = &[
    r"\p{N}{1,3}",
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];

/// How a `tokenizer.ggml.pre` value configures byte-level BPE (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*).
struct PreConfig {
    regexes: &'static [&'static str],
    ignore_merges: bool,
    add_bos: bool,
    /// Detokenizer removes spaces before punctuation and some contractions.
    clean_spaces: bool,
}

fn pre_config(pre: Option<&str>) -> PreConfig {
    let plain = |regexes, clean_spaces| PreConfig { regexes, ignore_merges: false, add_bos: false, clean_spaces };
    let Some(name) = pre else {
        log::warn!("GGUF has no tokenizer.ggml.pre; using the 'default' pre-tokenizer");
        return plain(DEFAULT_SET, true);
    };
    match name {
        "default" => plain(DEFAULT_SET, true),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        | "jina-v5-nano" => PreConfig { regexes: &[LLAMA3], ignore_merges: true, add_bos: true, clean_spaces: true },
        "dbrx" | "smaug-bpe" | "glm4" | "chatglm-bpe" => plain(&[LLAMA3], true),
        "deepseek-llm" => plain(DEEPSEEK_LLM_SET, false),
        "deepseek-coder" => plain(DEEPSEEK_CODER_SET, false),
        "falcon" => plain(FALCON_SET, true),
        "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => plain(&[DIGIT, GPT2], true),
        "command-r" | "smollm" => plain(&[DIGIT, GPT2], false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0" | "mellum"
        | "modern-bert" | "mpt" | "olmo" | "jais" | "roberta-bpe" | "jina-v1-en" | "jina-v2-code" | "exaone4" => {
            plain(&[GPT2], true)
        }
        "trillion" | "granite-docling" => plain(&[GPT2], false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" | "grok-2" => {
            plain(&[QWEN2], false)
        }
        "stablelm2" | "megrez" => plain(&[QWEN2], true),
        "qwen35" => plain(&[QWEN35], false),
        "seed-coder" => plain(&[SEED_CODER], false),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => plain(&[BAILINGMOE], false),
        "poro-chat" => plain(&[PORO], false),
        "bloom" | "gpt3-finnish" => plain(&[PORO], true),
        "viking" => plain(&[PORO, DIGIT], false),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => plain(&[GPT4O], false),
        "tekken" => PreConfig { regexes: &[TEKKEN], ignore_merges: true, add_bos: true, clean_spaces: false },
        "chameleon" => PreConfig { regexes: CHAMELEON_SET, ignore_merges: false, add_bos: true, clean_spaces: false },
        "minicpm5" => PreConfig { regexes: MINICPM5_SET, ignore_merges: true, add_bos: false, clean_spaces: true },
        other => {
            log::warn!("unknown tokenizer.ggml.pre '{other}'; falling back to the GPT-2 pre-tokenizer");
            plain(&[GPT2], true)
        }
    }
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
            other => {
                return Err(err(format!(
                    "unsupported tokenizer model '{other}' (tokenizer.ggml.model); \
                     supported: 'gpt2' (byte-level BPE) and 'llama' (SentencePiece)"
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
        };
        let add_bos = spec.add_bos.unwrap_or(pre.add_bos);
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

        let merges = match kind {
            Kind::Bpe => {
                let merges = spec
                    .merges
                    .as_deref()
                    .ok_or_else(|| err("gpt2 vocabulary without merges (tokenizer.ggml.merges missing)"))?;
                ranked_merges(merges, &ids)
            }
            Kind::Spm => {
                let scores = spec.scores.as_deref().unwrap_or(&[]);
                score_merges(&tokens, scores, &ids)
            }
        };
        let unk_text = match kind {
            Kind::Spm => unk.and_then(|id| tokens.get(id as usize)).cloned(),
            Kind::Bpe => None,
        };
        let hf = build_hf(kind, &tokens, merges, unk_text, &pre)?;

        Ok(Tokenizer {
            kind,
            hf,
            tokens,
            attrs,
            pieces,
            specials,
            eog,
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
                        Kind::Bpe => self.encode_text(t, &mut out)?,
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

    /// The vocabulary string as stored (empty entries appear as "[EMPTY_<id>]", as in llama.cpp).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    fn piece(&self, id: u32, special: bool) -> &[u8] {
        let i = id as usize;
        let hidden = self.attrs.get(i).is_some_and(|a| a.is_hidden());
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

fn check_len<T>(key: &str, values: Option<&[T]>, n: usize) -> Result<()> {
    match values {
        Some(v) if v.len() < n => Err(err(format!("{key} has {} entries for {n} tokens", v.len()))),
        _ => Ok(()),
    }
}

/// Applies llama.cpp's recognition of special tokens by their text: end-of-generation and
/// fill-in-the-middle tokens become control tokens, a few gpt-oss tokens become user-defined.
/// Returns the sorted end-of-generation ids.
fn classify_special_texts(tokens: &[String], attrs: &mut [Attr], extra_eog: &[Option<u32>]) -> Vec<u32> {
    let mut eog = Vec::new();
    let id_of = |i: usize| u32::try_from(i).ok();
    for &(texts, ends_generation) in FIM_ROLES {
        if let Some(i) = tokens.iter().position(|t| texts.contains(&t.as_str())) {
            attrs[i] = Attr::Control;
            if ends_generation {
                eog.extend(id_of(i));
            }
        }
    }
    for (i, t) in tokens.iter().enumerate() {
        if EOG_TEXTS.contains(&t.as_str()) {
            attrs[i] = Attr::Control;
            eog.extend(id_of(i));
        }
        if ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"].contains(&t.as_str()) {
            attrs[i] = Attr::UserDefined;
        }
    }
    eog.extend(extra_eog.iter().flatten());
    eog.sort_unstable();
    eog.dedup();

    let text = |id: &u32| tokens.get(*id as usize).map_or("", String::as_str);
    let has = |s: &str| eog.iter().any(|id| text(id) == s);
    // gpt-oss / solar-open: "<|end|>" ends a message there, not the generation.
    let end_is_not_eog = (has("<|call|>") || has("<|calls|>")) && (has("<|return|>") || has("<|flush|>"));
    // gemma4 / paddleocr: "</s>" is an ordinary token there.
    let eos_is_not_eog = has("<|tool_response>");
    let mut demote = |demoted: &str, attr: Attr| {
        if let Some(pos) = eog.iter().position(|id| text(id) == demoted) {
            let id = eog.remove(pos);
            attrs[id as usize] = attr;
        }
    };
    if end_is_not_eog {
        demote("<|end|>", Attr::UserDefined);
    }
    if eos_is_not_eog {
        demote("</s>", Attr::Normal);
    }
    eog
}

fn render_piece(kind: Kind, text: &str, attr: Attr) -> Box<[u8]> {
    match attr {
        Attr::Control | Attr::Unknown | Attr::UserDefined => text.as_bytes().into(),
        Attr::Normal => match kind {
            Kind::Spm => text.replace('▁', " ").into_bytes().into(),
            Kind::Bpe => byte_level_decode(text),
        },
        Attr::Byte => parse_byte_token(text).map_or_else(|| Box::from([]), |b| Box::from([b])),
        Attr::Unused | Attr::Undefined => Box::from([]),
    }
}

/// `<0xAB>` -> 0xAB
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Maps a byte-level BPE character back to its byte (inverse of GPT-2's bytes_to_unicode):
/// printable Latin-1 bytes stand for themselves, the other 68 bytes were shifted, in order, to U+0100..U+0143.
fn byte_level_byte(c: char) -> Option<u8> {
    let cp = u32::from(c);
    let byte = match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => cp,
        0x100..=0x120 => cp - 0x100,
        0x121..=0x142 => cp - 0x121 + 0x7F,
        0x143 => 0xAD,
        _ => return None,
    };
    u8::try_from(byte).ok()
}

fn byte_level_decode(text: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match byte_level_byte(c) {
            Some(b) => out.push(b),
            // Not a byte-level character (llama.cpp prints a marker); keep its UTF-8 instead.
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.into()
}

/// gpt2 merges "a b" in rank order, dropping those HF's BPE cannot represent (parts or result not
/// in the vocabulary) and repeats (llama.cpp keeps the first rank).
fn ranked_merges(merges: &[String], ids: &HashMap<&str, u32>) -> Merges {
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
fn score_merges(tokens: &[String], scores: &[f32], ids: &HashMap<&str, u32>) -> Merges {
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

fn build_hf(
    kind: Kind,
    tokens: &[String],
    merges: Merges,
    unk: Option<String>,
    pre: &PreConfig,
) -> Result<tokenizers::Tokenizer> {
    let vocab: Vocab = tokens.iter().cloned().zip(0u32..).collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(kind == Kind::Spm)
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

/// llama.cpp's clean_up_tokenization_spaces: " ?" " !" " ." " ," lose the space, a lone
/// apostrophe between spaces loses both, and " 's" " 'm" " 're" " 've" lose the space.
fn clean_up_spaces(text: &[u8]) -> Vec<u8> {
    let mut pass1 = Vec::with_capacity(text.len());
    let mut prev = None;
    for &c in text {
        if prev == Some(b' ') && matches!(c, b'?' | b'!' | b'.' | b',') {
            pass1.pop();
        }
        pass1.push(c);
        prev = Some(c);
    }

    let mut pass2 = Vec::with_capacity(pass1.len());
    let mut prev_space = false;
    let mut i = 0;
    while let Some(&c) = pass1.get(i) {
        if c == b'\'' && prev_space && pass1.get(i + 1) == Some(&b' ') {
            pass2.pop();
            pass2.push(c);
            // The space after it is dropped and does not count as a preceding space.
            prev_space = false;
            i += 2;
            continue;
        }
        pass2.push(c);
        prev_space = c == b' ';
        i += 1;
    }

    let mut pass3 = Vec::with_capacity(pass2.len());
    for (i, &c) in pass2.iter().enumerate() {
        let after_space = i > 0 && pass2.get(i - 1) == Some(&b' ');
        if c == b'\'' && after_space {
            let next = pass2.get(i + 1..).unwrap_or(&[]);
            if matches!(next, [b's' | b'm', ..] | [b'r' | b'v', b'e', ..]) {
                pass3.pop();
            }
        }
        pass3.push(c);
    }
    pass3
}

/// Streaming detokenizer: feed ids one at a time and get back the newly completed UTF-8 text;
/// incomplete multi-byte sequences are held back until the bytes that complete them arrive.
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    pub fn new(tok: &'a Tokenizer) -> Self {
        StreamDecoder { tok, pending: Vec::new() }
    }

    /// Text completed by `id` (control tokens add nothing; unknown ids are ignored).
    pub fn push(&mut self, id: u32) -> String {
        self.pending.extend_from_slice(self.tok.piece(id, false));
        self.take_complete()
    }

    /// Whatever is still held back, with incomplete sequences replaced by U+FFFD.
    pub fn finish(&mut self) -> String {
        let mut out = self.take_complete();
        if !self.pending.is_empty() {
            out.push_str(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
        out
    }

    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forward GPT-2 byte-level mapping, for building test vocabularies.
    fn byte_char(b: u8) -> char {
        (0..=0x143u32).filter_map(char::from_u32).find(|&c| byte_level_byte(c) == Some(b)).unwrap()
    }

    /// Byte-level vocab: ids 0..=255 are the bytes, then the given extra tokens.
    fn gpt2_spec(pre: &str, extra: &[(&str, i32)], merges: &[&str]) -> VocabSpec {
        let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
        let mut types = vec![1; 256];
        for (t, ty) in extra {
            tokens.push(t.to_string());
            types.push(*ty);
        }
        VocabSpec {
            model: "gpt2".into(),
            pre: Some(pre.into()),
            tokens,
            token_types: Some(types),
            merges: Some(merges.iter().map(|m| m.to_string()).collect()),
            // llama3-style pre-tokenizers add BOS by default, which needs an id.
            bos_id: Some(255),
            ..Default::default()
        }
    }

    const EXTRA: &[(&str, i32)] = &[
        ("Ġt", 1),            // 256
        ("he", 1),            // 257
        ("the", 1),           // 258
        ("Ġthe", 1),          // 259
        ("31", 1),            // 260
        ("311", 1),           // 261
        ("<|im_start|>", 3),  // 262
        ("<|im_end|>", 3),    // 263
        ("<|endoftext|>", 3), // 264
    ];
    const MERGES: &[&str] = &["Ġ t", "h e", "t he", "Ġt he", "3 1", "31 1"];

    fn gpt2(pre: &str) -> Tokenizer {
        Tokenizer::from_vocab(&gpt2_spec(pre, EXTRA, MERGES)).unwrap()
    }

    fn bytes_of(s: &str) -> Vec<u32> {
        s.bytes().map(u32::from).collect()
    }

    #[test]
    fn gpt2_merges() {
        let tok = gpt2("smollm");
        assert_eq!(tok.encode("the the", false, false).unwrap(), vec![258, 259]);
        assert_eq!(tok.decode(&[258, 259]).unwrap(), "the the");
        assert_eq!(tok.vocab_size(), 265);
        assert_eq!(tok.token_text(259), Some("Ġthe"));
        assert_eq!(tok.token_piece(259), b" the");
    }

    #[test]
    fn digits_depend_on_pre_tokenizer() {
        assert_eq!(gpt2("smollm").encode("311", false, false).unwrap(), bytes_of("311"));
        assert_eq!(gpt2("default").encode("311", false, false).unwrap(), vec![261]);
        assert_eq!(gpt2("gpt-2").encode("311", false, false).unwrap(), vec![261]);
        // " 2" after the digit split: "Ġ" alone, then "2" (SmolLM2's [33, 28, 216, 34, ...] shape).
        assert_eq!(gpt2("smollm").encode("1, 2,", false, false).unwrap(), bytes_of("1, 2,"));
        // llama3 groups up to three digits.
        assert_eq!(gpt2("llama-bpe").encode("3113", false, false).unwrap(), vec![261, 51]);
    }

    #[test]
    fn special_tokens_only_with_parse_special() {
        let tok = gpt2("smollm");
        let text = "<|im_start|>the";
        assert_eq!(tok.encode(text, false, true).unwrap(), vec![262, 258]);
        let mut plain = bytes_of("<|im_start|>");
        plain.push(258);
        assert_eq!(tok.encode(text, false, false).unwrap(), plain);
        // Control tokens decode to nothing but keep their text as pieces.
        assert_eq!(tok.decode(&[262, 258, 263]).unwrap(), "the");
        assert_eq!(tok.token_piece(262), b"<|im_start|>");
        assert_eq!(tok.decode(&plain).unwrap(), text);
    }

    #[test]
    fn gpt2_bos_and_eog() {
        let mut spec = gpt2_spec("smollm", EXTRA, MERGES);
        spec.bos_id = Some(262);
        spec.eos_id = Some(263);
        let tok = Tokenizer::from_vocab(&spec).unwrap();
        // gpt2 vocabularies get no BOS unless the file asks for it.
        assert_eq!(tok.encode("the", true, false).unwrap(), vec![258]);
        assert_eq!(tok.eog_ids(), &[263, 264]);
        assert!(tok.is_eog(264) && !tok.is_eog(262));

        spec.add_bos = Some(true);
        let tok = Tokenizer::from_vocab(&spec).unwrap();
        assert_eq!(tok.encode("the", true, false).unwrap(), vec![262, 258]);
        assert_eq!(tok.encode("the", false, false).unwrap(), vec![258]);
        assert_eq!(tok.bos_id(), Some(262));
        assert_eq!(tok.eos_id(), Some(263));

        spec.bos_id = None;
        assert!(Tokenizer::from_vocab(&spec).is_err());
    }

    #[test]
    fn all_known_pre_tokenizers_build() {
        for pre in [
            "default",
            "gpt-2",
            "smollm",
            "llama3",
            "llama-bpe",
            "qwen2",
            "deepseek-llm",
            "deepseek-coder",
            "falcon",
            "starcoder",
            "refact",
            "command-r",
            "olmo",
            "dbrx",
            "smaug-bpe",
            "poro-chat",
            "chatglm-bpe",
            "viking",
            "jais",
            "tekken",
            "gpt-4o",
            "bloom",
            "gpt3-finnish",
            "exaone",
            "chameleon",
            "minerva-7b",
            "roberta-bpe",
            "stablelm2",
            "qwen35",
            "seed-coder",
            "bailingmoe",
            "minicpm5",
            "not-a-known-pre",
        ] {
            let tok = Tokenizer::from_vocab(&gpt2_spec(pre, EXTRA, MERGES)).unwrap();
            let text = "Hello, World! It's 2024: naïve café 東京 ~~ <x>\n\n  end ";
            let ids = tok.encode(text, false, false).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), text, "{pre}");
        }
    }

    #[test]
    fn deepseek_llm_letter_class() {
        let tok = gpt2("deepseek-llm");
        // "\s?[letters]+" keeps " the" together; digits and CJK are split off.
        assert_eq!(tok.encode(" the12", false, false).unwrap(), vec![259, 49, 50]);
    }

    #[test]
    fn stream_decoder_holds_partial_utf8() {
        let tok = gpt2("smollm");
        let mut stream = StreamDecoder::new(&tok);
        assert_eq!(stream.push(u32::from(b'a')), "a");
        assert_eq!(stream.push(0xC3), "");
        assert_eq!(stream.push(0xA9), "é");
        assert_eq!(stream.push(262), "");
        assert_eq!(stream.push(0xF0), "");
        assert_eq!(stream.push(0x9F), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
        assert_eq!(stream.push(0xFF), "\u{FFFD}");
        assert_eq!(stream.finish(), "");
    }

    #[test]
    fn tokenizer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Tokenizer>();
    }

    #[test]
    fn clean_spaces_like_llama_cpp() {
        assert_eq!(clean_up_spaces(b"a , b . c ' d it 's we 're x 't"), b"a, b. c'd it's we're x 't");
    }

    fn spm_spec() -> VocabSpec {
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, 3, 3];
        let mut scores = vec![0.0, 0.0, 0.0];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
            scores.push(0.0);
        }
        for (t, s) in [
            ("▁", -5.0),      // 259
            ("▁h", -1.0),     // 260
            ("▁he", -1.5),    // 261
            ("ll", -2.0),     // 262
            ("o", -10.0),     // 263
            ("▁hello", -0.5), // 264
            ("h", -10.0),     // 265
            ("e", -10.0),     // 266
            ("l", -10.0),     // 267
            ("lo", -3.0),     // 268
            ("▁hell", -2.5),  // 269
        ] {
            tokens.push(t.into());
            types.push(1);
            scores.push(s);
        }
        VocabSpec {
            model: "llama".into(),
            tokens,
            scores: Some(scores),
            token_types: Some(types),
            ..Default::default()
        }
    }

    #[test]
    fn spm_merges_by_score() {
        let tok = Tokenizer::from_vocab(&spm_spec()).unwrap();
        assert_eq!(tok.encode("hello", false, false).unwrap(), vec![264]);
        // SentencePiece vocabularies add BOS by default (id 1 unless the file says otherwise).
        assert_eq!(tok.encode("hello", true, false).unwrap(), vec![1, 264]);
        assert_eq!(tok.decode(&[264]).unwrap(), "hello");
        assert_eq!(tok.token_piece(264), b" hello");
        assert_eq!(tok.eog_ids(), &[2]);
    }

    #[test]
    fn spm_byte_fallback_and_specials() {
        let tok = Tokenizer::from_vocab(&spm_spec()).unwrap();
        let ids = tok.encode("hello é", false, false).unwrap();
        assert_eq!(ids, vec![264, 259, 3 + 0xC3, 3 + 0xA9]);
        assert_eq!(tok.decode(&ids).unwrap(), "hello é");
        assert_eq!(tok.token_piece(3 + 0xC3), vec![0xC3]);
        // After a special token the text gets the dummy space prefix again.
        assert_eq!(tok.encode("<s>hello", false, true).unwrap(), vec![1, 264]);
        assert_eq!(tok.encode("hello</s>", false, true).unwrap(), vec![264, 2]);
        assert_eq!(tok.decode(&[264, 2]).unwrap(), "hello");
    }

    #[test]
    fn spm_without_space_prefix() {
        let mut spec = spm_spec();
        spec.add_space_prefix = Some(false);
        let tok = Tokenizer::from_vocab(&spec).unwrap();
        assert_eq!(tok.encode("hello", false, false).unwrap(), vec![265, 266, 262, 263]);
        assert_eq!(tok.encode(" hello", false, false).unwrap(), vec![264]);
        assert_eq!(tok.decode(&[264]).unwrap(), " hello");
    }

    #[test]
    fn clear_errors() {
        let mut spec = spm_spec();
        spec.model = "bert".into();
        let Err(Error::Tokenizer(msg)) = Tokenizer::from_vocab(&spec) else { panic!("bert must be rejected") };
        assert!(msg.contains("'bert'"), "{msg}");

        let mut spec = spm_spec();
        spec.tokens.clear();
        assert!(matches!(Tokenizer::from_vocab(&spec), Err(Error::Tokenizer(_))));

        let mut spec = gpt2_spec("smollm", EXTRA, MERGES);
        spec.merges = None;
        assert!(matches!(Tokenizer::from_vocab(&spec), Err(Error::Tokenizer(_))));

        let mut spec = spm_spec();
        spec.scores.as_mut().unwrap().truncate(5);
        assert!(matches!(Tokenizer::from_vocab(&spec), Err(Error::Tokenizer(_))));

        let tok = Tokenizer::from_vocab(&spm_spec()).unwrap();
        assert!(tok.decode(&[100_000]).is_err());
        assert!(tok.token_piece(100_000).is_empty());
    }

    #[test]
    fn eog_by_text_and_fim() {
        let extra = [
            ("<|im_end|>", 1),     // 256: normal type, still EOG and made control
            ("<reponame>", 4),     // 257: FIM repo token ends generation in llama.cpp
            ("<|fim_prefix|>", 1), // 258: FIM prefix: control, not EOG
        ];
        let mut spec = gpt2_spec("smollm", &extra, &[]);
        spec.eot_id = Some(65);
        let tok = Tokenizer::from_vocab(&spec).unwrap();
        assert_eq!(tok.eog_ids(), &[65, 256, 257]);
        assert_eq!(tok.encode("<|fim_prefix|>", false, true).unwrap(), vec![258]);
        assert_eq!(tok.decode(&[256, 258]).unwrap(), "");
    }
}
