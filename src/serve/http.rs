//! The HTTP layer, on hyper: it accepts connections up to `--max-connections` (more wait in the
//! listen backlog), survives failed accepts (out of file descriptors: it waits for a connection
//! to end), closes connections idle or slow to send a request's head beyond `--timeout`, bounds
//! a request's head (431) and its body (413 from its declared length or as it arrives, 408
//! when it stalls), and writes `route`'s replies. A client that closes its connection drops its
//! answer, streamed or not, which cancels the job at its next token. At shutdown it stops
//! accepting and waits for the answers in progress.

use super::cors::{self, Cors};
use super::reply::{self, EventStream};
use super::{Reply, Shared, api::error_body, max_body, refused_without_key, route};
use crate::Result;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::Value;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The longest request head (request line and headers) read; beyond it, 431.
const MAX_HEAD: usize = 64 << 10;

/// How often the accept loop looks at the shutdown flag, and waits after a failed accept.
const PAUSE: Duration = Duration::from_millis(100);

type AnswerBody = Either<Full<Bytes>, SseBody>;

/// Serves connections on `listener` until shutdown is asked for, then waits for the answers in
/// progress (idle connections are closed at once).
pub async fn serve_connections(listener: std::net::TcpListener, shared: Arc<Shared>) -> Result<()> {
    let cannot_listen = |e: std::io::Error| crate::Error::Input(format!("cannot listen: {e}"));
    listener.set_nonblocking(true).map_err(cannot_listen)?;
    let listener = TcpListener::from_std(listener).map_err(cannot_listen)?;
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(shared.options.timeout).max_header_size(MAX_HEAD);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(shared.options.max_connections.max(1)));
    let mut failed_accepts = 0u64;
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = stopping(&shared) => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopping(&shared) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most often: a connection ending frees one.
                if failed_accepts == 0 {
                    log::warn!("cannot accept connections ({e}); retrying");
                }
                failed_accepts += 1;
                tokio::time::sleep(PAUSE).await;
                continue;
            }
        };
        if failed_accepts > 0 {
            log::warn!("accepting connections again after {failed_accepts} failed attempts");
            failed_accepts = 0;
        }
        let shared = shared.clone();
        let service = service_fn(move |request| answer(request, shared.clone()));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Returns once shutdown has been asked for.
async fn stopping(shared: &Shared) {
    while !shared.shutdown.stopping() {
        tokio::time::sleep(PAUSE).await;
    }
}

async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> std::result::Result<Response<AnswerBody>, Infallible> {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let headers = match cors::check(header("origin").as_deref(), &shared.options.allowed_origins) {
        Cors::Refused(origin) => {
            let message =
                format!("web pages from {origin} may not use this server (hearth serve --allow-origin {origin})");
            return Ok(json(403, &error_body(&message, "permission_error"), &[]));
        }
        Cors::Allowed(origin) if request.method() == Method::OPTIONS => cors::preflight_headers(&origin),
        Cors::Allowed(origin) => cors::answer_headers(&origin),
        Cors::NotAsked => Vec::new(),
    };
    if request.method() == Method::OPTIONS {
        return Ok(with_headers(Response::new(Either::Left(Full::default())), 204, &headers));
    }
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    if let Some(reply) = refused_without_key(&path, header("authorization").as_deref(), &shared) {
        return Ok(respond(reply, &headers).await);
    }
    let body = match read_body(request.into_body(), &shared).await {
        Ok(body) => body,
        Err(reply) => return Ok(respond(reply, &headers).await),
    };
    // Tokenizing a prompt and compiling a grammar take a while: off the connections' threads.
    let routed = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || route(&method, &path, &body, &shared)).await
    };
    let reply = routed.unwrap_or_else(|e| {
        log::error!("answering a request failed: {e}");
        Reply::Json(500, error_body("the server failed to answer this request", "server_error"))
    });
    Ok(respond(reply, &headers).await)
}

/// The whole body, refused when it is larger than the context could use (by its declared
/// length before any of it is read, or as it arrives) or when it stalls.
async fn read_body(body: Incoming, shared: &Shared) -> std::result::Result<Bytes, Reply> {
    let ctx = shared.options.session.ctx;
    let limit = max_body(ctx);
    let too_large = |size: String| {
        let message = format!(
            "the request body of {size} is larger than this server reads ({limit} bytes for a context of {ctx} tokens)"
        );
        Reply::Json(413, error_body(&message, "invalid_request_error"))
    };
    if let Some(length) = body.size_hint().exact().filter(|&n| n > limit) {
        return Err(too_large(format!("{length} bytes")));
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(shared.options.timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large("more bytes".into())),
        Ok(Err(e)) => {
            Err(Reply::Json(400, error_body(&format!("cannot read the request body: {e}"), "invalid_request_error")))
        }
        Err(_) => {
            let message = format!("the request body did not arrive within {:?}", shared.options.timeout);
            Err(Reply::Json(408, error_body(&message, "invalid_request_error")))
        }
    }
}

/// The header that says how many of a conversation's oldest messages were left out to fit the
/// context.
pub const DROPPED_MESSAGES: &str = "X-Hearth-Dropped-Messages";

async fn respond(reply: Reply, headers: &[(&'static str, String)]) -> Response<AnswerBody> {
    match reply {
        Reply::Json(status, body) => json(status, &body, headers),
        Reply::Page(file) => {
            let response = Response::new(Either::Left(Full::new(Bytes::from(file.bytes))));
            let page_headers = [("Content-Type", file.media_type.to_string()), ("Cache-Control", "no-cache".into())];
            with_headers(response, 200, &[headers, &page_headers].concat())
        }
        Reply::Unauthorized(body) => {
            let mut headers = headers.to_vec();
            headers.push(("WWW-Authenticate", "Bearer".to_string()));
            json(401, &body, &headers)
        }
        Reply::Answer { answer, stream } => {
            let mut headers = headers.to_vec();
            if answer.dropped_messages > 0 {
                headers.push((DROPPED_MESSAGES, answer.dropped_messages.to_string()));
            }
            if !stream {
                let (status, body) = reply::whole(*answer).await;
                return json(status, &body, &headers);
            }
            headers.push(("Content-Type", "text/event-stream".into()));
            headers.push(("Cache-Control", "no-cache".into()));
            with_headers(Response::new(Either::Right(SseBody(EventStream::new(*answer)))), 200, &headers)
        }
    }
}

fn json(status: u16, body: &Value, headers: &[(&'static str, String)]) -> Response<AnswerBody> {
    let response = Response::new(Either::Left(Full::new(Bytes::from(body.to_string()))));
    with_headers(response, status, &[headers, &[("Content-Type", "application/json".to_string())]].concat())
}

fn with_headers(
    mut response: Response<AnswerBody>,
    status: u16,
    headers: &[(&'static str, String)],
) -> Response<AnswerBody> {
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(*name), HeaderValue::try_from(value.as_str())) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A streamed answer's body: each piece as the worker sends it.
pub struct SseBody(EventStream);

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        self.get_mut().0.poll_next(cx).map(|text| text.map(|text| Ok(Frame::data(Bytes::from(text)))))
    }
}
