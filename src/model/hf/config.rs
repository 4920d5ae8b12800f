//! config.json → the GGUF metadata keys hearth's one configuration reader (`ModelConfig::from_gguf`)
//! understands, as llama.cpp's converter names them.

use crate::model::gguf::Value;
use crate::{Error, Result};
use serde_json::Value as Json;

/// Hugging Face `model_type`s hearth runs, and the GGUF architecture each becomes.
const MODEL_TYPES: &[(&str, &str)] = &[
    ("llama", "llama"),
    ("mistral", "llama"),
    ("qwen2", "qwen2"),
    ("qwen3", "qwen3"),
    ("phi3", "phi3"),
    ("gemma3_text", "gemma3"),
];

/// The architecture and `{arch}.*` / `general.*` metadata a config.json describes.
#[derive(Debug)]
pub struct HfConfig {
    pub arch: &'static str,
    pub metadata: Vec<(String, Value)>,
    /// Query and key/value heads, for the RoPE row order conversion of Llama's Q and K.
    pub n_head: usize,
    pub n_head_kv: usize,
    pub tied_embeddings: bool,
}

fn bad(m: impl Into<String>) -> Error {
    Error::Folder(format!("config.json: {}", m.into()))
}

pub fn parse(text: &str) -> Result<HfConfig> {
    let json: Json = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    // Multimodal Gemma 3 folders nest the language model's settings.
    let c = json.get("text_config").filter(|t| t.is_object()).unwrap_or(&json);
    let model_type = c.get("model_type").or(json.get("model_type")).and_then(Json::as_str).unwrap_or("");
    let arch = MODEL_TYPES.iter().find(|(t, _)| *t == model_type).map(|&(_, a)| a).ok_or_else(|| {
        let known: Vec<&str> = MODEL_TYPES.iter().map(|t| t.0).collect();
        Error::Unsupported(format!("model_type {model_type:?} is not supported yet (supported: {})", known.join(", ")))
    })?;
    let uint = |key: &str| -> Result<Option<u32>> {
        match c.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| bad(format!("{key} is not a non-negative integer: {v}"))),
        }
    };
    let required = |key: &str| uint(key)?.ok_or_else(|| bad(format!("{key} is missing")));
    let float = |key: &str| -> Result<Option<f32>> {
        match c.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v.as_f64().map(|f| Some(f as f32)).ok_or_else(|| bad(format!("{key} is not a number: {v}"))),
        }
    };
    if let Some(scaling) = c.get("rope_scaling").filter(|s| !s.is_null()) {
        log::warn!("config.json: rope_scaling {scaling} is not applied (fine within the original context length)");
    }

    let n_head = required("num_attention_heads")?;
    let n_head_kv = uint("num_key_value_heads")?.unwrap_or(n_head);
    let key = |k: &str| format!("{arch}.{k}");
    let mut metadata = vec![
        ("general.architecture".to_string(), Value::String(arch.into())),
        (key("block_count"), Value::U32(required("num_hidden_layers")?)),
        (key("embedding_length"), Value::U32(required("hidden_size")?)),
        (key("feed_forward_length"), Value::U32(required("intermediate_size")?)),
        (key("attention.head_count"), Value::U32(n_head)),
        (key("attention.head_count_kv"), Value::U32(n_head_kv)),
        (key("vocab_size"), Value::U32(required("vocab_size")?)),
    ];
    let optional = [("head_dim", "attention.key_length"), ("max_position_embeddings", "context_length")];
    for (hf, gguf) in optional {
        if let Some(v) = uint(hf)? {
            metadata.push((key(gguf), Value::U32(v)));
        }
    }
    if let Some(v) = float("rope_theta")? {
        metadata.push((key("rope.freq_base"), Value::F32(v)));
    }
    if let Some(v) = float("rms_norm_eps")? {
        metadata.push((key("attention.layer_norm_rms_epsilon"), Value::F32(v)));
    }
    // Qwen 2 and Mistral configs name a window their converted GGUFs do not use; Gemma 3's is real.
    if arch == "gemma3" {
        if let Some(v) = uint("sliding_window")? {
            metadata.push((key("attention.sliding_window"), Value::U32(v)));
        }
        if let Some(v) = float("rope_local_base_freq")? {
            metadata.push((key("rope.freq_base_swa"), Value::F32(v)));
        }
    }
    if let Some(name) = json.get("_name_or_path").and_then(Json::as_str).filter(|n| !n.is_empty()) {
        metadata.push(("general.name".into(), Value::String(name.into())));
    }
    let tied_embeddings = c
        .get("tie_word_embeddings")
        .or(json.get("tie_word_embeddings"))
        .and_then(Json::as_bool)
        .unwrap_or(arch == "gemma3");
    Ok(HfConfig { arch, metadata, n_head: n_head as usize, n_head_kv: n_head_kv as usize, tied_embeddings })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = r#"{"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
        "rope_theta": 100000, "rms_norm_eps": 1e-5, "max_position_embeddings": 8192, "tie_word_embeddings": true}"#;

    #[test]
    fn a_llama_config_becomes_the_gguf_keys() {
        let c = parse(SMOL).unwrap();
        assert_eq!((c.arch, c.n_head, c.n_head_kv, c.tied_embeddings), ("llama", 9, 3, true));
        let get = |k: &str| c.metadata.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("llama.embedding_length"), Some(Value::U32(576)));
        assert_eq!(get("llama.rope.freq_base"), Some(Value::F32(100000.0)));
        assert_eq!(get("llama.context_length"), Some(Value::U32(8192)));
    }

    #[test]
    fn unknown_families_and_bad_values_are_named() {
        let err = parse(r#"{"model_type": "mamba"}"#).unwrap_err().to_string();
        assert!(err.contains("\"mamba\"") && err.contains("qwen2"), "{err}");
        let err = parse(&SMOL.replace("576", "-576")).unwrap_err().to_string();
        assert!(err.contains("hidden_size"), "{err}");
        let err = parse(&SMOL.replace("\"num_hidden_layers\": 30,", "")).unwrap_err().to_string();
        assert!(err.contains("num_hidden_layers is missing"), "{err}");
        assert!(parse("{not json").is_err());
    }
}
