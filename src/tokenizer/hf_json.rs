//! A Hugging Face tokenizer.json (with tokenizer_config.json beside it) read into the same
//! `VocabSpec` a GGUF file gives, the way llama.cpp's converter reads it: vocabulary and added
//! tokens by id, merges in rank order, the pre-tokenizer recognised by its regexes, BOS/EOS and
//! the chat template from tokenizer_config.json.

use super::pretokenize::NAMED_REGEXES;
use super::{VocabSpec, err};
use crate::Result;
use serde_json::Value as Json;

/// Token types as GGUF numbers them.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

const UNKNOWN: i32 = 2;
const BYTE: i32 = 6;

/// SentencePiece's space marker.
const SPACE: &str = "\u{2581}";

/// What tokenizer_config.json adds to tokenizer.json.
#[derive(Debug, Default)]
pub struct HfTokenizer {
    pub spec: VocabSpec,
    pub chat_template: Option<String>,
}

pub fn read(tokenizer_json: &str, tokenizer_config: Option<&str>) -> Result<HfTokenizer> {
    let json: Json = serde_json::from_str(tokenizer_json).map_err(|e| err(format!("tokenizer.json: {e}")))?;
    let config: Json = match tokenizer_config {
        Some(text) => serde_json::from_str(text).map_err(|e| err(format!("tokenizer_config.json: {e}")))?,
        None => Json::Null,
    };
    let model = &json["model"];
    if model["type"].as_str() != Some("BPE") {
        return Err(err(format!("tokenizer.json: model type {} is not supported (BPE only)", model["type"])));
    }
    // SentencePiece vocabularies converted to tokenizer.json fall back to <0xXX> byte tokens.
    let sentencepiece = model["byte_fallback"].as_bool() == Some(true);
    let (tokens, mut token_types) = vocabulary(&json)?;
    let merges = merges(&model["merges"])?;
    let pre = if sentencepiece {
        None
    } else {
        Some(pre_name(&json["pre_tokenizer"], config["clean_up_tokenization_spaces"].as_bool().unwrap_or(false))?)
    };
    if sentencepiece {
        let unk = model["unk_token"].as_str();
        for (text, ty) in tokens.iter().zip(token_types.iter_mut()) {
            if *ty == NORMAL && is_byte_token(text) {
                *ty = BYTE;
            } else if *ty != CONTROL && Some(text.as_str()) == unk {
                *ty = UNKNOWN;
            }
        }
    }

    let id_of_text = |text: &str| tokens.iter().position(|t| t == text).and_then(|i| u32::try_from(i).ok());
    // tokenizer_config.json names special tokens as text or as {"content": text, ...}.
    let id_of = |key: &str| -> Option<u32> {
        let v = &config[key];
        id_of_text(v.as_str().or(v["content"].as_str())?)
    };
    let add_bos = config["add_bos_token"].as_bool().or_else(|| adds_bos(&json["post_processor"]));
    let spec = VocabSpec {
        model: if sentencepiece { "llama" } else { "gpt2" }.into(),
        pre: pre.map(str::to_string),
        add_space_prefix: sentencepiece.then(|| prepends_space(&json)),
        scores: None,
        merges: Some(merges),
        bos_id: id_of("bos_token"),
        eos_id: id_of("eos_token"),
        unk_id: id_of("unk_token").or_else(|| id_of_text(model["unk_token"].as_str()?)),
        pad_id: id_of("pad_token"),
        add_bos,
        add_eos: config["add_eos_token"].as_bool(),
        token_types: Some(token_types),
        tokens,
        ..VocabSpec::default()
    };
    Ok(HfTokenizer { spec, chat_template: chat_template(&config["chat_template"]) })
}

/// Tokens by id: the model's vocabulary and the added tokens, with no id left unassigned.
fn vocabulary(json: &Json) -> Result<(Vec<String>, Vec<i32>)> {
    let vocab = json["model"]["vocab"].as_object().ok_or_else(|| err("tokenizer.json: model.vocab is not a map"))?;
    let added = json["added_tokens"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut entries: Vec<(u64, String, i32)> = Vec::with_capacity(vocab.len() + added.len());
    for (text, id) in vocab {
        let id = id.as_u64().ok_or_else(|| err(format!("tokenizer.json: token {text:?} has id {id}")))?;
        entries.push((id, text.clone(), NORMAL));
    }
    for a in added {
        let (Some(id), Some(text)) = (a["id"].as_u64(), a["content"].as_str()) else {
            return Err(err(format!("tokenizer.json: added token {a} lacks an id or content")));
        };
        let ty = if a["special"].as_bool() == Some(true) { CONTROL } else { USER_DEFINED };
        entries.push((id, text.to_string(), ty));
    }
    // Ids past the entries' count would leave holes; a count bounds the allocation below.
    let n = entries.len();
    let mut tokens: Vec<Option<(String, i32)>> = vec![None; n];
    for (id, text, ty) in entries {
        let slot = usize::try_from(id)
            .ok()
            .and_then(|i| tokens.get_mut(i))
            .ok_or_else(|| err(format!("tokenizer.json: token {text:?} has id {id}, beyond the {n} tokens defined")))?;
        // An added token may repeat a vocabulary entry; the added one's type wins.
        match slot {
            Some((existing, _)) if *existing != text => {
                return Err(err(format!("tokenizer.json: id {id} is both {existing:?} and {text:?}")));
            }
            _ => *slot = Some((text, ty)),
        }
    }
    let mut texts = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    for (i, t) in tokens.into_iter().enumerate() {
        match t {
            Some((text, ty)) => {
                texts.push(text);
                types.push(ty);
            }
            // Repeats in the vocabulary leave the last ids unassigned.
            None => return Err(err(format!("tokenizer.json: no token has id {i}"))),
        }
    }
    Ok((texts, types))
}

/// `<0xXX>`: a byte-fallback token.
fn is_byte_token(text: &str) -> bool {
    text.len() == 6 && text.starts_with("<0x") && text.ends_with('>') && u8::from_str_radix(&text[3..5], 16).is_ok()
}

/// Whether the normalizer or pre-tokenizer adds SentencePiece's leading space marker.
fn prepends_space(json: &Json) -> bool {
    let steps = |v: &Json| -> Vec<Json> {
        match v["type"].as_str() {
            Some("Sequence") => {
                v["normalizers"].as_array().or(v["pretokenizers"].as_array()).cloned().unwrap_or_default()
            }
            Some(_) => vec![v.clone()],
            None => vec![],
        }
    };
    let prepend = steps(&json["normalizer"]).iter().any(|n| n["type"] == "Prepend" && n["prepend"] == SPACE);
    let metaspace = steps(&json["pre_tokenizer"])
        .iter()
        .any(|p| p["type"] == "Metaspace" && p["prepend_scheme"].as_str().unwrap_or("always") != "never");
    prepend || metaspace
}

/// Merges as "a b" strings, from either spelling tokenizer.json uses.
fn merges(json: &Json) -> Result<Vec<String>> {
    let items = json.as_array().ok_or_else(|| err("tokenizer.json: model.merges is missing"))?;
    items
        .iter()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(pair) => match pair.as_slice() {
                [Json::String(a), Json::String(b)] => Ok(format!("{a} {b}")),
                _ => Err(err(format!("tokenizer.json: merge {m} is not a pair of strings"))),
            },
            other => Err(err(format!("tokenizer.json: merge {other} is not a string or pair"))),
        })
        .collect()
}

/// The `tokenizer.ggml.pre` name whose pre-tokenizer this is.
fn pre_name(json: &Json, clean_spaces: bool) -> Result<&'static str> {
    let steps: Vec<&Json> = match json["type"].as_str() {
        Some("Sequence") => json["pretokenizers"].as_array().map(|a| a.iter().collect()).unwrap_or_default(),
        Some(_) => vec![json],
        None => vec![],
    };
    let kinds: Vec<&str> = steps.iter().map(|s| s["type"].as_str().unwrap_or("")).collect();
    let byte_level_regex = |s: &Json| s["use_regex"].as_bool().unwrap_or(true);
    match (kinds.as_slice(), steps.as_slice()) {
        (["ByteLevel"], [b]) if byte_level_regex(b) => Ok("gpt-2"),
        (["Digits", "ByteLevel"], [d, b]) if d["individual_digits"].as_bool() == Some(true) && byte_level_regex(b) => {
            // The two differ only in how the detokenizer treats spaces.
            Ok(if clean_spaces { "starcoder" } else { "smollm" })
        }
        (["Split", "ByteLevel"], [s, b]) if !byte_level_regex(b) => {
            let regex = s["pattern"]["Regex"].as_str().unwrap_or("");
            let spelled = regex.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", CONTRACTIONS);
            NAMED_REGEXES.iter().find(|(_, r)| *r == spelled).map(|(name, _)| *name).ok_or_else(|| {
                err(format!("tokenizer.json: the pre-tokenizer regex {regex:?} is not one hearth knows"))
            })
        }
        _ => Err(err(format!("tokenizer.json: pre-tokenizer {json} is not one hearth knows"))),
    }
}

/// The case-insensitive contractions group, as llama.cpp spells it out.
const CONTRACTIONS: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/// Whether the post-processor puts a special token before a single sequence (BOS).
fn adds_bos(json: &Json) -> Option<bool> {
    let template = match json["type"].as_str()? {
        "TemplateProcessing" => json,
        "Sequence" => json["processors"].as_array()?.iter().find(|p| p["type"] == "TemplateProcessing")?,
        _ => return None,
    };
    Some(template["single"].as_array()?.first()?.get("SpecialToken").is_some())
}

/// The default chat template: a string, or the one named "default" in a list of named ones.
fn chat_template(json: &Json) -> Option<String> {
    match json {
        Json::String(s) => Some(s.clone()),
        Json::Array(named) => named
            .iter()
            .find(|t| t["name"] == "default")
            .or(named.first())
            .and_then(|t| t["template"].as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// tokenizer.json and tokenizer_config.json describing `spec` (the inverse of `read`, for
/// byte-level vocabularies): for writing test folders from GGUF files.
pub fn write(spec: &VocabSpec, chat_template: Option<&str>) -> Result<(String, String)> {
    match spec.model.as_str() {
        "gpt2" => {}
        "llama" => return write_sentencepiece(spec, chat_template),
        other => return Err(err(format!("writing tokenizer.json for a {other:?} vocabulary is not supported"))),
    }
    let pre = spec.pre.as_deref().unwrap_or("gpt-2");
    let byte_level = |use_regex: bool| serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let pre_tokenizer = match pre {
        "gpt-2" => byte_level(true),
        "smollm" | "starcoder" => serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        name => {
            let regex = NAMED_REGEXES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, r)| r.replace(CONTRACTIONS, "(?i:'s|'t|'re|'ve|'m|'ll|'d)"))
                .ok_or_else(|| err(format!("writing the pre-tokenizer {name:?} is not supported")))?;
            serde_json::json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
                byte_level(false)]})
        }
    };
    let (vocab, added) = split_added(spec);
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": spec.merges.as_deref().unwrap_or(&[])},
    });
    let json = serde_json::to_string_pretty(&tokenizer).map_err(|e| err(e.to_string()))?;
    Ok((json, tokenizer_config(spec, chat_template, pre == "starcoder")?))
}

/// tokenizer.json of a SentencePiece vocabulary: byte-fallback BPE whose merges are the ones
/// the scores imply, spaces as "▁", and the leading one prepended if the vocabulary asks.
fn write_sentencepiece(spec: &VocabSpec, chat_template: Option<&str>) -> Result<(String, String)> {
    let ids: std::collections::HashMap<&str, u32> = spec.tokens.iter().map(String::as_str).zip(0u32..).collect();
    let merges: Vec<String> = super::merges::score_merges(&spec.tokens, spec.scores.as_deref().unwrap_or(&[]), &ids)
        .into_iter()
        .map(|(a, b)| format!("{a} {b}"))
        .collect();
    let replace = serde_json::json!({"type": "Replace", "pattern": {"String": " "}, "content": SPACE});
    let normalizer = if spec.add_space_prefix.unwrap_or(true) {
        serde_json::json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": SPACE}, replace]})
    } else {
        replace
    };
    let (vocab, added) = split_added(spec);
    let unk = spec.unk_id.and_then(|i| spec.tokens.get(i as usize));
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": unk, "fuse_unk": true, "byte_fallback": true,
                  "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    let json = serde_json::to_string(&tokenizer).map_err(|e| err(e.to_string()))?;
    Ok((json, tokenizer_config(spec, chat_template, false)?))
}

/// The vocabulary map and the added (control and user-defined) tokens of tokenizer.json.
fn split_added(spec: &VocabSpec) -> (serde_json::Map<String, Json>, Vec<Json>) {
    let types = spec.token_types.as_deref().unwrap_or(&[]);
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, text) in spec.tokens.iter().enumerate() {
        match types.get(id).copied().unwrap_or(NORMAL) {
            ty @ (CONTROL | USER_DEFINED) => added.push(serde_json::json!({
                "id": id, "content": text, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": ty == CONTROL})),
            _ => {
                vocab.insert(text.clone(), id.into());
            }
        }
    }
    (vocab, added)
}

fn tokenizer_config(spec: &VocabSpec, chat_template: Option<&str>, clean_spaces: bool) -> Result<String> {
    let text = |id: Option<u32>| id.and_then(|i| spec.tokens.get(i as usize)).cloned();
    let mut config = serde_json::json!({
        "clean_up_tokenization_spaces": clean_spaces,
        "bos_token": text(spec.bos_id),
        "eos_token": text(spec.eos_id),
        "unk_token": text(spec.unk_id),
        "pad_token": text(spec.pad_id),
        "chat_template": chat_template,
    });
    if let Some(add) = spec.add_bos {
        config["add_bos_token"] = add.into();
    }
    serde_json::to_string_pretty(&config).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Tokenizer;

    fn tokenizer_json(pre: &str) -> String {
        format!(
            r#"{{"added_tokens": [{{"id": 5, "content": "<|im_end|>", "special": true}}],
               "pre_tokenizer": {pre},
               "post_processor": null,
               "model": {{"type": "BPE", "vocab": {{"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}},
                          "merges": ["a b", ["Ġ", "ab"]]}}}}"#
        )
    }

    const SMOLLM_PRE: &str = r#"{"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": true},
        {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]}"#;

    #[test]
    fn a_byte_level_tokenizer_json_becomes_a_vocabulary() {
        let config = r#"{"eos_token": {"content": "<|im_end|>"}, "chat_template": [{"name": "tool", "template": "T"},
            {"name": "default", "template": "D"}]}"#;
        let hf = read(&tokenizer_json(SMOLLM_PRE), Some(config)).unwrap();
        assert_eq!(hf.spec.tokens, ["a", "b", "ab", "Ġ", "Ġab", "<|im_end|>"]);
        assert_eq!(hf.spec.token_types.as_deref(), Some(&[1, 1, 1, 1, 1, 3][..]));
        assert_eq!(hf.spec.merges.as_deref(), Some(&["a b".to_string(), "Ġ ab".to_string()][..]));
        assert_eq!((hf.spec.pre.as_deref(), hf.spec.eos_id), (Some("smollm"), Some(5)));
        assert_eq!(hf.chat_template.as_deref(), Some("D"));
        let tok = Tokenizer::from_vocab(&hf.spec).unwrap();
        assert_eq!(tok.encode("ab ab<|im_end|>", false, true).unwrap(), [2, 4, 5]);
    }

    #[test]
    fn written_files_read_back_as_the_same_vocabulary() {
        let hf =
            read(&tokenizer_json(SMOLLM_PRE), Some(r#"{"eos_token": "<|im_end|>", "add_bos_token": false}"#)).unwrap();
        for pre in ["smollm", "gpt-2", "llama-bpe", "qwen2"] {
            let spec = VocabSpec { pre: Some(pre.into()), ..hf.spec.clone() };
            let (json, config) = write(&spec, Some("T")).unwrap();
            let back = read(&json, Some(&config)).unwrap();
            assert_eq!(back.spec.pre.as_deref(), Some(pre));
            assert_eq!(
                (&back.spec.tokens, &back.spec.token_types, &back.spec.merges),
                (&spec.tokens, &spec.token_types, &spec.merges)
            );
            assert_eq!(
                (back.spec.eos_id, back.spec.add_bos, back.chat_template.as_deref()),
                (Some(5), Some(false), Some("T"))
            );
        }
    }

    #[test]
    fn llama3_regexes_are_recognised_by_their_text() {
        let pre = r#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex":
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
            "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}"#;
        assert_eq!(read(&tokenizer_json(pre), None).unwrap().spec.pre.as_deref(), Some("llama-bpe"));
        let other = pre.replace("{1,3}", "{1,4}");
        let e = read(&tokenizer_json(&other), None).unwrap_err().to_string();
        assert!(e.contains("not one hearth knows"), "{e}");
    }

    #[test]
    fn holes_and_clashes_are_refused() {
        let holes = tokenizer_json(SMOLLM_PRE).replace("\"id\": 5", "\"id\": 9");
        assert!(read(&holes, None).unwrap_err().to_string().contains("beyond"));
        let clash = tokenizer_json(SMOLLM_PRE).replace("\"id\": 5", "\"id\": 4");
        assert!(read(&clash, None).unwrap_err().to_string().contains("both"));
        assert!(read("[]", None).is_err());
    }
}
