//! Answers from the worker's events: a whole completion gathered from them, or the events as
//! Server-Sent Events while they come.

use super::api::{Logprob, chat_logprobs, completion_logprobs, error_body, usage};
use super::tool_calls::{CallReading, ToolCallScan};
use super::worker::Event;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

/// What every piece of one answer repeats.
pub struct Answer {
    /// One per choice (`n`).
    pub events: Vec<UnboundedReceiver<Event>>,
    pub chat: bool,
    /// Tool calls are taken out of the chat answer's text, written this way (`tool_calls.rs`).
    pub tools: Option<CallReading>,
    /// The conversation's oldest messages left out to fit the context (said in a header).
    pub dropped_messages: usize,
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

/// The tool-call scan of choice `index` of answer `id`: call ids unique across the server's
/// answers and their choices.
fn scan_for(reading: &CallReading, id: &str, index: usize) -> ToolCallScan {
    let scan = ToolCallScan::reading(reading);
    if index == 0 { scan.named_after(id) } else { scan.named_after(&format!("{id}c{index}")) }
}

/// Waits for the whole answer: the status and body of one chat or text completion, a choice per
/// sequence the request asked for (`n`).
pub async fn whole(answer: Answer) -> (u16, Value) {
    let Answer { events, chat, tools, logprobs: asked, id, created, model, .. } = answer;
    let mut choices = Vec::with_capacity(events.len());
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for (index, mut events) in events.into_iter().enumerate() {
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
                Some(Event::Done { finish_reason, prompt_tokens: prompt, completion_tokens: completion }) => {
                    prompt_tokens = prompt;
                    completion_tokens += completion;
                    let logprobs = choice_logprobs(chat, asked, &entries, 0);
                    choices.push(if chat {
                        let scan = tools.as_ref().map(|reading| scan_for(reading, &id, index));
                        let (message, finish_reason) = chat_message(&text, &reasoning, scan, finish_reason);
                        json!({"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish_reason})
                    } else {
                        json!({"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason})
                    });
                    break;
                }
                Some(Event::Failed { status, message }) => return (status, error_body(&message, "server_error")),
                None => return (500, error_body("the generation ended unexpectedly", "server_error")),
            }
        }
    }
    let object = if chat { "chat.completion" } else { "text_completion" };
    let usage = usage(prompt_tokens, completion_tokens);
    (200, json!({"id": id, "object": object, "created": created, "model": model, "choices": choices, "usage": usage}))
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

/// Server-Sent Events: a chunk per piece of text (each with its choice's index), a chunk with
/// each choice's finish reason, the usage (on the last finish chunk, or in a chunk of its own
/// when asked), then `data: [DONE]`. Written by the HTTP layer as they come; when the client
/// leaves, the body (and with it the receivers) is dropped, which cancels the jobs at their
/// next token.
pub struct EventStream {
    choices: Vec<(UnboundedReceiver<Event>, SseChunks, bool)>,
    usage_chunk: bool,
    prompt_tokens: usize,
    completion_tokens: usize,
    ended: bool,
}

impl EventStream {
    pub fn new(answer: Answer) -> EventStream {
        let Answer { events, chat, tools, logprobs, usage_chunk, id, created, model, .. } = answer;
        let choices = events
            .into_iter()
            .enumerate()
            .map(|(index, events)| {
                let chunks = SseChunks {
                    index,
                    chat,
                    scan: tools.as_ref().map(|reading| scan_for(reading, &id, index)),
                    asked: logprobs,
                    id: id.clone(),
                    created,
                    model: model.clone(),
                    offset: 0,
                    calls_sent: 0,
                };
                (events, chunks, false)
            })
            .collect();
        EventStream { choices, usage_chunk, prompt_tokens: 0, completion_tokens: 0, ended: false }
    }

    /// The next piece of the body: the events for the next worker events that have any, or
    /// `None` after the last.
    pub fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<String>> {
        use std::task::Poll;
        let mut out = String::new();
        while !self.ended {
            let mut progressed = false;
            for i in 0..self.choices.len() {
                if self.choices[i].2 || self.ended {
                    continue;
                }
                match self.choices[i].0.poll_recv(cx) {
                    Poll::Ready(Some(event)) => {
                        progressed = true;
                        out.push_str(&self.write(i, event));
                    }
                    // The worker never leaves a choice without a last event; were it gone, end.
                    Poll::Ready(None) => self.ended = true,
                    Poll::Pending => {}
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(out));
            }
            if !progressed && !self.ended {
                return Poll::Pending;
            }
        }
        Poll::Ready(if out.is_empty() { None } else { Some(out) })
    }

    /// The events for choice `i`'s worker event.
    fn write(&mut self, i: usize, event: Event) -> String {
        match event {
            Event::Done { finish_reason, prompt_tokens, completion_tokens } => {
                self.choices[i].2 = true;
                self.prompt_tokens = prompt_tokens;
                self.completion_tokens += completion_tokens;
                let last = self.choices.iter().all(|c| c.2);
                let usage = usage(self.prompt_tokens, self.completion_tokens);
                let mut out =
                    self.choices[i].1.finish(finish_reason, (last && !self.usage_chunk).then(|| usage.clone()));
                if last {
                    if self.usage_chunk {
                        let mut body = self.choices[i].1.envelope(json!([]));
                        body["usage"] = usage;
                        out.push_str(&format!("data: {body}\n\n"));
                    }
                    out.push_str("data: [DONE]\n\n");
                    self.ended = true;
                }
                out
            }
            Event::Failed { message, .. } => {
                self.ended = true;
                format!("data: {}\n\ndata: [DONE]\n\n", error_body(&message, "server_error"))
            }
            event => self.choices[i].1.write(event),
        }
    }
}

/// Turns one choice's worker events into Server-Sent Events.
struct SseChunks {
    /// The choice's index.
    index: usize,
    chat: bool,
    scan: Option<ToolCallScan>,
    /// Whether the request asked for log-probabilities.
    asked: bool,
    id: String,
    created: u64,
    model: String,
    /// Bytes of answer text sent so far: where the next chunk's tokens begin.
    offset: usize,
    /// Tool calls sent so far: the next one's index.
    calls_sent: usize,
}

impl SseChunks {
    /// The events for one of the choice's text or reasoning events.
    fn write(&mut self, event: Event) -> String {
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
                out
            }
            Event::Reasoning(text) => self.delta_chunk(json!({"role": "assistant", "reasoning_content": text})),
            Event::Done { .. } | Event::Failed { .. } => String::new(),
        }
    }

    /// The choice's end: the text and calls its scan still holds, and its finish chunk (with
    /// `usage` where given).
    fn finish(&mut self, mut finish_reason: &'static str, usage: Option<Value>) -> String {
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
        out.push_str(&self.finish_chunk(finish_reason, usage));
        out
    }

    fn envelope(&self, choices: Value) -> Value {
        let object = if self.chat { "chat.completion.chunk" } else { "text_completion" };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model, "choices": choices})
    }

    fn delta_chunk(&self, delta: Value) -> String {
        let body =
            self.envelope(json!([{"index": self.index, "delta": delta, "logprobs": null, "finish_reason": null}]));
        format!("data: {body}\n\n")
    }

    /// A piece of answer text with the log-probabilities of the tokens that begin in it.
    fn text_chunk(&mut self, text: &str, entries: &[Logprob]) -> String {
        let logprobs = choice_logprobs(self.chat, self.asked, entries, self.offset);
        self.offset += text.len();
        let choice = if self.chat {
            json!({"index": self.index, "delta": {"role": "assistant", "content": text}, "logprobs": logprobs, "finish_reason": null})
        } else {
            json!({"index": self.index, "text": text, "logprobs": logprobs, "finish_reason": null})
        };
        format!("data: {}\n\n", self.envelope(json!([choice])))
    }

    fn finish_chunk(&self, finish_reason: &str, usage: Option<Value>) -> String {
        let choice = if self.chat {
            json!({"index": self.index, "delta": {}, "logprobs": null, "finish_reason": finish_reason})
        } else {
            json!({"index": self.index, "text": "", "logprobs": null, "finish_reason": finish_reason})
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
        let hermes = || Some(ToolCallScan::new(crate::serve::ToolFormat::Hermes).named_after("chatcmpl-7"));
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
