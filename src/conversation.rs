//! A chat kept across turns: the system prompt and the messages so far, rendered through the
//! model's chat template for each new turn. A session's KV cache holds the previous render, so
//! only the new tokens are processed (`Session::reuse_prefix`); when a turn would not fit the
//! context, the oldest exchanges are dropped, the system prompt kept.

use crate::chat::ChatMessage;
use crate::model::Model;
use crate::prompt::{ChatExtras, encode_chat, encode_chat_within};
use crate::{Error, Result};

#[derive(Clone, Debug, Default)]
pub struct Conversation {
    pub system: Option<String>,
    /// User and assistant messages, oldest first.
    pub messages: Vec<ChatMessage>,
}

/// A turn's prompt, and how many of the oldest messages were dropped to make it fit.
pub struct TurnPrompt {
    pub ids: Vec<u32>,
    pub dropped: usize,
}

impl Conversation {
    pub fn new(system: Option<String>) -> Conversation {
        Conversation { system, messages: Vec::new() }
    }

    fn all_messages(&self) -> Vec<ChatMessage> {
        let system = self.system.iter().map(|s| ChatMessage::new("system", s.clone()));
        system.chain(self.messages.iter().cloned()).collect()
    }

    /// Adds the user's message and renders the conversation for the assistant's answer, leaving
    /// `room` tokens free in a context of `ctx`; drops the oldest messages (whole exchanges)
    /// while it does not fit. A message that does not fit even alone is refused, the
    /// conversation unchanged.
    pub fn ask(&mut self, model: &Model, text: &str, ctx: usize, room: usize) -> Result<TurnPrompt> {
        let message = ChatMessage::new("user", text);
        // A message that cannot fit even alone costs the conversation nothing.
        let alone = Conversation { system: self.system.clone(), messages: vec![message.clone()] };
        let alone = encode_chat(model, &alone.all_messages())?.len();
        if alone + room > ctx {
            return Err(Error::Input(format!(
                "the message is {alone} tokens with the system prompt; a context of {ctx} tokens has room for \
                 {} (raise --ctx)",
                ctx.saturating_sub(room)
            )));
        }
        self.messages.push(message);
        let mut dropped = 0;
        loop {
            let ids = encode_chat(model, &self.all_messages())?;
            if ids.len() + room <= ctx || self.messages.len() <= 1 {
                return Ok(TurnPrompt { ids, dropped });
            }
            // An exchange is a user message and the answer after it.
            let n = if self.messages.get(1).is_some_and(|m| m.role == "assistant") { 2 } else { 1 };
            self.messages.drain(..n.min(self.messages.len() - 1));
            dropped += n;
        }
    }

    /// Records the assistant's answer to the last message.
    pub fn answer(&mut self, text: &str) {
        self.messages.push(ChatMessage::new("assistant", text));
    }

    /// Forgets the messages, keeping the system prompt.
    pub fn reset(&mut self) {
        self.messages.clear();
    }

    /// The conversation as JSON: `{"messages": [{"role": …, "content": …}, …]}`, system first.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "messages": self.all_messages() }).to_string()
    }
}

/// A request's `messages` rendered for the assistant's answer with `room` tokens left in a
/// context of `ctx` (the server's form of `Conversation::ask`): where they do not fit, the
/// oldest exchanges — a user message and everything up to the next one (answers, tool calls,
/// tool results) — are left out, system messages and the last exchange kept. The ids and how
/// many messages were left out; the ids may still not fit, for the caller to refuse.
pub fn fit_messages(
    model: &Model,
    messages: &[ChatMessage],
    ctx: usize,
    room: usize,
    extras: ChatExtras,
) -> Result<(Vec<u32>, usize)> {
    let mut kept = messages.to_vec();
    let mut dropped = 0;
    loop {
        let ids = encode_chat_within(model, &kept, ctx, extras);
        if ids.as_ref().is_ok_and(|ids| ids.len() + room <= ctx) {
            return ids.map(|ids| (ids, dropped));
        }
        let Some(first) = kept.iter().position(|m| m.role != "system") else { return ids.map(|ids| (ids, dropped)) };
        let Some(next) = kept.iter().skip(first + 1).position(|m| m.role == "user").map(|at| first + 1 + at) else {
            return ids.map(|ids| (ids, dropped));
        };
        kept.drain(first..next);
        dropped += next - first;
    }
}
