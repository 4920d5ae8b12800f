//! The tokenizer and chat template a GGUF file carries in its `tokenizer.*` metadata.

use super::gguf::{GgufHeader, Value};
use crate::chat::ChatTemplate;
use crate::tokenizer::{Tokenizer, VocabSpec};
use crate::{Error, Result};

fn strings(h: &GgufHeader, key: &str) -> Result<Option<Vec<String>>> {
    let Some(v) = h.get(key) else { return Ok(None) };
    let items = v.as_array().ok_or_else(|| Error::Gguf(format!("{key} is not an array")))?;
    items
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(s),
            _ => Err(Error::Gguf(format!("{key} holds a non-string"))),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn numbers<T>(h: &GgufHeader, key: &str, convert: impl Fn(&Value) -> Option<T>) -> Result<Option<Vec<T>>> {
    let Some(v) = h.get(key) else { return Ok(None) };
    let items = v.as_array().ok_or_else(|| Error::Gguf(format!("{key} is not an array")))?;
    items
        .iter()
        .map(|i| convert(&i).ok_or_else(|| Error::Gguf(format!("{key} holds a value of the wrong type"))))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

pub fn vocab_spec(h: &GgufHeader) -> Result<VocabSpec> {
    let id = |k: &str| h.get(k).and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok());
    let flag = |k: &str| h.get(k).and_then(Value::as_bool);
    let model = h
        .get("tokenizer.ggml.model")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Tokenizer("the file has no tokenizer (tokenizer.ggml.model is missing)".into()))?;
    Ok(VocabSpec {
        model: model.to_string(),
        pre: h.get("tokenizer.ggml.pre").and_then(Value::as_str).map(str::to_string),
        tokens: strings(h, "tokenizer.ggml.tokens")?.unwrap_or_default(),
        scores: numbers(h, "tokenizer.ggml.scores", |v| v.as_f64().map(|f| f as f32))?,
        token_types: numbers(h, "tokenizer.ggml.token_type", |v| v.as_i64().and_then(|i| i32::try_from(i).ok()))?,
        merges: strings(h, "tokenizer.ggml.merges")?,
        bos_id: id("tokenizer.ggml.bos_token_id"),
        eos_id: id("tokenizer.ggml.eos_token_id"),
        unk_id: id("tokenizer.ggml.unknown_token_id"),
        eot_id: id("tokenizer.ggml.eot_token_id"),
        eom_id: id("tokenizer.ggml.eom_token_id"),
        pad_id: id("tokenizer.ggml.padding_token_id"),
        add_bos: flag("tokenizer.ggml.add_bos_token"),
        add_eos: flag("tokenizer.ggml.add_eos_token"),
        add_space_prefix: flag("tokenizer.ggml.add_space_prefix"),
    })
}

pub fn tokenizer(h: &GgufHeader) -> Result<Tokenizer> {
    Tokenizer::from_vocab(&vocab_spec(h)?)
}

/// The model's own chat template, if it has one.
pub fn chat_template(h: &GgufHeader, tok: &Tokenizer) -> Result<Option<ChatTemplate>> {
    let Some(source) = h.get("tokenizer.chat_template").and_then(Value::as_str) else { return Ok(None) };
    let text = |id: Option<u32>| id.and_then(|i| tok.token_text(i)).unwrap_or("").to_string();
    ChatTemplate::new(source, &text(tok.bos_id()), &text(tok.eos_id())).map(Some)
}

/// The `tokenizer.*` metadata describing `spec` (the inverse of `vocab_spec`), for model
/// folders read as GGUF and for the files `hearth quantize` writes from them.
pub fn metadata(spec: &VocabSpec, chat_template: Option<&str>) -> Vec<(String, Value)> {
    let strings = |v: &[String]| Value::array(v.iter().map(|s| Value::String(s.clone())));
    let mut m = vec![("tokenizer.ggml.model".to_string(), Value::String(spec.model.clone()))];
    let mut put = |key: &str, v: Value| m.push((format!("tokenizer.{key}"), v));
    if let Some(pre) = &spec.pre {
        put("ggml.pre", Value::String(pre.clone()));
    }
    put("ggml.tokens", strings(&spec.tokens));
    if let Some(scores) = &spec.scores {
        put("ggml.scores", Value::array(scores.iter().map(|&s| Value::F32(s))));
    }
    if let Some(types) = &spec.token_types {
        put("ggml.token_type", Value::array(types.iter().map(|&t| Value::I32(t))));
    }
    if let Some(merges) = &spec.merges {
        put("ggml.merges", strings(merges));
    }
    let ids = [
        ("bos", spec.bos_id),
        ("eos", spec.eos_id),
        ("unknown", spec.unk_id),
        ("eot", spec.eot_id),
        ("eom", spec.eom_id),
        ("padding", spec.pad_id),
    ];
    for (name, id) in ids {
        if let Some(id) = id {
            put(&format!("ggml.{name}_token_id"), Value::U32(id));
        }
    }
    let flags =
        [("add_bos_token", spec.add_bos), ("add_eos_token", spec.add_eos), ("add_space_prefix", spec.add_space_prefix)];
    for (name, flag) in flags {
        if let Some(flag) = flag {
            put(&format!("ggml.{name}"), Value::Bool(flag));
        }
    }
    if let Some(t) = chat_template {
        put("chat_template", Value::String(t.to_string()));
    }
    m
}
