//! One request being answered in its sequence of the worker's session: its `Generation`, and
//! the turning of its tokens into events — text decoded as it completes, reasoning apart, stop
//! strings held back, log-probabilities with their text — as `generate_text` does for one
//! sequence. The worker (`worker.rs`) runs the steps; this takes each step's token.

use super::api::{Logprob, TokenText};
use super::status::{Counters, Shutdown};
use super::stop_scan::{Released, StopScan};
use super::worker::{Choice, Event, Job, SHUTTING_DOWN};
use crate::generate::{DecodedText, Generation, Session, StopReason, TextDecoder};
use crate::logprobs::TokenLogprobs;
use crate::model::Model;
use crate::reasoning::Channel;
use crate::sample::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc::UnboundedSender;

/// How a request ended, and what /health counts it as.
pub enum Ending {
    /// Its generation ended, or a stop string was met: the `Done` event.
    Completed(Event),
    /// Its client left.
    Abandoned,
    /// Shutdown could not wait for it.
    Interrupted,
    Failed(String),
}

pub struct Running {
    /// The session's sequence it holds.
    pub seq: usize,
    model: Arc<Model>,
    generation: Generation,
    /// Prompt tokens still to feed before its first decode step.
    prefill: Vec<u32>,
    prompt_tokens: usize,
    pieces: TextDecoder,
    scan: StopScan,
    split_reasoning: bool,
    events: UnboundedSender<Event>,
    /// Set where the request ends before its generation would: `Completed` (holding nothing
    /// yet) for a stop string.
    ended: Option<Ending>,
}

impl Running {
    /// Starts choice `index` of `job` in sequence `seq`, which keeps what it holds of the
    /// job's prompt (each choice samples with its own seed: the job's plus its index); a choice
    /// that cannot start gives back where to say why.
    pub fn start(
        session: &mut Session,
        seq: usize,
        job: &Job,
        index: usize,
        choice: Choice,
        counters: &Counters,
    ) -> Result<Running, (UnboundedSender<Event>, crate::Error)> {
        let cached = session.reuse_prefix_of(seq, &job.prompt);
        let sampler = SamplerConfig { seed: job.sampler.seed.wrapping_add(index as u64), ..job.sampler.clone() };
        let mut generation = match Generation::new(&job.prompt, cached, job.max_tokens, Sampler::new(sampler)) {
            Ok(generation) => generation,
            Err(e) => return Err((choice.events, e)),
        };
        counters.prompt_tokens.fetch_add(job.prompt.len() as u64, Ordering::SeqCst);
        counters.prompt_tokens_cached.fetch_add(cached as u64, Ordering::SeqCst);
        if let Some(top) = job.logprobs {
            generation.keep_logprobs(top);
        }
        if let Some(constraint) = choice.constraint {
            generation.constrain(constraint);
        }
        let model = session.model.clone();
        Ok(Running {
            seq,
            prefill: generation.take_prefill(),
            prompt_tokens: job.prompt.len(),
            pieces: TextDecoder::new(&model, &job.prompt),
            scan: StopScan::new(job.stops.clone()),
            split_reasoning: job.split_reasoning,
            events: choice.events,
            ended: None,
            model,
            generation,
        })
    }

    /// Takes up to `most` tokens of the prompt still to feed, for the next step to feed.
    pub fn prefill_chunk(&mut self, most: usize) -> Vec<u32> {
        let n = self.prefill.len().min(most);
        self.prefill.drain(..n).collect()
    }

    /// Whether its prompt is all in the cache.
    pub fn prefilled(&self) -> bool {
        self.prefill.is_empty()
    }

    /// Whether it takes part in the next decode step; false once it is over (its client gone
    /// included), and for a step its context has no room for (it fails).
    pub fn wants_step(&mut self, session: &Session) -> bool {
        if self.ended.is_some() {
            return false;
        }
        if self.events.is_closed() {
            self.end(Ending::Abandoned);
            return false;
        }
        match self.generation.wants_step(session.position_of(self.seq), session.options().ctx) {
            Ok(wants) => wants,
            Err(e) => {
                self.end(Ending::Failed(e.to_string()));
                false
            }
        }
    }

    /// What its next decode step feeds: its sequence and its last token.
    pub fn input(&self) -> (usize, u32) {
        (self.seq, self.generation.input().last().copied().unwrap_or(0))
    }

    pub fn generation(&mut self) -> &mut Generation {
        &mut self.generation
    }

    /// Whether it has ended (its generation, or early).
    pub fn is_over(&self) -> bool {
        self.ended.is_some() || self.generation.is_done()
    }

    /// Ends it with `ending` unless it already has, and stops its generation.
    pub fn end(&mut self, ending: Ending) {
        self.generation.cancel();
        self.ended.get_or_insert(ending);
    }

    /// Takes the token chosen for it after a step of `seconds`, and sends what text it completes.
    pub fn take(&mut self, id: u32, seconds: f64, shutdown: &Shutdown) {
        let model = self.model.clone();
        let tok = &model.tokenizer;
        match self.generation.accept(id, seconds, |t| tok.is_eog(t)) {
            Ok(Some(id)) => {
                let logprobs = self.generation.take_logprobs();
                let decoded = self.pieces.push(tok, id);
                self.piece(&decoded, logprobs, shutdown);
            }
            Ok(None) => {}
            Err(e) => self.end(Ending::Failed(e.to_string())),
        }
    }

    /// Sends one token's text: reasoning apart, answer text through the stop strings.
    fn piece(&mut self, decoded: &DecodedText, logprobs: Option<TokenLogprobs>, shutdown: &Shutdown) {
        if self.ended.is_some() {
            return;
        }
        if self.split_reasoning && decoded.channel == Channel::Reasoning {
            if !decoded.text.is_empty() && self.events.send(Event::Reasoning(decoded.text.clone())).is_err() {
                self.end(Ending::Abandoned);
            }
            return;
        }
        let text = if self.split_reasoning { &decoded.text } else { &decoded.raw };
        let shown = logprobs.map(|l| shown(&self.model.tokenizer, &l));
        let (released, hit) = self.scan.push(text, shown);
        if !self.send(released) {
            self.end(Ending::Abandoned);
        } else if shutdown.cancelling() {
            self.end(Ending::Interrupted);
        } else if hit {
            let done = self.done_event(true);
            self.end(Ending::Completed(done));
        }
    }

    fn send(&self, released: Released) -> bool {
        let Released { text, logprobs } = released;
        text.is_empty() || self.events.send(Event::Text { text, logprobs }).is_ok()
    }

    fn done_event(&self, stopped: bool) -> Event {
        let stats = self.generation.stats();
        let finish_reason = match stats.stop {
            StopReason::MaxTokens if !stopped => "length",
            _ => "stop",
        };
        Event::Done { finish_reason, prompt_tokens: self.prompt_tokens, completion_tokens: stats.generated }
    }

    /// Ends it: the text still held back goes out, then its outcome is counted and its last
    /// event sent (so /health agrees with what its client has been told).
    pub fn finish(mut self, counters: &Counters) {
        if let Some(rest) = self.pieces.finish() {
            self.piece(&rest, None, &Shutdown::default());
        }
        let generated = self.generation.stats().generated;
        counters.tokens_generated.fetch_add(generated as u64, Ordering::SeqCst);
        let ending = match self.ended.take() {
            Some(ending) => ending,
            None => {
                let rest = self.scan.rest();
                if self.send(rest) { Ending::Completed(self.done_event(false)) } else { Ending::Abandoned }
            }
        };
        let last = match ending {
            Ending::Completed(done) => {
                Counters::add(&counters.completed);
                Some(done)
            }
            Ending::Abandoned => {
                Counters::add(&counters.cancelled);
                None
            }
            Ending::Interrupted => {
                Counters::add(&counters.cancelled);
                Some(Event::Failed { status: 503, message: SHUTTING_DOWN.into() })
            }
            Ending::Failed(message) => {
                Counters::add(&counters.failed);
                Some(Event::Failed { status: 500, message })
            }
        };
        if let Some(event) = last {
            let _ = self.events.send(event);
        }
    }
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
