//! `hearth serve`: an OpenAI-compatible HTTP server. The HTTP layer (`http.rs`) reads requests
//! within its limits; `route` parses and checks them and queues jobs (a bounded queue: a full
//! one answers 503) for the one worker that owns the GPU session (`worker.rs`); answers stream
//! back as Server-Sent Events or arrive whole (`reply.rs`). GET /health reports the requests in each stage (`status.rs`).

pub mod api;
mod cors;
mod forced_calls;
mod gemma4_args;
mod http;
mod llama_builtin;
mod reply;
mod running;
mod status;
mod stop_scan;
mod tool_calls;
mod web_page;
mod worker;

pub use status::Shutdown;

use crate::conversation::fit_messages;
use crate::generate::{Session, room_after};
use crate::grammar::Grammar;
use crate::logprobs::MAX_TOP;
use crate::model::Model;
use crate::model::state::SessionOptions;
use crate::prompt::{ChatExtras, encode_raw_within};
use crate::sample::SamplerConfig;
use crate::{Error, Result};
use api::{ChatRequest, CompletionRequest, Options, error_body};
use forced_calls::{ModelMarkup, ToolChoice, call_grammar};
use serde_json::{Value, json};
use status::Counters;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use tool_calls::{CallReading, ToolFormat};
use web_page::page_file;
use worker::{Choice, Job};

pub struct ServeOptions {
    /// host:port to listen on (port 0: any free port).
    pub addr: String,
    pub api_key: Option<String>,
    /// Web origins allowed besides this machine's pages (`*`: any); see `cors.rs`.
    pub allowed_origins: Vec<String>,
    /// Requests that may wait while others run.
    pub queue: usize,
    /// Requests answered at once, decoded together (sequences of the session).
    pub parallel: usize,
    pub session: SessionOptions,
    /// Longest answer when a request does not say.
    pub max_tokens: usize,
    pub sampling: SamplerConfig,
    /// Control-token text in message contents stays text (`encode_chat_within`).
    pub plain_content: bool,
    /// A built page (web/dist) served at `/`.
    pub web: Option<std::path::PathBuf>,
    /// Cached tokens after dropped messages move back instead of being processed again
    /// (`Session::allow_cache_moves`).
    pub context_shift: bool,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a connection may sit idle, or take to send a request's head or body.
    pub timeout: std::time::Duration,
}

/// What the connection threads share.
struct Shared {
    model: Arc<Model>,
    /// How the model writes tool calls: its family's way where its template knows tools, else
    /// the generic format's (`prompt::tools_in_messages`).
    tool_format: ToolFormat,
    name: String,
    options: ServeOptions,
    jobs: SyncSender<Job>,
    next_id: AtomicU64,
    counters: Arc<Counters>,
    shutdown: Arc<Shutdown>,
}

/// The largest request body read for a context of `ctx` tokens: room for a prompt filling it
/// at 64 bytes a token, JSON escapes included, and a megabyte besides. Beyond it, 413.
fn max_body(ctx: usize) -> u64 {
    (1 << 20) + 64 * ctx as u64
}

/// Serves until shutdown is asked for; `on_ready` gets the address actually bound. Then it
/// stops listening, finishes the request being answered (unless asked twice: then that is
/// cancelled at its next token), answers 503 to those waiting, and returns.
pub fn serve(
    model: Arc<Model>,
    options: ServeOptions,
    shutdown: Arc<Shutdown>,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let listener = std::net::TcpListener::bind(&options.addr)
        .map_err(|e| Error::Input(format!("cannot listen on {}: {e}", options.addr)))?;
    let cannot_serve = |e: std::io::Error| Error::Input(format!("cannot serve on {}: {e}", options.addr));
    let addr = listener.local_addr().map_err(cannot_serve)?;
    // Two threads: reading requests and writing answers is light; the GPU has its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hearth-http")
        .enable_io()
        .enable_time()
        .build()
        .map_err(cannot_serve)?;
    let mut session = Session::with_sequences(model.clone(), options.session, options.parallel)?;
    if !session.allow_cache_moves(options.context_shift) && options.context_shift {
        log::warn!("--context-shift: this model's sliding-window or recurrent layers cannot move their memory");
    }
    let (jobs, queue) = mpsc::sync_channel(options.queue);
    let counters = Arc::new(Counters::default());
    let worker = {
        let (counters, shutdown) = (counters.clone(), shutdown.clone());
        std::thread::spawn(move || worker::serve_jobs(session, queue, &counters, &shutdown))
    };
    let name = model.config.name.clone().unwrap_or_else(|| "hearth".into());
    let next_id = AtomicU64::new(1);
    let tool_format = match &model.chat_template {
        Some(t) if t.knows_tools() => ToolFormat::detect(t.source()),
        _ => ToolFormat::Hermes,
    };
    let shared = Arc::new(Shared { model, tool_format, name, options, jobs, next_id, counters, shutdown });
    on_ready(addr);
    let served = runtime.block_on(http::serve_connections(listener, shared.clone()));
    // Requests still being read or checked hold their own senders; the worker ends with the last.
    drop(shared);
    drop(runtime);
    let _ = worker.join();
    served
}

enum Reply {
    Json(u16, Value),
    /// A file of the page `--web` serves.
    Page(web_page::PageFile),
    /// 401, with the `WWW-Authenticate` challenge HTTP asks of it.
    Unauthorized(Value),
    Answer {
        answer: Box<reply::Answer>,
        stream: bool,
    },
}

fn bad(message: impl Into<String>) -> Reply {
    Reply::Json(400, error_body(&message.into(), "invalid_request_error"))
}

/// 401 where the server has an API key, the path is the API's and the request does not carry
/// the key (checked before the body is read).
fn refused_without_key(path: &str, authorization: Option<&str>, shared: &Shared) -> Option<Reply> {
    let key = shared.options.api_key.as_ref().filter(|_| path.starts_with("/v1/"))?;
    (authorization != Some(format!("Bearer {key}").as_str())).then(|| {
        let message = "a valid API key is required (Authorization: Bearer KEY)";
        Reply::Unauthorized(error_body(message, "authentication_error"))
    })
}

/// Answers a request whose body has been read (and bounded) by the HTTP layer.
fn route(method: &str, path: &str, body: &[u8], shared: &Shared) -> Reply {
    match (method, path) {
        ("GET", "/health") => {
            let mut health = shared.counters.to_json(&shared.shutdown);
            // Requests (or choices) answered at once: `running` never exceeds it.
            health["parallel"] = json!(shared.options.parallel);
            Reply::Json(200, health)
        }
        ("GET", "/v1/models") => Reply::Json(200, json!({"object": "list", "data": [model_card(shared)]})),
        // The one model, by the name /v1/models gives it (clients look it up before use).
        ("GET", p) if p.starts_with("/v1/models/") => {
            let id = percent_encoding::percent_decode_str(&p["/v1/models/".len()..]).decode_utf8_lossy();
            if id == shared.name {
                Reply::Json(200, model_card(shared))
            } else {
                let message = format!("no model {id:?} here (this server has {:?})", shared.name);
                Reply::Json(404, error_body(&message, "invalid_request_error"))
            }
        }
        ("POST", "/v1/embeddings") => {
            bad(format!("{} is a generative model, not an embedding model: this server has no embeddings", shared.name))
        }
        ("POST", "/v1/chat/completions") => match parse::<ChatRequest>(body) {
            Ok(r) if r.messages.is_empty() => bad("messages must not be empty"),
            Ok(mut r) => {
                let options = std::mem::take(&mut r.options);
                let logprobs = match (r.logprobs, r.top_logprobs) {
                    (Some(true), top) => top_count(top.unwrap_or(0), "top_logprobs").map(Some),
                    (_, None) => Ok(None),
                    (_, Some(_)) => Err(bad("top_logprobs needs \"logprobs\": true")),
                };
                let logprobs = match logprobs {
                    Ok(logprobs) => logprobs,
                    Err(reply) => return reply,
                };
                let messages = r.chat_messages();
                let choice = match ToolChoice::read(r.tool_choice.as_ref()) {
                    Ok(choice) => choice,
                    Err(message) => return bad(message),
                };
                // "none" leaves the tools out of the prompt.
                let tools = r.tools.as_deref().map(api::complete_tools);
                let tools = tools.as_deref().filter(|t| !t.is_empty() && choice != ToolChoice::None);
                let template = shared.model.chat_template.as_ref().map(|t| t.source());
                let token_id = |text: &str| shared.model.tokenizer.token_id(text);
                let markup = ModelMarkup { template, token_id: &token_id };
                let parallel = r.parallel_tool_calls.unwrap_or(true);
                let forced = match call_grammar(shared.tool_format, tools.unwrap_or(&[]), &choice, parallel, markup) {
                    Ok(forced) => forced,
                    Err(message) => return bad(message),
                };
                let builtin_tools = llama_builtin::builtin_names(template, tools.unwrap_or(&[]));
                let reading = tools.map(|_| CallReading {
                    format: shared.tool_format,
                    code_tool: llama_builtin::code_tool(&builtin_tools),
                });
                let extras =
                    ChatExtras { tools, builtin_tools: &builtin_tools, plain_content: shared.options.plain_content };
                // Room for the answer: what it asks for (or the server's default), at most half
                // the context, so that a long conversation keeps its recent turns.
                let ctx = shared.options.session.ctx;
                let asked = options.max_completion_tokens.or(options.max_tokens).and_then(|n| usize::try_from(n).ok());
                let room = asked.unwrap_or(shared.options.max_tokens).min(ctx / 2).max(1);
                match fit_messages(&shared.model, &messages, ctx, room, extras) {
                    Ok((ids, dropped)) => {
                        if dropped > 0 {
                            log::info!("left out the {dropped} oldest messages of a conversation to fit --ctx {ctx}");
                        }
                        let kind = Kind::Chat { tools: reading, dropped_messages: dropped };
                        submit(shared, kind, ids, options, logprobs, forced)
                    }
                    Err(e) => bad(e.to_string()),
                }
            }
            Err(reply) => reply,
        },
        ("POST", "/v1/completions") => match parse::<CompletionRequest>(body) {
            Ok(r) => match (r.prompt.into_vec().as_slice(), r.logprobs.map(|n| top_count(n, "logprobs")).transpose()) {
                (_, Err(reply)) => reply,
                ([prompt], Ok(logprobs)) => {
                    match encode_raw_within(&shared.model, prompt, shared.options.session.ctx) {
                        Ok(ids) => submit(shared, Kind::Text, ids, r.options, logprobs, None),
                        Err(e) => bad(e.to_string()),
                    }
                }
                _ => bad("exactly one prompt per request"),
            },
            Err(reply) => reply,
        },
        ("GET", p) if !p.starts_with("/v1/") => match shared.options.web.as_deref().and_then(|root| page_file(root, p))
        {
            Some(file) => Reply::Page(file),
            None => Reply::Json(404, error_body(&format!("no route for GET {path}"), "invalid_request_error")),
        },
        _ => Reply::Json(404, error_body(&format!("no route for {method} {path}"), "invalid_request_error")),
    }
}

/// The loaded model as OpenAI's /v1/models lists it.
fn model_card(shared: &Shared) -> Value {
    json!({"id": shared.name, "object": "model", "created": 0, "owned_by": "hearth"})
}

/// How many most likely tokens to report per step, checked.
fn top_count(n: i64, field: &str) -> std::result::Result<usize, Reply> {
    match usize::try_from(n) {
        Ok(n) if n <= MAX_TOP => Ok(n),
        _ => Err(bad(format!("{field} must be between 0 and {MAX_TOP} (got {n})"))),
    }
}

/// What a request is answered as.
enum Kind {
    /// A chat completion; with `tools`, tool calls are taken out of its text.
    Chat {
        tools: Option<CallReading>,
        /// The oldest messages left out to fit the context (`conversation::fit_messages`).
        dropped_messages: usize,
    },
    Text,
}

/// Checks a request's numbers against the model and the context, compiles the grammar its
/// answer must follow (`forced` tool calls, or its `response_format`), then queues it;
/// `logprobs`: how many most likely tokens to report with each generated one's
/// log-probability, if asked.
fn submit(
    shared: &Shared,
    kind: Kind,
    prompt: Vec<u32>,
    o: Options,
    logprobs: Option<usize>,
    forced: Option<Grammar>,
) -> Reply {
    let chat = matches!(kind, Kind::Chat { .. });
    let ctx = shared.options.session.ctx;
    let parallel = shared.options.parallel;
    let choices = match o.n.unwrap_or(1) {
        n if n >= 1 && n as u64 <= parallel as u64 => n as usize,
        n => {
            return bad(format!(
                "n must be between 1 and {parallel}, the requests this server answers at once (--parallel) (got {n})"
            ));
        }
    };
    let room = match room_after(&prompt, ctx, "shorten it, or start the server with a larger --ctx") {
        Ok(room) => room,
        Err(e) => return bad(e.to_string()),
    };
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
    if let Some(p) = o.presence_penalty {
        sampler.presence_penalty = p;
    }
    if let Some(p) = o.frequency_penalty {
        sampler.frequency_penalty = p;
    }
    if let Err(e) = sampler.check() {
        return bad(format!("{e} (temperature, top_p, presence_penalty, frequency_penalty)"));
    }
    let asked = match o.response_format.as_ref().map(api::response_grammar).transpose() {
        Ok(asked) => asked.flatten(),
        Err(message) => return bad(message),
    };
    let grammar = match (forced, asked) {
        (Some(_), Some(_)) => {
            return bad("a forced tool call (tool_choice) and a JSON response_format exclude each other");
        }
        (forced, asked) => forced.or(asked),
    };
    // Each choice follows the grammar with a matcher of its own.
    let mut job_choices = Vec::with_capacity(choices);
    let mut receivers = Vec::with_capacity(choices);
    for _ in 0..choices {
        let constraint = match grammar.as_ref().map(|g| shared.model.constraint(g)).transpose() {
            Ok(constraint) => constraint,
            Err(e) => return bad(e.to_string()),
        };
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        job_choices.push(Choice { constraint, events });
        receivers.push(receiver);
    }
    let stops: Vec<String> =
        o.stop.map(|s| s.into_vec()).unwrap_or_default().into_iter().filter(|s| !s.is_empty()).collect();
    let job = Job { prompt, max_tokens, sampler, stops, logprobs, split_reasoning: chat, choices: job_choices };
    let counters = &shared.counters;
    let busy = |message: String| {
        Counters::add(&counters.rejected);
        Reply::Json(503, error_body(&message, "server_error"))
    };
    if shared.shutdown.stopping() {
        return busy(worker::SHUTTING_DOWN.into());
    }
    // Counted before it is sent: the worker may take it (and count it out) at once.
    counters.waiting.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = shared.jobs.try_send(job) {
        counters.waiting.fetch_sub(1, Ordering::SeqCst);
        return busy(match e {
            TrySendError::Full(_) => {
                format!("the server is busy ({} requests waiting); retry later", shared.options.queue)
            }
            TrySendError::Disconnected(_) => worker::SHUTTING_DOWN.into(),
        });
    }
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}-{n}", if chat { "chatcmpl" } else { "cmpl" });
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let answer = reply::Answer {
        events: receivers,
        chat,
        tools: match &kind {
            Kind::Chat { tools, .. } => tools.clone(),
            Kind::Text => None,
        },
        dropped_messages: match kind {
            Kind::Chat { dropped_messages, .. } => dropped_messages,
            Kind::Text => 0,
        },
        logprobs: logprobs.is_some(),
        usage_chunk: o.stream_options.is_some_and(|s| s.include_usage),
        id,
        created,
        model: shared.name.clone(),
    };
    Reply::Answer { answer: Box::new(answer), stream: o.stream }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> std::result::Result<T, Reply> {
    serde_json::from_slice(body).map_err(|e| bad(format!("malformed request: {e}")))
}
