//! What the page asks `generate` for: a prompt or a conversation, and the sampling options,
//! checked and turned into prompt ids and a sampler.

use hearth::chat::ChatMessage;
use hearth::grammar::Grammar;
use hearth::model::Model;
use hearth::prompt::{encode_chat, encode_raw, encode_user_prompt};
use hearth::sample::SamplerConfig;
use hearth::{Error, Result};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    /// One user turn (through the chat template unless `raw`).
    prompt: Option<String>,
    /// A whole conversation; the KV cache keeps what an earlier turn already processed.
    messages: Option<Vec<ChatMessage>>,
    system: Option<String>,
    #[serde(default)]
    raw: bool,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// 0 is greedy (the argmax on the GPU).
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    seed: Option<u64>,
    /// Structured output: the answer is JSON valid under this schema.
    json_schema: Option<serde_json::Value>,
    /// Structured output: the answer follows this grammar (llguidance's Lark syntax).
    grammar: Option<String>,
}

fn default_max_tokens() -> usize {
    256
}

impl Request {
    pub fn parse(json: &str) -> Result<Request> {
        serde_json::from_str(json).map_err(|e| Error::Input(format!("bad generate options: {e}")))
    }

    pub fn prompt_ids(&self, model: &Model) -> Result<Vec<u32>> {
        match (&self.prompt, &self.messages) {
            (Some(_), Some(_)) => Err(Error::Input("give either a prompt or messages, not both".into())),
            (None, None) => Err(Error::Input("nothing to answer: give a prompt or messages".into())),
            (Some(p), None) if self.raw || model.chat_template.is_none() => encode_raw(model, p),
            (Some(p), None) => encode_user_prompt(model, p, self.system.as_deref()),
            (None, Some(messages)) => {
                let mut all = Vec::with_capacity(messages.len() + 1);
                if let Some(s) = &self.system {
                    all.push(ChatMessage::new("system", s.clone()));
                }
                all.extend(messages.iter().cloned());
                encode_chat(model, &all)
            }
        }
    }

    /// The grammar the answer must follow, if the request gives one.
    pub fn grammar(&self) -> Result<Option<Grammar>> {
        match (&self.json_schema, &self.grammar) {
            (Some(_), Some(_)) => Err(Error::Input("give either jsonSchema or grammar, not both".into())),
            (Some(schema), None) => Ok(Some(Grammar::JsonSchema(schema.clone()))),
            (None, Some(lark)) => Ok(Some(Grammar::Lark(lark.clone()))),
            (None, None) => Ok(None),
        }
    }

    /// llama.cpp's defaults for whatever the page leaves out; the seed is the page's to choose.
    pub fn sampler(&self) -> Result<SamplerConfig> {
        let d = SamplerConfig::default();
        let config = SamplerConfig {
            temperature: self.temperature.unwrap_or(d.temperature),
            top_k: self.top_k.unwrap_or(d.top_k),
            top_p: self.top_p.unwrap_or(d.top_p),
            min_p: self.min_p.unwrap_or(d.min_p),
            repeat_penalty: self.repeat_penalty.unwrap_or(d.repeat_penalty),
            seed: self.seed.unwrap_or(d.seed),
            ..d
        };
        config.check()?;
        if self.max_tokens == 0 {
            return Err(Error::Input("maxTokens must be at least 1".into()));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(json: &str) -> String {
        match Request::parse(json).and_then(|r| r.sampler()) {
            Ok(_) => panic!("{json} should be refused"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        // serde names the wrong type and the column, not the field.
        assert!(refusal(r#"{"prompt": "hi", "maxTokens": "many"}"#).contains("invalid type: string \"many\""));
        assert!(refusal(r#"{"prompt": "hi", "temprature": 0.5}"#).contains("temprature"));
        assert!(refusal(r#"{"prompt": "hi", "maxTokens": 0}"#).contains("maxTokens must be at least 1"));
        assert!(refusal(r#"{"prompt": "hi", "temperature": -1}"#).contains("temperature"));
        assert!(refusal(r#"{"prompt": "hi", "topP": 1.5}"#).contains("top-p"));
        assert!(refusal("not json").contains("bad generate options"));
    }

    #[test]
    fn options_left_out_take_llama_cpp_defaults() {
        let r = Request::parse(r#"{"prompt": "hi", "temperature": 0, "seed": 7}"#).unwrap();
        let s = r.sampler().unwrap();
        assert_eq!((s.temperature, s.seed, s.top_k), (0.0, 7, SamplerConfig::default().top_k));
        assert_eq!(r.max_tokens, 256);
    }
}
