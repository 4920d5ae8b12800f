//! The one thread that owns the GPU session: it takes jobs in arrival order, reuses the KV
//! cache where a prompt extends the previous one, and sends text back as it is generated. A
//! job whose client has gone (its receiver dropped) is cancelled at the next token, and so is
//! the running one when shutdown is asked for twice.

use super::status::{Counters, Shutdown};
use crate::generate::{Generation, Session, StopReason, generate_text};
use crate::sample::{Sampler, SamplerConfig};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};

pub struct Job {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    /// Generation ends before any of these texts, which are not returned.
    pub stops: Vec<String>,
    pub events: Sender<Event>,
}

pub enum Event {
    Text(String),
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

/// Text released so far, holding back what could still become a stop string.
struct StopScan {
    stops: Vec<String>,
    text: String,
    sent: usize,
}

impl StopScan {
    /// Adds `piece`; returns the text safe to send and whether a stop string was reached.
    fn push(&mut self, piece: &str) -> (String, bool) {
        self.text.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|s| self.text.find(s.as_str())).min() {
            let out = self.text[self.sent.min(at)..at].to_string();
            self.sent = at;
            return (out, true);
        }
        let hold = self.stops.iter().map(|s| s.len().saturating_sub(1)).max().unwrap_or(0);
        let mut until = self.text.len().saturating_sub(hold).max(self.sent);
        while !self.text.is_char_boundary(until) {
            until -= 1;
        }
        let out = self.text[self.sent..until].to_string();
        self.sent = until;
        (out, false)
    }

    fn rest(&mut self) -> String {
        let out = self.text[self.sent..].to_string();
        self.sent = self.text.len();
        out
    }
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
    let mut scan = StopScan { stops: job.stops, text: String::new(), sent: 0 };
    // Set when the job ends before generation would: Completed for a stop string.
    let mut ended = None;
    let result = pollster::block_on(generate_text(session, &mut generation, |piece| {
        if ended.is_some() {
            return false;
        }
        let (text, hit) = scan.push(piece);
        if !text.is_empty() && job.events.send(Event::Text(text)).is_err() {
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
        None => {
            let rest = scan.rest();
            if !rest.is_empty() && job.events.send(Event::Text(rest)).is_err() {
                return Ok((Outcome::Abandoned, None));
            }
            false
        }
    };
    let finish_reason = match stats.stop {
        StopReason::MaxTokens if !stopped => "length",
        _ => "stop",
    };
    let done = Event::Done { finish_reason, prompt_tokens: job.prompt.len(), completion_tokens: stats.generated };
    Ok((Outcome::Completed, Some(done)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_end_the_text_before_them_even_across_pieces() {
        let mut scan = StopScan { stops: vec!["\nUser:".into()], text: String::new(), sent: 0 };
        let mut out = String::new();
        for piece in ["Hello", " there", "\nUs", "er: more"] {
            let (text, hit) = scan.push(piece);
            out.push_str(&text);
            if hit {
                break;
            }
        }
        assert_eq!(out, "Hello there");
        let mut plain = StopScan { stops: vec![], text: String::new(), sent: 0 };
        assert_eq!(plain.push("é and more").0, "é and more");
    }
}
