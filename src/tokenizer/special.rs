//! Which tokens are special: token attributes from `tokenizer.ggml.token_type`, and the
//! texts llama.cpp recognizes as end-of-generation and fill-in-the-middle tokens.

/// Token attribute from `tokenizer.ggml.token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Attr {
    Undefined,
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl Attr {
    pub(super) fn from_type(t: i32) -> Self {
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
    pub(super) fn is_hidden(self) -> bool {
        matches!(self, Attr::Control | Attr::Unknown)
    }

    pub(super) fn is_special(self) -> bool {
        matches!(self, Attr::Control | Attr::Unknown | Attr::UserDefined)
    }
}

/// Token texts llama.cpp treats as end of generation, whatever their type (they become control tokens).
pub(super) const EOG_TEXTS: &[&str] = &[
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

/// Control tokens that still appear in decoded text: the markup of tool calls, which the
/// server reads calls from (as Gemma 4's converter makes its tool tokens user-defined so that
/// parsers see them).
pub(super) const SHOWN_CONTROL_TEXTS: &[&str] = &["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "<|python_tag|>"];

/// Fill-in-the-middle roles llama.cpp detects by text: (texts, ends generation). The first match
/// of each role becomes a control token.
pub(super) const FIM_ROLES: &[(&[&str], bool)] = &[
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

/// Applies llama.cpp's recognition of special tokens by their text: end-of-generation and
/// fill-in-the-middle tokens become control tokens, a few gpt-oss tokens become user-defined.
/// Returns the sorted end-of-generation ids.
pub(super) fn classify_special_texts(tokens: &[String], attrs: &mut [Attr], extra_eog: &[Option<u32>]) -> Vec<u32> {
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
