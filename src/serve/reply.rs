//! Answers from the worker's events: a whole completion gathered from them, or the events as
//! Server-Sent Events while they come.

use super::api::{Logprob, chat_logprobs, completion_logprobs, error_body, usage};
use super::tool_calls::{ToolCallScan, ToolFormat};
use super::worker::Event;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

/// What every piece of one answer repeats.
pub struct Answer {
    pub events: UnboundedReceiver<Event>,
    pub chat: bool,
    /// Tool calls are taken out of the chat answer's text, written this way (`tool_calls.rs`).
    pub tools: Option<ToolFormat>,
    /// Whether the request asked for log-probabilities.
    pub logprobs: bool,
    /// Streamed: the usage comes in a chunk of its own after the finish reason's (asked with
    /// `stream_options.include_usage`); otherwise it rides on the finish reason's chunk.
    pub usage_chunk: bool,
    pub id: String,
    pub created: u64,
    pub model: String,
}

/// A choice's `logprobs`: null unless the request asked, for `entries` whose text begins at
/// `offset` of the answer.
fn choice_logprobs(chat: bool, asked: bool, entries: &[Logprob], offset: usize) -> Value {
    match (asked, chat) {
        (false, _) => Value::Null,
        (true, true) => chat_logprobs(entries),
        (true, false) => completion_logprobs(entries, offset),
    }
}

/// Waits for the whole answer: the status and body of one chat or text completion.
pub async fn whole(answer: Answer) -> (u16, Value) {
    let Answer { mut events, chat, tools, logprobs: asked, id, created, model, .. } = answer;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut entries = Vec::new();
    loop {
        match events.recv().await {
            Some(Event::Text { text: piece, logprobs }) => {
                text.push_str(&piece);
                entries.extend(logprobs);
            }
            Some(Event::Reasoning(piece)) => reasoning.push_str(&piece),
            Some(Event::Done { finish_reason, prompt_tokens, completion_tokens }) => {
                let logprobs = choice_logprobs(chat, asked, &entries, 0);
                let (object, choice) = if chat {
                    let scan = tools.map(|format| ToolCallScan::new(format).named_after(&id));
                    let (message, finish_reason) = chat_message(&text, &reasoning, scan, finish_reason);
                    let choice =
                        json!({"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish_reason});
                    ("chat.completion", choice)
                } else {
                    let choice =
                        json!({"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason});
                    ("text_completion", choice)
                };
                let usage = usage(prompt_tokens, completion_tokens);
                let body = json!({"id": id, "object": object, "created": created, "model": model,
                    "choices": [choice], "usage": usage});
                return (200, body);
            }
            Some(Event::Failed { status, message }) => return (status, error_body(&message, "server_error")),
            None => return (500, error_body("the generation ended unexpectedly", "server_error")),
        }
    }
}

/// A whole chat answer's message and finish reason: its text, with the reasoning apart and,
/// where the request gave tools, the calls taken out of the text by `scan`.
fn chat_message(
    text: &str,
    reasoning: &str,
    scan: Option<ToolCallScan>,
    finish_reason: &'static str,
) -> (Value, &'static str) {
    let mut message = json!({"role": "assistant", "content": text});
    let mut finish_reason = finish_reason;
    if let Some(mut scan) = scan {
        let (mut content, mut calls) = scan.push(text);
        let (rest, last) = scan.finish();
        content.push_str(&rest);
        calls.extend(last);
        if scan.called() {
            // OpenAI's shape: no content beside the calls is null.
            message["content"] = if content.trim().is_empty() { Value::Null } else { json!(content) };
            message["tool_calls"] = json!(calls);
            finish_reason = calls_finish(finish_reason);
        }
    }
    if !reasoning.is_empty() {
        // As llama-server and vLLM return it.
        message["reasoning_content"] = json!(reasoning);
    }
    (message, finish_reason)
}

/// Server-Sent Events: a chunk per piece of text, a last chunk with the finish reason and the
/// usage, then `data: [DONE]`. Written by the HTTP layer as they come; when the client leaves,
/// the body (and with it `events`) is dropped, which cancels the job at its next token.
pub struct EventStream {
    events: UnboundedReceiver<Event>,
    chunks: SseChunks,
    ended: bool,
}

impl EventStream {
    pub fn new(answer: Answer) -> EventStream {
        let Answer { events, chat, tools, logprobs, usage_chunk, id, created, model } = answer;
        let scan = tools.map(|format| ToolCallScan::new(format).named_after(&id));
        let chunks =
            SseChunks { chat, scan, asked: logprobs, usage_chunk, id, created, model, offset: 0, calls_sent: 0 };
        EventStream { events, chunks, ended: false }
    }

    /// The next piece of the body: the events for the next worker event that has any, or
    /// `None` after the last.
    pub fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<String>> {
        use std::task::Poll;
        while !self.ended {
            match self.events.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    let (text, last) = self.chunks.write(event);
                    self.ended = last;
                    if !text.is_empty() {
                        return Poll::Ready(Some(text));
                    }
                }
                // The worker never leaves a job without a last event; were it gone, end here.
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(None)
    }
}

/// Turns one answer's worker events into Server-Sent Events.
struct SseChunks {
    chat: bool,
    scan: Option<ToolCallScan>,
    /// Whether the request asked for log-probabilities.
    asked: bool,
    usage_chunk: bool,
    id: String,
    created: u64,
    model: String,
    /// Bytes of answer text sent so far: where the next chunk's tokens begin.
    offset: usize,
    /// Tool calls sent so far: the next one's index.
    calls_sent: usize,
}

impl SseChunks {
    /// The events for one worker event, and whether it was the answer's last.
    fn write(&mut self, event: Event) -> (String, bool) {
        match event {
            Event::Text { text, logprobs } => {
                let (text, calls) = match self.scan.as_mut() {
                    Some(scan) => scan.push(&text),
                    None => (text, Vec::new()),
                };
                let mut out = String::new();
                if !text.is_empty() {
                    out.push_str(&self.text_chunk(&text, &logprobs));
                }
                out.push_str(&self.call_chunks(&calls));
                (out, false)
            }
            Event::Reasoning(text) => {
                let delta = json!({"role": "assistant", "reasoning_content": text});
                (self.delta_chunk(delta), false)
            }
            Event::Done { mut finish_reason, prompt_tokens, completion_tokens } => {
                let mut out = String::new();
                if let Some(mut scan) = self.scan.take() {
                    let (rest, calls) = scan.finish();
                    if !rest.is_empty() {
                        out.push_str(&self.text_chunk(&rest, &[]));
                    }
                    out.push_str(&self.call_chunks(&calls));
                    if scan.called() {
                        finish_reason = calls_finish(finish_reason);
                    }
                }
                let usage = usage(prompt_tokens, completion_tokens);
                if self.usage_chunk {
                    out.push_str(&self.finish_chunk(finish_reason, None));
                    let mut body = self.envelope(json!([]));
                    body["usage"] = usage;
                    out.push_str(&format!("data: {body}\n\n"));
                } else {
                    out.push_str(&self.finish_chunk(finish_reason, Some(usage)));
                }
                out.push_str("data: [DONE]\n\n");
                (out, true)
            }
            Event::Failed { message, .. } => {
                (format!("data: {}\n\ndata: [DONE]\n\n", error_body(&message, "server_error")), true)
            }
        }
    }

    fn envelope(&self, choices: Value) -> Value {
        let object = if self.chat { "chat.completion.chunk" } else { "text_completion" };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices})
    }

    fn delta_chunk(&self, delta: Value) -> String {
        let body = self.envelope(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]));
        format!("data: {body}\n\n")
    }

    /// A piece of answer text with the log-probabilities of the tokens that begin in it.
    fn text_chunk(&mut self, text: &str, entries: &[Logprob]) -> String {
        let logprobs = choice_logprobs(self.chat, self.asked, entries, self.offset);
        self.offset += text.len();
        let choice = if self.chat {
            json!({"index": 0, "delta": {"role": "assistant", "content": text}, "logprobs": logprobs, "finish_reason": null})
        } else {
            json!({"index": 0, "text": text, "logprobs": logprobs, "finish_reason": null})
        };
        format!("data: {}\n\n", self.envelope(json!([choice])))
    }

    fn finish_chunk(&self, finish_reason: &str, usage: Option<Value>) -> String {
        let choice = if self.chat {
            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason})
        } else {
            json!({"index": 0, "text": "", "logprobs": null, "finish_reason": finish_reason})
        };
        let mut body = self.envelope(json!([choice]));
        if let Some(usage) = usage {
            body["usage"] = usage;
        }
        format!("data: {body}\n\n")
    }

    /// Streamed tool calls: a chunk each with its index, id, name and whole arguments.
    fn call_chunks(&mut self, calls: &[Value]) -> String {
        let mut events = String::new();
        for call in calls {
            let mut call = call.clone();
            call["index"] = json!(self.calls_sent);
            self.calls_sent += 1;
            events.push_str(&self.delta_chunk(json!({"role": "assistant", "tool_calls": [call]})));
        }
        events
    }
}

/// The finish reason of an answer that called tools: "tool_calls" where it stopped by itself.
fn calls_finish(finish_reason: &'static str) -> &'static str {
    if finish_reason == "stop" { "tool_calls" } else { finish_reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_answer_with_calls_has_them_apart_and_finishes_with_tool_calls() {
        let text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
        let hermes = || Some(ToolCallScan::new(ToolFormat::Hermes).named_after("chatcmpl-7"));
        let (message, finish) = chat_message(text, "", hermes(), "stop");
        assert_eq!((message["content"].clone(), finish), (Value::Null, "tool_calls"));
        assert_eq!(message["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        // Ids are unique across the server's answers, so a loop's later calls never reuse one.
        assert_eq!(message["tool_calls"][0]["id"], "call_7_1");
        // Cut short by max_tokens: the reason stays "length".
        assert_eq!(chat_message(text, "", hermes(), "length").1, "length");
        // Without tools in the request, the text is the answer as it is.
        let (message, finish) = chat_message(text, "hmm", None, "stop");
        assert_eq!((message["content"].as_str(), finish), (Some(text), "stop"));
        assert_eq!(message["reasoning_content"], "hmm");
        assert!(message.get("tool_calls").is_none());
    }
}
