//! The one thread that owns the GPU session: it takes jobs in arrival order, reuses the KV
//! cache where a prompt extends the previous one, and sends text back as it is generated. A
//! job whose client has gone (its receiver dropped) is cancelled at the next token, and so is
//! the running one when shutdown is asked for twice.

use super::api::{Logprob, TokenText};
use super::status::{Counters, Shutdown};
use super::stop_scan::{Released, StopScan};
use crate::generate::{Generation, Session, StopReason, generate_text};
use crate::logprobs::TokenLogprobs;
use crate::sample::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};

pub struct Job {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    /// Generation ends before any of these texts, which are not returned.
    pub stops: Vec<String>,
    /// Report each token's log-probability and this many most likely tokens'.
    pub logprobs: Option<usize>,
    pub events: Sender<Event>,
}

pub enum Event {
    /// More of the answer, with the log-probabilities of the tokens that begin in it if asked.
    Text {
        text: String,
        logprobs: Vec<Logprob>,
    },
    Done {
        finish_reason: &'static str,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
    /// The job did not finish: the HTTP status that says why, and the reason.
    Failed {
        status: u16,
        message: String,
    },
}

pub const SHUTTING_DOWN: &str = "the server is shutting down";

enum Outcome {
    Completed,
    /// Its client left.
    Abandoned,
    /// Shutdown could not wait for it.
    Interrupted,
}

/// Runs jobs until the queue's senders are all gone; once shutdown is asked for, jobs still
/// waiting are turned away. Each job's outcome is counted before its last event is sent, so
/// /health agrees with what a client has already been told.
pub fn serve_jobs(mut session: Session, jobs: Receiver<Job>, counters: &Counters, shutdown: &Shutdown) {
    for job in jobs {
        counters.waiting.fetch_sub(1, Ordering::SeqCst);
        let events = job.events.clone();
        if shutdown.stopping() {
            Counters::add(&counters.rejected);
            let _ = events.send(Event::Failed { status: 503, message: SHUTTING_DOWN.into() });
            continue;
        }
        counters.running.store(1, Ordering::SeqCst);
        let last = match run(&mut session, job, counters, shutdown) {
            Ok((Outcome::Completed, done)) => {
                Counters::add(&counters.completed);
                done
            }
            Ok((Outcome::Abandoned, _)) => {
                Counters::add(&counters.cancelled);
                None
            }
            Ok((Outcome::Interrupted, _)) => {
                Counters::add(&counters.cancelled);
                Some(Event::Failed { status: 503, message: SHUTTING_DOWN.into() })
            }
            Err(e) => {
                Counters::add(&counters.failed);
                // A failed step may leave the cache in any state.
                session.truncate(0);
                Some(Event::Failed { status: 500, message: e.to_string() })
            }
        };
        counters.running.store(0, Ordering::SeqCst);
        if let Some(event) = last {
            let _ = events.send(event);
        }
    }
}

/// Generates one job's answer, sending its text as it comes; returns how it ended and, for a
/// completed one, the `Done` event still to send.
fn run(
    session: &mut Session,
    job: Job,
    counters: &Counters,
    shutdown: &Shutdown,
) -> crate::Result<(Outcome, Option<Event>)> {
    let cached = session.reuse_prefix(&job.prompt);
    counters.prompt_tokens.fetch_add(job.prompt.len() as u64, Ordering::SeqCst);
    counters.prompt_tokens_cached.fetch_add(cached as u64, Ordering::SeqCst);
    let mut generation = Generation::new(&job.prompt, cached, job.max_tokens, Sampler::new(job.sampler))?;
    if let Some(top) = job.logprobs {
        generation.keep_logprobs(top);
    }
    let model = session.model.clone();
    let mut scan = StopScan::new(job.stops);
    let send = |released: Released| {
        let Released { text, logprobs } = released;
        text.is_empty() || job.events.send(Event::Text { text, logprobs }).is_ok()
    };
    // Set when the job ends before generation would: Completed for a stop string.
    let mut ended = None;
    let result = pollster::block_on(generate_text(session, &mut generation, |piece, logprobs| {
        if ended.is_some() {
            return false;
        }
        let (released, hit) = scan.push(piece, logprobs.map(|l| shown(&model.tokenizer, &l)));
        if !send(released) {
            ended = Some(Outcome::Abandoned);
        } else if shutdown.cancelling() {
            ended = Some(Outcome::Interrupted);
        } else if hit {
            ended = Some(Outcome::Completed);
        }
        ended.is_none()
    }));
    let stats = generation.stats();
    counters.tokens_generated.fetch_add(stats.generated as u64, Ordering::SeqCst);
    result?;
    let stopped = match ended {
        Some(Outcome::Completed) => true,
        Some(outcome) => return Ok((outcome, None)),
        None if !send(scan.rest()) => return Ok((Outcome::Abandoned, None)),
        None => false,
    };
    let finish_reason = match stats.stop {
        StopReason::MaxTokens if !stopped => "length",
        _ => "stop",
    };
    let done = Event::Done { finish_reason, prompt_tokens: job.prompt.len(), completion_tokens: stats.generated };
    Ok((Outcome::Completed, Some(done)))
}

/// A token's log-probabilities with the text of each token.
fn shown(tokenizer: &Tokenizer, logprobs: &TokenLogprobs) -> Logprob {
    let text = |id: u32, logprob: f32| {
        let bytes = tokenizer.token_piece(id);
        TokenText { text: String::from_utf8_lossy(&bytes).into_owned(), bytes, logprob }
    };
    Logprob {
        token: text(logprobs.id, logprobs.logprob),
        top: logprobs.top.iter().map(|&(id, logprob)| text(id, logprob)).collect(),
    }
}
