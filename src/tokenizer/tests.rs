use super::pieces::byte_level_byte;
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
    let mut stream = StreamDecoder::new();
    assert_eq!(stream.push(&tok, u32::from(b'a')), "a");
    assert_eq!(stream.push(&tok, 0xC3), "");
    assert_eq!(stream.push(&tok, 0xA9), "é");
    assert_eq!(stream.push(&tok, 262), "");
    assert_eq!(stream.push(&tok, 0xF0), "");
    assert_eq!(stream.push(&tok, 0x9F), "");
    assert_eq!(stream.finish(), "\u{FFFD}");
    assert_eq!(stream.push(&tok, 0xFF), "\u{FFFD}");
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
    VocabSpec { model: "llama".into(), tokens, scores: Some(scores), token_types: Some(types), ..Default::default() }
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
fn placeholder_vocabularies_decode_ids_and_refuse_text() {
    // llama.cpp's test models: "tok_<i>" entries, no merges.
    let mut spec = spm_spec();
    spec.model = "test".into();
    spec.tokens = (0..8).map(|i| format!("tok_{i}")).collect();
    spec.scores = None;
    spec.token_types = None;
    spec.add_bos = Some(false);
    let tok = Tokenizer::from_vocab(&spec).unwrap();
    assert_eq!(tok.decode(&[5, 2]).unwrap(), "tok_5tok_2");
    let Err(Error::Tokenizer(msg)) = tok.encode("hi", true, false) else { panic!("text must be refused") };
    assert!(msg.contains("placeholder") && msg.contains("--prompt-ids"), "{msg}");
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

#[test]
fn spm_through_tokenizer_json_tokenizes_the_same() {
    let spec = VocabSpec { unk_id: Some(0), bos_id: Some(1), eos_id: Some(2), ..spm_spec() };
    let (json, config) = super::hf_json::write(&spec, None).unwrap();
    let back = super::hf_json::read(&json, Some(&config)).unwrap().spec;
    assert_eq!(
        (back.model.as_str(), &back.token_types, back.add_space_prefix),
        ("llama", &spec.token_types, Some(true))
    );
    let (direct, via_json) = (Tokenizer::from_vocab(&spec).unwrap(), Tokenizer::from_vocab(&back).unwrap());
    for text in ["hello", "hello é", "<s>hello hell lo", "  oh hello</s>"] {
        let ids = direct.encode(text, true, true).unwrap();
        assert_eq!(via_json.encode(text, true, true).unwrap(), ids, "{text:?}");
        assert_eq!(via_json.decode(&ids).unwrap(), direct.decode(&ids).unwrap());
    }
}

#[test]
fn gemma4_vocabulary_tokenizes_as_llama_cpp_does() {
    // A small vocabulary in Gemma 4's format and llama.cpp 0c1e570's ids and text for it
    // (scripts/gemma4_vocab_fixture.py): newline runs whole or not, byte fallback, spaces as "▁",
    // control tokens parsed or taken as text.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemma4_vocab");
    let bytes = std::fs::read(dir.join("vocab.gguf")).unwrap();
    let header = crate::model::gguf::GgufHeader::parse(&bytes, bytes.len() as u64).unwrap();
    let tok = crate::model::vocab::tokenizer(&header).unwrap();
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("vocab.json")).unwrap()).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect()
    };
    for case in reference["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(tok.encode(text, true, true).unwrap(), ids(&case["ids"]), "{text:?} with BOS and specials");
        let plain = ids(&case["plain_ids"]);
        assert_eq!(tok.encode(text, false, false).unwrap(), plain, "{text:?} as plain text");
        assert_eq!(tok.decode(&plain).unwrap(), case["detokenized"].as_str().unwrap(), "{text:?} decoded");
    }
    assert!(tok.is_eog(tok.token_id("<turn|>").unwrap()));
}

#[test]
fn tool_call_markup_stays_in_decoded_text_though_it_is_control() {
    let extra = [("[TOOL_CALLS]", 3), ("[ARGS]", 3), ("<|im_end|>", 3)];
    let tok = Tokenizer::from_vocab(&gpt2_spec("smollm", &extra, &[])).unwrap();
    // Ids 256.. are the extra tokens; 'f' is byte 102.
    assert_eq!(tok.decode(&[256, 102, 257, 258]).unwrap(), "[TOOL_CALLS]f[ARGS]");
    // Still a control token: parsed only with parse_special.
    assert_eq!(tok.encode("[ARGS]", false, true).unwrap(), vec![257]);
    assert_ne!(tok.encode("[ARGS]", false, false).unwrap(), vec![257]);
}
