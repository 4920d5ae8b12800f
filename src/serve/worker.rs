//! The one thread that owns the GPU session: it takes jobs in arrival order into the session's
//! sequences (`--parallel`), reuses the KV cache where a prompt extends what a sequence holds,
//! and decodes all running requests in one step per token, a new request's prompt riding
//! along (`running.rs` turns each one's tokens into events). A job whose client has gone (its
//! receiver dropped) is cancelled at its next token, and so are the running ones when shutdown
//! is asked for twice.

use super::api::Logprob;
use super::running::{Ending, Running};
use super::status::{Counters, Shutdown};
use crate::generate::{Batch, Session};
use crate::grammar::Constraint;
use crate::sample::SamplerConfig;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
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
    /// One per answer asked for (`n`), each answered in a sequence of its own.
    pub choices: Vec<Choice>,
}

/// One answer of a job: the grammar it follows (structured output), and where its events go.
pub struct Choice {
    pub constraint: Option<Constraint>,
    pub events: UnboundedSender<Event>,
}

impl Job {
    /// Tells every choice's client that the job did not run.
    fn refuse(self, status: u16, message: &str) {
        for choice in self.choices {
            let _ = choice.events.send(Event::Failed { status, message: message.to_string() });
        }
    }
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

/// Runs jobs until the queue's senders are all gone and none is left running. Waiting jobs take
/// free sequences of the session in arrival order (each the sequence whose cache holds most of
/// its prompt); every round is one step that decodes every request whose prompt is in and
/// feeds as much of the oldest unfed prompt as the batch has room for. Once shutdown is asked
/// for, jobs still waiting are turned away. Each choice's outcome is counted before its last
/// event is sent, so /health agrees with what a client has already been told. A job of several
/// choices (`n`) waits, first in line, until as many sequences are free.
pub fn serve_jobs(mut session: Session, jobs: Receiver<Job>, counters: &Counters, shutdown: &Shutdown) {
    let mut running: Vec<Running> = Vec::new();
    let mut open = true;
    // A job taken from the queue that waits for enough free sequences (still counted waiting).
    let mut first_in_line: Option<Job> = None;
    loop {
        while running.len() < session.sequences() {
            let job = match first_in_line.take() {
                Some(job) => Some(job),
                None if !open => break,
                None if running.is_empty() => jobs.recv().ok(),
                None => match jobs.try_recv() {
                    Ok(job) => Some(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => None,
                },
            };
            let Some(mut job) = job else {
                open = false;
                break;
            };
            if shutdown.stopping() {
                counters.waiting.fetch_sub(1, Ordering::SeqCst);
                Counters::add(&counters.rejected);
                job.refuse(503, SHUTTING_DOWN);
                continue;
            }
            if running.len() + job.choices.len() > session.sequences() {
                first_in_line = Some(job);
                break;
            }
            counters.waiting.fetch_sub(1, Ordering::SeqCst);
            let choices = std::mem::take(&mut job.choices);
            for (index, choice) in choices.into_iter().enumerate() {
                let seq = free_sequence(&session, &running, &job.prompt);
                match Running::start(&mut session, seq, &job, index, choice, counters) {
                    Ok(request) => running.push(request),
                    Err((events, e)) => {
                        Counters::add(&counters.failed);
                        let _ = events.send(Event::Failed { status: 500, message: e.to_string() });
                    }
                }
            }
        }
        if running.is_empty() {
            if open {
                continue;
            }
            return;
        }
        counters.running.store(running.len(), Ordering::SeqCst);
        if let Err(e) = round(&mut session, &mut running, shutdown) {
            // A failed step may leave the caches of its sequences in any state.
            for request in &mut running {
                session.reset_sequence(request.seq);
                request.end(Ending::Failed(e.to_string()));
            }
        }
        let (over, going_on): (Vec<Running>, Vec<Running>) = running.into_iter().partition(Running::is_over);
        running = going_on;
        counters.running.store(running.len(), Ordering::SeqCst);
        for request in over {
            request.finish(counters);
        }
    }
}

/// The free sequence whose cache holds the longest start of `prompt`.
fn free_sequence(session: &Session, running: &[Running], prompt: &[u32]) -> usize {
    (0..session.sequences())
        .filter(|&seq| running.iter().all(|r| r.seq != seq))
        .max_by_key(|&seq| (session.held_prefix(seq, prompt), std::cmp::Reverse(seq)))
        .unwrap_or(0)
}

/// One round: one step of every request whose prompt is in, each taking its token, with as
/// much of the oldest prompt still to feed as the batch has room for (alone where no request
/// decodes).
fn round(session: &mut Session, running: &mut [Running], shutdown: &Shutdown) -> crate::Result<()> {
    let members: Vec<usize> =
        (0..running.len()).filter(|&i| running[i].prefilled() && running[i].wants_step(session)).collect();
    let room = session.options().batch.saturating_sub(members.len());
    let prefill = running
        .iter_mut()
        .find(|r| !r.prefilled())
        .map(|r| (r.seq, r.prefill_chunk(room)))
        .filter(|(_, chunk)| !chunk.is_empty());
    let fed = prefill.as_ref().map_or(0, |(_, chunk)| chunk.len());
    if members.is_empty() {
        if let Some((seq, chunk)) = prefill {
            // (Submitted, not waited for: the next round's time includes it.)
            session.prefill(seq, &chunk)?;
            log::debug!("round: {fed} prompt tokens alone");
        }
        return Ok(());
    }
    let inputs: Vec<(usize, u32)> = members.iter().map(|&i| running[i].input()).collect();
    let batch = Batch { prefill: prefill.as_ref().map(|(seq, chunk)| (*seq, chunk.as_slice())), decode: &inputs };
    let first: Vec<bool> = members.iter().map(|&i| running[i].generation().stats().generated == 0).collect();
    let started = web_time::Instant::now();
    let chosen: Vec<crate::Result<u32>> = if members.iter().any(|&i| running[i].generation().needs_logits()) {
        let logits = pollster::block_on(session.decode_logits(batch))?;
        members.iter().zip(&logits).map(|(&i, row)| running[i].generation().choose_from(row)).collect()
    } else {
        let masks = members.iter().map(|&i| running[i].generation().allowed()).collect::<crate::Result<Vec<_>>>()?;
        let ids = if masks.iter().all(Option::is_none) {
            pollster::block_on(session.decode_greedy(batch))?
        } else {
            let all = vec![u32::MAX; session.model.config.n_vocab.div_ceil(32)];
            let masks: Vec<Vec<u32>> = masks.into_iter().map(|m| m.unwrap_or_else(|| all.clone())).collect();
            pollster::block_on(session.decode_greedy_within(batch, &masks))?
        };
        ids.into_iter().map(Ok).collect()
    };
    if first.iter().any(|&f| f) {
        // A conversation's next turn comes back to the end of this prompt at least.
        session.checkpoint();
    }
    let seconds = started.elapsed().as_secs_f64();
    log::debug!("round: {} decoding, {fed} prompt tokens, {:.1} ms", members.len(), seconds * 1e3);
    for (&i, id) in members.iter().zip(chosen) {
        match id {
            Ok(id) => running[i].take(id, seconds, shutdown),
            Err(e) => running[i].end(Ending::Failed(e.to_string())),
        }
    }
    Ok(())
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
        let session =
            Session::new(model, SessionOptions { ctx: 64, batch: 8, logit_rows: 1, kv: Default::default() }).unwrap();
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
            choices: vec![Choice { constraint: None, events: sender }],
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
