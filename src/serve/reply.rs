//! Writing answers back: JSON bodies, a whole completion gathered from the worker's events, or
//! the events as Server-Sent Events while they come.

use super::api::{Logprob, chat_logprobs, completion_logprobs, error_body, usage};
use super::tool_calls::{ToolCallScan, ToolFormat};
use super::worker::Event;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::mpsc::Receiver;

/// What every piece of one answer repeats.
pub struct Answer {
    pub events: Receiver<Event>,
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

/// Extra headers of an answer (the CORS ones).
pub type Headers = [(&'static str, String)];

pub fn json_response(status: u16, body: &Value, headers: &Headers) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let response = tiny_http::Response::from_string(body.to_string()).with_status_code(status);
    with_headers(response, &[headers, &[("Content-Type", "application/json".to_string())]].concat())
}

pub fn with_headers<R: std::io::Read>(
    mut response: tiny_http::Response<R>,
    headers: &Headers,
) -> tiny_http::Response<R> {
    for (name, value) in headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    response
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

/// Waits for the whole answer, then sends it as one chat or text completion.
pub fn whole(request: tiny_http::Request, answer: Answer, headers: &Headers) {
    let Answer { events, chat, tools, logprobs: asked, id, created, model, .. } = answer;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut entries = Vec::new();
    let (status, body) = loop {
        match events.recv() {
            Ok(Event::Text { text: piece, logprobs }) => {
                text.push_str(&piece);
                entries.extend(logprobs);
            }
            Ok(Event::Reasoning(piece)) => reasoning.push_str(&piece),
            Ok(Event::Done { finish_reason, prompt_tokens, completion_tokens }) => {
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
                break (200, body);
            }
            Ok(Event::Failed { status, message }) => break (status, error_body(&message, "server_error")),
            Err(_) => break (500, error_body("the generation ended unexpectedly", "server_error")),
        }
    };
    let _ = request.respond(json_response(status, &body, headers));
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
/// usage, then `data: [DONE]`. A write that fails means the client left: returning drops
/// `events`, which cancels the job at its next token.
pub fn stream(request: tiny_http::Request, answer: Answer, headers: &Headers) {
    let Answer { events, chat, tools, logprobs: asked, usage_chunk, id, created, model } = answer;
    let mut scan = tools.map(|format| ToolCallScan::new(format).named_after(&id));
    let mut out = request.into_writer();
    // Chunked, so the body's end is marked and the connection can serve the client's next request.
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
    );
    let object = if chat { "chat.completion.chunk" } else { "text_completion" };
    let envelope =
        |choices: Value| json!({"id": id, "object": object, "created": created, "model": model, "choices": choices});
    // Bytes of answer text sent so far: where the next chunk's tokens begin.
    let mut offset = 0;
    let mut chunk = |text: Option<&str>, entries: &[Logprob], finish: Option<&str>, usage: Option<Value>| {
        let logprobs = if text.is_some() { choice_logprobs(chat, asked, entries, offset) } else { Value::Null };
        offset += text.map_or(0, str::len);
        let choice = if chat {
            let delta = match text {
                Some(t) => json!({"role": "assistant", "content": t}),
                None => json!({}),
            };
            json!({"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text.unwrap_or(""), "logprobs": logprobs, "finish_reason": finish})
        };
        let mut body = envelope(json!([choice]));
        if let Some(usage) = usage {
            body["usage"] = usage;
        }
        format!("data: {body}\n\n")
    };
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut send = |text: &str| {
        let framed = format!("{:x}\r\n{text}\r\n", text.len());
        out.write_all(framed.as_bytes()).and_then(|_| out.flush()).is_ok()
    };
    // Streamed tool calls: a chunk each with its index (counted in `sent`), id, name and whole
    // arguments.
    let call_chunks = |calls: &[Value], sent: &mut usize| {
        let mut events = String::new();
        for call in calls {
            let mut call = call.clone();
            call["index"] = json!(*sent);
            *sent += 1;
            let delta = json!({"role": "assistant", "tool_calls": [call]});
            let body = envelope(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]));
            events.push_str(&format!("data: {body}\n\n"));
        }
        events
    };
    let mut calls_sent = 0;
    for event in events {
        let last = match event {
            Event::Text { text, logprobs } => {
                let (text, calls) = match scan.as_mut() {
                    Some(scan) => scan.push(&text),
                    None => (text, Vec::new()),
                };
                if !text.is_empty() && !send(&chunk(Some(&text), &logprobs, None, None)) {
                    return;
                }
                if !calls.is_empty() && !send(&call_chunks(&calls, &mut calls_sent)) {
                    return;
                }
                continue;
            }
            Event::Reasoning(text) => {
                let delta = json!({"role": "assistant", "reasoning_content": text});
                let body = envelope(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]));
                if !send(&format!("data: {body}\n\n")) {
                    return;
                }
                continue;
            }
            Event::Done { mut finish_reason, prompt_tokens, completion_tokens } => {
                if let Some(scan) = scan.as_mut() {
                    let (rest, calls) = scan.finish();
                    if !rest.is_empty() && !send(&chunk(Some(&rest), &[], None, None)) {
                        return;
                    }
                    if !calls.is_empty() && !send(&call_chunks(&calls, &mut calls_sent)) {
                        return;
                    }
                    if scan.called() {
                        finish_reason = calls_finish(finish_reason);
                    }
                }
                let usage = usage(prompt_tokens, completion_tokens);
                if !usage_chunk {
                    chunk(None, &[], Some(finish_reason), Some(usage))
                } else if send(&chunk(None, &[], Some(finish_reason), None)) {
                    let mut body = envelope(json!([]));
                    body["usage"] = usage;
                    format!("data: {body}\n\n")
                } else {
                    return;
                }
            }
            Event::Failed { message, .. } => format!("data: {}\n\n", error_body(&message, "server_error")),
        };
        if send(&last) && send("data: [DONE]\n\n") {
            send("");
        }
        return;
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
