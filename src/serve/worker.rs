//! The one thread that owns the GPU session: it takes jobs in arrival order, reuses the KV
//! cache where a prompt extends the previous one, and sends text back as it is generated. A
//! job whose client has gone (its receiver dropped) is cancelled at the next token.

use crate::generate::{Generation, Session, StopReason};
use crate::model::Model;
use crate::sample::{Sampler, SamplerConfig};
use crate::tokenizer::StreamDecoder;
use std::sync::Arc;
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
    Done { finish_reason: &'static str, prompt_tokens: usize, completion_tokens: usize },
    Failed(String),
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

/// Runs jobs until the queue's senders are all gone (shutdown).
pub fn serve_jobs(mut session: Session, jobs: Receiver<Job>) {
    for job in jobs {
        let events = job.events.clone();
        if let Err(e) = run(&mut session, job) {
            let _ = events.send(Event::Failed(e.to_string()));
            // A failed step may leave the cache in any state.
            session.truncate(0);
        }
    }
}

fn run(session: &mut Session, job: Job) -> crate::Result<()> {
    let model: Arc<Model> = session.model.clone();
    let tok = &model.tokenizer;
    let cached = session.reuse_prefix(&job.prompt);
    let mut generation = Generation::new(&job.prompt, cached, job.max_tokens, Sampler::new(job.sampler))?;
    let mut decoder = StreamDecoder::new();
    let mut scan = StopScan { stops: job.stops, text: String::new(), sent: 0 };
    let mut stopped = false;
    while let Some(id) = pollster::block_on(generation.next(session, |t| tok.is_eog(t)))? {
        let (text, hit) = scan.push(&decoder.push(tok, id));
        if (!text.is_empty() && job.events.send(Event::Text(text)).is_err()) || hit {
            stopped = hit;
            generation.cancel();
        }
    }
    if !stopped {
        let (text, hit) = scan.push(&decoder.finish());
        stopped = hit;
        let rest = if hit { text } else { text + &scan.rest() };
        if !rest.is_empty() {
            let _ = job.events.send(Event::Text(rest));
        }
    }
    let stats = generation.stats();
    let finish_reason = match stats.stop {
        StopReason::MaxTokens if !stopped => "length",
        _ => "stop",
    };
    let _ = job.events.send(Event::Done {
        finish_reason,
        prompt_tokens: job.prompt.len(),
        completion_tokens: stats.generated,
    });
    Ok(())
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
