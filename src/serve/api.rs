//! The OpenAI request bodies hearth serves, and its response and error bodies.

use crate::chat::ChatMessage;
use crate::grammar::Grammar;
use serde::Deserialize;
use serde_json::{Value, json};

/// A message's content: text, or the list-of-parts form newer clients send.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
pub struct Part {
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    pub fn text(self) -> String {
        match self {
            Content::Text(t) => t,
            Content::Parts(parts) => parts.into_iter().filter_map(|p| p.text).collect::<Vec<_>>().join(""),
        }
    }
}

#[derive(Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Option<Content>,
    /// An assistant's earlier calls of tools.
    #[serde(default)]
    pub tool_calls: Vec<Value>,
    /// A tool's answer: the call it answers.
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Default)]
pub struct StreamOptions {
    /// Send the usage in a last chunk of its own, with no choices (as OpenAI does when asked).
    #[serde(default)]
    pub include_usage: bool,
}

/// What chat and text completions share. Unknown fields are accepted (clients send many);
/// known ones of the wrong type are a 400.
#[derive(Deserialize, Default)]
pub struct Options {
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    pub stop: Option<OneOrMany>,
    pub seed: Option<u64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    /// Choices per request (up to the server's --parallel).
    pub n: Option<i64>,
    /// `{"type": "text" | "json_object" | "json_schema", "json_schema": {"schema": …}}`.
    pub response_format: Option<Value>,
}

/// The request's tools with what chat templates take for granted filled in: a `description`
/// (gpt-oss's writes it unconditionally) and `parameters` (an object of no properties).
pub fn complete_tools(tools: &[Value]) -> Vec<Value> {
    tools
        .iter()
        .map(|tool| {
            let mut tool = tool.clone();
            if let Some(function) = tool.get_mut("function").and_then(Value::as_object_mut) {
                function.entry("description").or_insert_with(|| json!(""));
                let parameters = function.entry("parameters").or_insert_with(|| json!({}));
                if let Some(parameters) = parameters.as_object_mut() {
                    parameters.entry("type").or_insert_with(|| json!("object"));
                    parameters.entry("properties").or_insert_with(|| json!({}));
                }
            }
            tool
        })
        .collect()
}

/// The grammar a `response_format` asks for (None for text).
pub fn response_grammar(format: &Value) -> Result<Option<Grammar>, String> {
    match format["type"].as_str() {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Grammar::JsonObject)),
        Some("json_schema") => match &format["json_schema"]["schema"] {
            Value::Null => Err("response_format json_schema needs json_schema.schema".into()),
            schema => Ok(Some(Grammar::JsonSchema(schema.clone()))),
        },
        _ => Err(format!(
            "response_format must be {{\"type\": \"text\"}}, {{\"type\": \"json_object\"}} or \
             {{\"type\": \"json_schema\", \"json_schema\": {{\"schema\": …}}}} (got {format})"
        )),
    }
}

#[derive(Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// Functions the model may call (`{"type": "function", "function": {...}}`).
    pub tools: Option<Vec<Value>>,
    /// "auto" (the default with tools), "none", "required" or a named function
    /// (`forced_calls.rs`).
    pub tool_choice: Option<Value>,
    /// Whether a forced answer may hold more than one call (the default).
    pub parallel_tool_calls: Option<bool>,
    /// Report each generated token's log-probability.
    pub logprobs: Option<bool>,
    /// With `logprobs`: also the most likely tokens at each step, this many (0 to 20).
    pub top_logprobs: Option<i64>,
    #[serde(flatten)]
    pub options: Options,
}

#[derive(Deserialize)]
pub struct CompletionRequest {
    pub prompt: OneOrMany,
    /// Report each generated token's log-probability and this many most likely tokens' (0 to 20).
    pub logprobs: Option<i64>,
    #[serde(flatten)]
    pub options: Options,
}

impl ChatRequest {
    /// The messages for the chat template: tool calls' arguments, which OpenAI sends as JSON
    /// text, become the objects templates expect.
    pub fn chat_messages(&mut self) -> Vec<ChatMessage> {
        std::mem::take(&mut self.messages)
            .into_iter()
            .map(|m| ChatMessage {
                role: m.role,
                content: m.content.map(Content::text).unwrap_or_default(),
                tool_calls: m.tool_calls.into_iter().map(arguments_as_object).collect(),
                tool_call_id: m.tool_call_id,
                name: m.name,
            })
            .collect()
    }
}

fn arguments_as_object(mut call: Value) -> Value {
    let parsed = call["function"]["arguments"].as_str().and_then(|a| serde_json::from_str::<Value>(a).ok());
    if let Some(object) = parsed.filter(Value::is_object) {
        call["function"]["arguments"] = object;
    }
    call
}

/// A token as the API shows it: its text (partial characters replaced), its bytes and its
/// log-probability.
pub struct TokenText {
    pub text: String,
    pub bytes: Vec<u8>,
    pub logprob: f32,
}

/// A generated token and, when asked for, the most likely tokens at its step.
pub struct Logprob {
    pub token: TokenText,
    pub top: Vec<TokenText>,
}

/// A chat choice's `logprobs`: `{"content": [{token, logprob, bytes, top_logprobs}]}`.
pub fn chat_logprobs(entries: &[Logprob]) -> Value {
    let one = |t: &TokenText| json!({"token": t.text, "logprob": t.logprob, "bytes": t.bytes});
    let content: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut entry = one(&e.token);
            entry["top_logprobs"] = e.top.iter().map(one).collect();
            entry
        })
        .collect();
    json!({ "content": content })
}

/// A text completion choice's `logprobs`, its tokens' text starting at `offset` of the answer:
/// `{tokens, token_logprobs, top_logprobs: [{text: logprob}], text_offset}`.
pub fn completion_logprobs(entries: &[Logprob], mut offset: usize) -> Value {
    let mut text_offset = Vec::with_capacity(entries.len());
    for e in entries {
        text_offset.push(offset);
        offset += e.token.text.len();
    }
    json!({
        "tokens": entries.iter().map(|e| e.token.text.as_str()).collect::<Vec<_>>(),
        "token_logprobs": entries.iter().map(|e| e.token.logprob).collect::<Vec<_>>(),
        "top_logprobs": entries.iter().map(|e| {
            e.top.iter().map(|t| (t.text.clone(), json!(t.logprob))).collect::<serde_json::Map<_, _>>()
        }).collect::<Vec<_>>(),
        "text_offset": text_offset,
    })
}

/// An OpenAI-style error body.
pub fn error_body(message: &str, kind: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
}

pub fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}
