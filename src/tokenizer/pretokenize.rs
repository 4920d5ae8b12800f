//! The pre-tokenizer regexes of each `tokenizer.ggml.pre` value, as llama.cpp defines them.

// Pre-tokenizer regexes, as llama.cpp writes them (its versions differ slightly from the
// tokenizer.json originals, e.g. case-insensitive groups spelled out).
pub(super) const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
pub(super) const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const BAILINGMOE: &str = r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";
pub(super) const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const PORO: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";
pub(super) const DIGIT: &str = r"\p{N}";
pub(super) const CJK: &str = r"[一-龥ࠀ-一가-퟿]+";
pub(super) const DEEPSEEK_LLM_LETTERS: &str = r"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\x{1F7D}ᾀ-ᾴᾶ-ᾼ\x{1FBE}ῂ-ῄῆ-ῌῐ-\x{1FD3}ῖ-\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\x{2126}ℨ\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";

/// `tokenizer.ggml.pre` names of the single-regex byte-level pre-tokenizers, for recognising a
/// tokenizer.json's `Split` regex.
pub(super) const NAMED_REGEXES: &[(&str, &str)] = &[
    ("llama-bpe", LLAMA3),
    ("qwen2", QWEN2),
    ("qwen35", QWEN35),
    ("seed-coder", SEED_CODER),
    ("bailingmoe", BAILINGMOE),
    ("tekken", TEKKEN),
    ("gpt-4o", GPT4O),
];

pub(super) const DEFAULT_SET: &[&str] = &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"];
pub(super) const FALCON_SET: &[&str] = &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"];
pub(super) const DEEPSEEK_LLM_SET: &[&str] =
    &[r"[\r\n]", DEEPSEEK_LLM_LETTERS, r"\s?[!-/:-~！-／：-～‘-‟　-。]+", r"\s+$", CJK, r"\p{N}+"];
pub(super) const DEEPSEEK_CODER_SET: &[&str] = &[r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, DIGIT];
pub(super) const CHAMELEON_SET: &[&str] = &[
    r"<sentinel:[0-9]+>",
    r"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    r"([\t\n]|    |  )",
    DIGIT,
    r"[\p{P}!-/:-@\[-`{-~]",
    GPT2,
];
pub(super) const MINICPM5_SET: &[&str] = &[
    r"\p{N}{1,3}",
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
];

/// How a `tokenizer.ggml.pre` value configures byte-level BPE (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*).
pub(super) struct PreConfig {
    pub(super) regexes: &'static [&'static str],
    pub(super) ignore_merges: bool,
    pub(super) add_bos: bool,
    /// Detokenizer removes spaces before punctuation and some contractions.
    pub(super) clean_spaces: bool,
}

pub(super) fn pre_config(pre: Option<&str>) -> PreConfig {
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
