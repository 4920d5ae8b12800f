//! The one thread that owns the GPU session: it takes jobs in arrival order, reuses the KV
//! cache where a prompt extends the previous one, and sends text back as it is generated. A
//! job whose client has gone (its receiver dropped) is cancelled at the next token, and so is
//! the running one when shutdown is asked for twice.

use super::api::{Logprob, TokenText};
use super::status::{Counters, Shutdown};
use super::stop_scan::{Released, StopScan};
use crate::generate::{Generation, Session, StopReason, generate_text};
use crate::grammar::Constraint;
use crate::logprobs::TokenLogprobs;
use crate::reasoning::Channel;
use crate::sample::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use tokio::sync::mpsc::UnboundedSender;

pub struct Job {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    /// Generation ends before any of these texts, which are not returned.
    pub stops: Vec<String>,
    /// Report each token's log-probability and this many most likely tokens'.
    pub logprobs: Option<usize>,
    /// Send reasoning apart (chat completions' `reasoning_content`); otherwise the text comes
    /// as the model wrote it, markup included (text completions).
    pub split_reasoning: bool,
    /// Structured output: the grammar the answer follows.
    pub constraint: Option<Constraint>,
    pub events: UnboundedSender<Event>,
}

pub enum Event {
    /// More of the answer, with the log-probabilities of the tokens that begin in it if asked.
    Text {
        text: String,
        logprobs: Vec<Logprob>,
    },
    /// More of the model's reasoning (never subject to stop strings).
    Reasoning(String),
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
                session.reset();
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
    if let Some(constraint) = job.constraint {
        generation.constrain(constraint);
    }
    let model = session.model.clone();
    let mut scan = StopScan::new(job.stops);
    let send = |released: Released| {
        let Released { text, logprobs } = released;
        text.is_empty() || job.events.send(Event::Text { text, logprobs }).is_ok()
    };
    // Set when the job ends before generation would: Completed for a stop string.
    let mut ended = None;
    let result = pollster::block_on(generate_text(session, &mut generation, |piece| {
        if ended.is_some() {
            return false;
        }
        if job.split_reasoning && piece.channel == Channel::Reasoning {
            if !piece.text.is_empty() && job.events.send(Event::Reasoning(piece.text.to_string())).is_err() {
                ended = Some(Outcome::Abandoned);
            }
            return ended.is_none();
        }
        let text = if job.split_reasoning { piece.text } else { piece.raw };
        let (released, hit) = scan.push(text, piece.logprobs.map(|l| shown(&model.tokenizer, &l)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::{AdapterChoice, Gpu};
    use crate::model::state::SessionOptions;
    use crate::model::testing::TinyLlama;
    use crate::model::{Model, ModelFile};
    use std::sync::Arc;
    use std::sync::mpsc;

    /// The events of one job after `prompt` on a tiny model with think tokens.
    fn events(prompt: Vec<u32>, split_reasoning: bool) -> Vec<Event> {
        let gpu = Arc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).unwrap());
        let file = ModelFile::from_bytes(TinyLlama { think_tokens: true, ..Default::default() }.to_gguf()).unwrap();
        let model = Arc::new(Model::load(gpu, &file).unwrap());
        let session = Session::new(model, SessionOptions { ctx: 64, batch: 8, logit_rows: 1 }).unwrap();
        let (jobs, queue) = mpsc::channel();
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let sampler = SamplerConfig { temperature: 0.0, ..SamplerConfig::default() };
        let job = Job {
            prompt,
            max_tokens: 12,
            sampler,
            stops: vec![],
            logprobs: None,
            split_reasoning,
            constraint: None,
            events: sender,
        };
        jobs.send(job).unwrap();
        drop(jobs);
        let counters = Counters::default();
        counters.waiting.store(1, Ordering::SeqCst);
        serve_jobs(session, queue, &counters, &Shutdown::default());
        std::iter::from_fn(|| receiver.try_recv().ok()).collect()
    }

    fn texts(events: &[Event]) -> (String, String) {
        let (mut reasoning, mut answer) = (String::new(), String::new());
        for e in events {
            match e {
                Event::Reasoning(t) => reasoning.push_str(t),
                Event::Text { text, .. } => answer.push_str(text),
                _ => {}
            }
        }
        (reasoning, answer)
    }

    #[test]
    fn reasoning_after_an_opened_think_block_comes_apart_from_the_answer() {
        // 259 is <think>: a prompt that opens the block, as Qwen 3.5's template does.
        let (reasoning, answer) = texts(&events(vec![72, 105, 259], true));
        assert!(!reasoning.is_empty() && answer.is_empty(), "{reasoning:?} / {answer:?}");
        // The same tokens as one text when the caller does not split (text completions).
        let (none, raw) = texts(&events(vec![72, 105, 259], false));
        assert_eq!((none.as_str(), raw.trim_start()), ("", reasoning.as_str()));
        // After a closed block, everything is answer.
        let (reasoning, answer) = texts(&events(vec![259, 260, 72], true));
        assert!(reasoning.is_empty() && !answer.is_empty());
    }
}
