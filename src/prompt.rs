//! Turning what the user typed into the token ids the model sees.

use crate::chat::ChatMessage;
use crate::model::Model;
use crate::{Error, Result};

/// The text as it is: the vocabulary's BOS when it wants one, and special tokens written in the
/// text (such as `<|im_start|>`) parsed as special tokens, as llama.cpp does.
pub fn encode_raw(model: &Model, text: &str) -> Result<Vec<u32>> {
    model.tokenizer.encode(text, true, true)
}

/// The conversation rendered with the model's own chat template, ready for the assistant's
/// turn. Models without a template get the last message's text as it is.
pub fn encode_chat(model: &Model, messages: &[ChatMessage]) -> Result<Vec<u32>> {
    let Some(template) = &model.chat_template else {
        let last = messages.last().ok_or_else(|| Error::Input("no messages to send".into()))?;
        return encode_raw(model, &last.content);
    };
    let text = template.render(messages, true)?;
    // Templates that write the BOS token themselves must not get a second one.
    let bos_text = model.tokenizer.bos_id().and_then(|id| model.tokenizer.token_text(id));
    let has_bos = bos_text.is_some_and(|b| !b.is_empty() && text.starts_with(b));
    model.tokenizer.encode(&text, !has_bos, true)
}

/// One user turn, with an optional system prompt.
pub fn encode_user_prompt(model: &Model, prompt: &str, system: Option<&str>) -> Result<Vec<u32>> {
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(ChatMessage { role: "system".into(), content: s.into() });
    }
    messages.push(ChatMessage { role: "user".into(), content: prompt.into() });
    encode_chat(model, &messages)
}
