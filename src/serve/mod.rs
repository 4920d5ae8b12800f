//! `hearth serve`: an OpenAI-compatible HTTP server. Connection threads parse and check
//! requests and queue jobs (a bounded queue: a full one answers 503) for the one worker that
//! owns the GPU session (`worker.rs`); answers stream back as Server-Sent Events or arrive whole.

pub mod api;
mod worker;

use crate::generate::Session;
use crate::model::Model;
use crate::model::state::SessionOptions;
use crate::prompt::{encode_chat, encode_raw};
use crate::sample::SamplerConfig;
use crate::{Error, Result};
use api::{ChatRequest, CompletionRequest, Options, error_body, usage};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use worker::{Event, Job};

pub struct ServeOptions {
    /// host:port to listen on (port 0: any free port).
    pub addr: String,
    pub api_key: Option<String>,
    /// Requests that may wait while one runs.
    pub queue: usize,
    pub ctx: usize,
    pub batch: usize,
    /// Longest answer when a request does not say.
    pub max_tokens: usize,
    pub sampling: SamplerConfig,
}

/// What the connection threads share.
struct Shared {
    model: Arc<Model>,
    name: String,
    options: ServeOptions,
    jobs: SyncSender<Job>,
    next_id: AtomicU64,
}

/// Largest request body read.
const MAX_BODY: u64 = 16 << 20;

/// Serves until `shutdown` is set; `on_ready` gets the address actually bound. Requests
/// already queued are finished before it returns.
pub fn serve(
    model: Arc<Model>,
    options: ServeOptions,
    shutdown: Arc<AtomicBool>,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let server = tiny_http::Server::http(&options.addr)
        .map_err(|e| Error::Input(format!("cannot listen on {}: {e}", options.addr)))?;
    let session_options = SessionOptions { ctx: options.ctx, batch: options.batch.min(options.ctx), logit_rows: 1 };
    let session = Session::new(model.clone(), session_options)?;
    let (jobs, queue) = mpsc::sync_channel(options.queue);
    let worker = std::thread::spawn(move || worker::serve_jobs(session, queue));
    let name = model.config.name.clone().unwrap_or_else(|| "hearth".into());
    let shared = Arc::new(Shared { model, name, options, jobs, next_id: AtomicU64::new(1) });
    if let Some(addr) = server.server_addr().to_ip() {
        on_ready(addr);
    }
    while !shutdown.load(Ordering::SeqCst) {
        match server.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(Some(request)) => {
                let shared = shared.clone();
                std::thread::spawn(move || handle(request, &shared));
            }
            Ok(None) => {}
            Err(e) => log::warn!("accepting a connection: {e}"),
        }
    }
    // Connection threads still running hold their own senders; the worker ends with the last.
    drop(shared);
    let _ = worker.join();
    Ok(())
}

enum Reply {
    Json(u16, Value),
    Stream { events: Receiver<Event>, chat: bool, id: String },
    Whole { events: Receiver<Event>, chat: bool, id: String },
}

fn bad(message: impl Into<String>) -> Reply {
    Reply::Json(400, error_body(&message.into(), "invalid_request_error"))
}

fn handle(mut request: tiny_http::Request, shared: &Shared) {
    let reply = route(&mut request, shared);
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let json_response = |status: u16, body: Value| {
        let header = tiny_http::Header::from_bytes("Content-Type", "application/json").ok();
        let mut response = tiny_http::Response::from_string(body.to_string()).with_status_code(status);
        if let Some(h) = header {
            response.add_header(h);
        }
        response
    };
    match reply {
        Reply::Json(status, body) => {
            let _ = request.respond(json_response(status, body));
        }
        Reply::Whole { events, chat, id } => {
            let mut text = String::new();
            let body = loop {
                match events.recv() {
                    Ok(Event::Text(t)) => text.push_str(&t),
                    Ok(Event::Done { finish_reason, prompt_tokens, completion_tokens }) => {
                        let choice = if chat {
                            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason})
                        } else {
                            json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason})
                        };
                        let object = if chat { "chat.completion" } else { "text_completion" };
                        break (
                            200,
                            json!({"id": id, "object": object, "created": created, "model": shared.name,
                            "choices": [choice], "usage": usage(prompt_tokens, completion_tokens)}),
                        );
                    }
                    Ok(Event::Failed(m)) => break (500, error_body(&m, "server_error")),
                    Err(_) => break (500, error_body("the generation ended unexpectedly", "server_error")),
                }
            };
            let _ = request.respond(json_response(body.0, body.1));
        }
        Reply::Stream { events, chat, id } => stream(request, events, chat, &id, created, &shared.name),
    }
}

/// Server-Sent Events: a chunk per piece of text, a last chunk with the finish reason, then
/// `data: [DONE]`. A write that fails means the client left: dropping `events` cancels the job.
fn stream(request: tiny_http::Request, events: Receiver<Event>, chat: bool, id: &str, created: u64, model: &str) {
    let mut out = request.into_writer();
    // Chunked, so the body's end is marked and the connection can serve the client's next request.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    let object = if chat { "chat.completion.chunk" } else { "text_completion" };
    let chunk = |text: Option<&str>, finish: Option<&str>, extra: Option<Value>| {
        let choice = if chat {
            let delta = match text {
                Some(t) => json!({"role": "assistant", "content": t}),
                None => json!({}),
            };
            json!({"index": 0, "delta": delta, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
        };
        let mut body = json!({"id": id, "object": object, "created": created, "model": model, "choices": [choice]});
        if let Some(usage) = extra {
            body["usage"] = usage;
        }
        format!("data: {body}\n\n")
    };
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut send = |text: String| {
        let framed = format!("{:x}\r\n{text}\r\n", text.len());
        out.write_all(framed.as_bytes()).and_then(|_| out.flush()).is_ok()
    };
    for event in events {
        let ok = match event {
            Event::Text(t) => send(chunk(Some(&t), None, None)),
            Event::Done { finish_reason, prompt_tokens, completion_tokens } => {
                send(chunk(None, Some(finish_reason), Some(usage(prompt_tokens, completion_tokens))));
                send("data: [DONE]\n\n".into());
                let _ = out.write_all(b"0\r\n\r\n").and_then(|_| out.flush());
                return;
            }
            Event::Failed(m) => {
                send(format!("data: {}\n\n", error_body(&m, "server_error")));
                let _ = out.write_all(b"0\r\n\r\n").and_then(|_| out.flush());
                return;
            }
        };
        if !ok {
            return;
        }
    }
}

fn route(request: &mut tiny_http::Request, shared: &Shared) -> Reply {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().as_str().to_string();
    if let Some(key) = shared.options.api_key.as_ref().filter(|_| path.starts_with("/v1/")) {
        let given = request.headers().iter().find(|h| h.field.equiv("Authorization")).map(|h| h.value.as_str());
        if given != Some(format!("Bearer {key}").as_str()) {
            let message = "a valid API key is required (Authorization: Bearer KEY)";
            return Reply::Json(401, error_body(message, "authentication_error"));
        }
    }
    match (method.as_str(), path.as_str()) {
        ("GET", "/health") => Reply::Json(200, json!({"status": "ok"})),
        ("GET", "/v1/models") => Reply::Json(
            200,
            json!({"object": "list", "data": [{"id": shared.name, "object": "model", "created": 0, "owned_by": "hearth"}]}),
        ),
        ("POST", "/v1/chat/completions") => match body::<ChatRequest>(request) {
            Ok(r) if r.messages.is_empty() => bad("messages must not be empty"),
            Ok(mut r) => {
                let options = std::mem::take(&mut r.options);
                match encode_chat(&shared.model, &r.chat_messages()) {
                    Ok(ids) => submit(shared, true, ids, options),
                    Err(e) => bad(e.to_string()),
                }
            }
            Err(reply) => reply,
        },
        ("POST", "/v1/completions") => match body::<CompletionRequest>(request) {
            Ok(r) => match r.prompt.into_vec().as_slice() {
                [prompt] => match encode_raw(&shared.model, prompt) {
                    Ok(ids) => submit(shared, false, ids, r.options),
                    Err(e) => bad(e.to_string()),
                },
                _ => bad("exactly one prompt per request"),
            },
            Err(reply) => reply,
        },
        _ => Reply::Json(404, error_body(&format!("no route for {method} {path}"), "invalid_request_error")),
    }
}

/// Checks a request's numbers against the model and the context, then queues it.
fn submit(shared: &Shared, chat: bool, prompt: Vec<u32>, o: Options) -> Reply {
    let ctx = shared.options.ctx;
    if prompt.is_empty() {
        return bad("the prompt is empty");
    }
    if prompt.len() >= ctx {
        return bad(format!("the prompt is {} tokens, beyond the context of {ctx} tokens", prompt.len()));
    }
    let room = ctx - prompt.len();
    let max_tokens = match o.max_completion_tokens.or(o.max_tokens) {
        Some(n) if n <= 0 => return bad(format!("max_tokens must be at least 1 (got {n})")),
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(room),
        None => shared.options.max_tokens.min(room),
    };
    let mut sampler = shared.options.sampling.clone();
    if let Some(t) = o.temperature {
        sampler.temperature = t;
    }
    if let Some(p) = o.top_p {
        sampler.top_p = p;
    }
    if let Some(seed) = o.seed {
        sampler.seed = seed;
    }
    if let Err(e) = sampler.check() {
        return bad(format!("{e} (temperature, top_p)"));
    }
    if o.presence_penalty.is_some_and(|p| p != 0.0) || o.frequency_penalty.is_some_and(|p| p != 0.0) {
        log::info!("presence_penalty and frequency_penalty are not applied");
    }
    let stops: Vec<String> =
        o.stop.map(|s| s.into_vec()).unwrap_or_default().into_iter().filter(|s| !s.is_empty()).collect();
    let (events, receiver) = mpsc::channel();
    let job = Job { prompt, max_tokens, sampler, stops, events };
    match shared.jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            let message = format!("the server is busy ({} requests waiting); retry later", shared.options.queue);
            return Reply::Json(503, error_body(&message, "server_error"));
        }
        Err(TrySendError::Disconnected(_)) => {
            return Reply::Json(503, error_body("the server is shutting down", "server_error"));
        }
    }
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}-{n}", if chat { "chatcmpl" } else { "cmpl" });
    if o.stream { Reply::Stream { events: receiver, chat, id } } else { Reply::Whole { events: receiver, chat, id } }
}

fn body<T: serde::de::DeserializeOwned>(request: &mut tiny_http::Request) -> std::result::Result<T, Reply> {
    let mut text = String::new();
    request
        .as_reader()
        .take(MAX_BODY)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("cannot read the request body: {e}")))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("malformed request: {e}")))
}
