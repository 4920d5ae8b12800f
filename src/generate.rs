//! A generation session: its own KV cache and buffers over a shared model, prompt processing
//! in batches, and one forward step per generated token.

use crate::grammar::Constraint;
use crate::logprobs::{TokenLogprobs, token_logprobs};
use crate::model::Model;
use crate::model::state::{SessionOptions, State};
use crate::ops::argmax::Argmax;
use crate::ops::{Op, Row, Step, sequence_rows};
use crate::reasoning::{Channel, ReasoningSplit};
use crate::{Error, Result};
use std::sync::Arc;

pub struct Session {
    pub model: Arc<Model>,
    pub(crate) state: State,
    ops: Vec<Box<dyn Op>>,
    argmax: Argmax,
    /// The argmax among the tokens in `state.allowed`.
    argmax_within: Argmax,
    /// Host time spent recording and submitting steps, in ns (`hearth bench` reports it).
    host_ns: u64,
}

/// What a forward step should leave behind.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// Nothing: an early chunk of a long prompt.
    Nothing,
    /// The greedy next token after the last input token.
    Argmax,
    /// The greedy next token after each input token from this index on (a batched decode step:
    /// one row per sequence after a prefill's).
    ArgmaxEach(usize),
    /// The same, each among the tokens its row's mask in `state.allowed` allows.
    ArgmaxEachWithin(usize),
    /// The same among the tokens `state.allowed` allows.
    ArgmaxWithin,
    /// Logits of the inputs from this index on.
    LogitsFrom(usize),
}

impl Session {
    /// A session of one sequence.
    pub fn new(model: Arc<Model>, options: SessionOptions) -> Result<Session> {
        Session::with_sequences(model, options, 1)
    }

    /// A session of `sequences` independent sequences (each with its own part of the KV cache,
    /// `model/memory.rs`), which `decode_greedy` and `decode_logits` advance one token each in
    /// one step. The single-sequence methods (`next_greedy`, `position`, …) work on sequence 0.
    pub fn with_sequences(model: Arc<Model>, options: SessionOptions, sequences: usize) -> Result<Session> {
        if sequences == 0 {
            return Err(Error::Input("a session needs at least one sequence".into()));
        }
        let gpu = &model.gpu;
        let options = SessionOptions {
            batch: options.batch.max(sequences),
            logit_rows: options.logit_rows.max(sequences),
            ..options
        };
        let state = State::new(gpu, &model.config, options, sequences)?;
        if state.options.logit_rows < sequences {
            return Err(Error::Unsupported(format!(
                "{sequences} sequences at once need {sequences} rows of logits; {} fit {}'s bindings",
                state.options.logit_rows, gpu.info.name
            )));
        }
        let ops = model.arch.graph(gpu, &model.config, &state)?;
        let argmax = Argmax::new(gpu, &state.steps, &state.logits, &state.token, None)?;
        let argmax_within = Argmax::new(gpu, &state.steps, &state.logits, &state.token, Some(&state.allowed))?;
        gpu.check().map_err(|e| {
            Error::Gpu(format!(
                "{e} (while allocating {:.1} MB for a session of {} tokens)",
                state.gpu_bytes() as f64 / 1e6,
                options.ctx
            ))
        })?;
        Ok(Session { model, state, ops, argmax, argmax_within, host_ns: 0 })
    }

    pub fn options(&self) -> SessionOptions {
        self.state.options
    }

    /// Tokens in the memory of sequence 0.
    pub fn position(&self) -> usize {
        self.state.memory.position(0)
    }

    /// Sequences the session holds.
    pub fn sequences(&self) -> usize {
        self.state.memory.sequences()
    }

    /// Tokens in the memory of sequence `seq`.
    pub fn position_of(&self, seq: usize) -> usize {
        self.state.memory.position(seq)
    }

    /// Host time spent recording and submitting steps since the session began, in ns: the CPU
    /// side of each step, apart from waiting for the GPU.
    pub fn host_ns(&self) -> u64 {
        self.host_ns
    }

    /// Dispatches of the last step.
    pub fn last_dispatches(&self) -> u32 {
        self.state.steps.last_dispatches()
    }

    /// Forgets every token of sequence 0: the next one is position 0.
    pub fn reset(&mut self) {
        self.reset_sequence(0);
    }

    /// Forgets every token of sequence `seq`.
    pub fn reset_sequence(&mut self, seq: usize) {
        self.state.memory.reset(&self.model.gpu, seq);
    }

    /// Comes back to the longest start of `prompt` the session holds and can resume from
    /// (leaving at least its last token to feed, whose logits come next) and forgets the rest;
    /// returns how many of `prompt`'s tokens are kept. A conversation's next turn re-renders
    /// the whole chat, so only its new tokens are processed (model/memory.rs says how far
    /// back each kind of layer can come, and how a checkpoint extends that).
    pub fn reuse_prefix(&mut self, prompt: &[u32]) -> usize {
        self.reuse_prefix_of(0, prompt)
    }

    /// How many tokens from the start of `prompt` sequence `seq` holds (what `reuse_prefix_of`
    /// could keep at most).
    pub fn held_prefix(&self, seq: usize, prompt: &[u32]) -> usize {
        self.state.memory.held_prefix(seq, prompt)
    }

    /// Lets `reuse_prefix` keep the cached tokens after ones a prompt drops, moved back to
    /// their new positions, instead of computing them again: instant, but beyond the first
    /// layer they still carry a trace of the dropped tokens (model/memory.rs). Returns whether
    /// this model's memory can move (not with sliding-window or recurrent layers).
    pub fn allow_cache_moves(&mut self, allowed: bool) -> bool {
        self.state.memory.allow_moves(allowed)
    }

    /// `reuse_prefix` for sequence `seq`.
    pub fn reuse_prefix_of(&mut self, seq: usize, prompt: &[u32]) -> usize {
        self.state.memory.reuse_prefix(&self.model.gpu, seq, prompt)
    }

    /// Saves what `reuse_prefix` needs to come back to this position later, where the
    /// memory's rings would have moved past it (a generation does this after its prompt).
    pub fn checkpoint(&mut self) {
        self.state.memory.checkpoint(&self.model.gpu);
    }

    pub fn gpu_bytes(&self) -> u64 {
        self.state.gpu_bytes()
    }

    /// Of those, the bytes of the sequence's memory: its caches, recurrent states and their
    /// checkpoint copies.
    pub fn memory_bytes(&self) -> u64 {
        self.state.memory.gpu_bytes()
    }

    fn check_room(&self, seq: usize, n: usize) -> Result<()> {
        self.state.memory.check_room(seq, n, self.state.options.ctx)
    }

    fn validate_ids(&self, tokens: &[u32]) -> Result<()> {
        let vocab = self.model.config.n_vocab;
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        Ok(())
    }

    /// Writes the ids of `tokens` (at most one batch, after the ones sequence 0 holds) and
    /// returns the step's uniform, its rows and the ops that compute `want`, for the caller to
    /// record.
    pub(crate) fn prepare(&self, tokens: &[u32], want: Want) -> (Step, Vec<Row>, Vec<&dyn Op>) {
        self.prepare_rows(tokens, self.next_rows(0, tokens.len()), want)
    }

    /// The rows of the next `n` tokens of sequence `seq`, after the ones it holds.
    fn next_rows(&self, seq: usize, n: usize) -> Vec<Row> {
        sequence_rows(seq, self.position_of(seq), n).collect()
    }

    /// `prepare` for tokens of any sequences, each at the sequence and position `rows` give.
    fn prepare_rows(&self, tokens: &[u32], rows: Vec<Row>, want: Want) -> (Step, Vec<Row>, Vec<&dyn Op>) {
        let n = tokens.len() as u32;
        let logits_from = match want {
            Want::Nothing => n,
            Want::Argmax | Want::ArgmaxWithin => n - 1,
            Want::ArgmaxEach(i) | Want::ArgmaxEachWithin(i) => i as u32,
            Want::LogitsFrom(i) => i as u32,
        };
        let pos0 = rows.first().map_or(0, |r| r[1]);
        let step = Step { n_tokens: n, pos0, logits_from, pad: 0 };
        self.model.gpu.queue.write_buffer(&self.state.ids, 0, bytemuck::cast_slice(tokens));
        let mut ops: Vec<&dyn Op> = self.ops.iter().map(|o| o.as_ref()).collect();
        match want {
            Want::Argmax | Want::ArgmaxEach(_) => ops.push(&self.argmax),
            Want::ArgmaxWithin | Want::ArgmaxEachWithin(_) => ops.push(&self.argmax_within),
            _ => {}
        }
        (step, rows, ops)
    }

    /// Runs `tokens` (at most one batch) of sequence 0 through the model and submits the work.
    fn step(&mut self, tokens: &[u32], want: Want) -> Result<()> {
        self.step_rows(tokens, self.next_rows(0, tokens.len()), want)
    }

    /// Runs `tokens`, each at its row's sequence and position, through the model and submits
    /// the work.
    fn step_rows(&mut self, tokens: &[u32], rows: Vec<Row>, want: Want) -> Result<()> {
        let started = web_time::Instant::now();
        let gpu = &self.model.gpu;
        gpu.check()?;
        let (step, rows, ops) = self.prepare_rows(tokens, rows, want);
        let commands = self.state.steps.record(gpu, &ops, &step, &rows)?;
        // What the host reads after this step goes into a kept staging buffer, in this submit.
        let readback = match want {
            Want::Argmax | Want::ArgmaxWithin | Want::ArgmaxEach(_) | Want::ArgmaxEachWithin(_) => {
                Some((&self.state.token, &self.state.token_staging))
            }
            Want::LogitsFrom(i) if i + 1 == tokens.len() => {
                Some((&self.state.logits.buffer, &self.state.logits_staging))
            }
            _ => None,
        };
        match readback {
            Some((from, to)) => {
                let mut copy = gpu.device.create_command_encoder(&Default::default());
                copy.copy_buffer_to_buffer(from, 0, to, 0, to.size());
                gpu.queue.submit([commands, copy.finish()]);
            }
            None => {
                gpu.queue.submit([commands]);
            }
        }
        for (row, &token) in rows.iter().zip(tokens) {
            self.state.memory.advance(row[0] as usize, &[token]);
        }
        self.host_ns += started.elapsed().as_nanos() as u64;
        Ok(())
    }

    /// Feeds `tokens` (any number, in batches) and leaves the last one's logits computed.
    fn feed(&mut self, tokens: &[u32], last: Want) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::Input("nothing to evaluate: no tokens".into()));
        }
        self.validate_ids(tokens)?;
        self.check_room(0, tokens.len())?;
        let batch = self.state.options.batch;
        let chunks: Vec<&[u32]> = tokens.chunks(batch).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let want = if i + 1 == chunks.len() { last } else { Want::Nothing };
            let want = match want {
                Want::LogitsFrom(_) => Want::LogitsFrom(chunk.len() - 1),
                w => w,
            };
            self.step(chunk, want)?;
        }
        Ok(())
    }

    /// Feeds `tokens` and returns the greedy choice for the next token (computed on the GPU).
    pub async fn next_greedy(&mut self, tokens: &[u32]) -> Result<u32> {
        self.feed(tokens, Want::Argmax)?;
        self.read_token().await
    }

    /// Feeds `tokens` and returns the greedy choice among the tokens `allowed` allows (a bit
    /// per token, `grammar::Constraint::allowed`), chosen on the GPU.
    pub async fn next_greedy_within(&mut self, tokens: &[u32], allowed: &[u32]) -> Result<u32> {
        let words = self.model.config.n_vocab.div_ceil(32);
        if allowed.len() != words {
            return Err(Error::Input(format!("a token mask of {} words for {words}", allowed.len())));
        }
        self.model.gpu.queue.write_buffer(&self.state.allowed, 0, bytemuck::cast_slice(allowed));
        self.feed(tokens, Want::ArgmaxWithin)?;
        let id = self.read_token().await?;
        chosen_within(allowed, id)?;
        Ok(id)
    }

    async fn read_token(&self) -> Result<u32> {
        Ok(self.read_tokens(1).await?[0])
    }

    /// The first `n` tokens the last step's argmax picked.
    async fn read_tokens(&self, n: usize) -> Result<Vec<u32>> {
        let bytes = self.model.gpu.read_staging(&self.state.token_staging, (n * 4) as u64).await?;
        let ids: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        if ids.len() < n {
            return Err(Error::Gpu("short token read-back".into()));
        }
        Ok(ids[..n].to_vec())
    }

    /// Feeds `tokens` into sequence `seq` (in batches) and computes nothing after them: a
    /// prompt but its last token, which then joins a batched decode step.
    pub fn prefill(&mut self, seq: usize, tokens: &[u32]) -> Result<()> {
        self.validate_ids(tokens)?;
        self.check_room(seq, tokens.len())?;
        for chunk in tokens.chunks(self.state.options.batch) {
            self.step_rows(chunk, self.next_rows(seq, chunk.len()), Want::Nothing)?;
        }
        Ok(())
    }

    /// Checks a batched step's inputs and returns its tokens and rows: the prefill's first.
    fn batch_rows(&self, batch: Batch) -> Result<(Vec<u32>, Vec<Row>)> {
        let decode = batch.decode;
        if decode.is_empty() || decode.len() > self.state.options.logit_rows {
            return Err(Error::Input(format!(
                "a decode step takes 1 to {} sequences (got {})",
                self.state.options.logit_rows,
                decode.len()
            )));
        }
        let (mut tokens, mut rows) = (Vec::new(), Vec::new());
        if let Some((seq, prompt)) = batch.prefill {
            if decode.iter().any(|&(s, _)| s == seq) {
                return Err(Error::Input(format!("sequence {seq} both prefilled and decoded in one step")));
            }
            self.check_room(seq, prompt.len())?;
            tokens.extend_from_slice(prompt);
            rows.extend(self.next_rows(seq, prompt.len()));
        }
        for (i, &(seq, token)) in decode.iter().enumerate() {
            if decode[..i].iter().any(|&(s, _)| s == seq) {
                return Err(Error::Input(format!("sequence {seq} twice in one decode step")));
            }
            self.check_room(seq, 1)?;
            tokens.push(token);
            rows.extend(self.next_rows(seq, 1));
        }
        if tokens.len() > self.state.options.batch {
            return Err(Error::Input(format!(
                "a step of {} tokens exceeds the session's batch of {}",
                tokens.len(),
                self.state.options.batch
            )));
        }
        self.validate_ids(&tokens)?;
        Ok((tokens, rows))
    }

    /// One step over `batch`: the greedy next token of each decoded sequence, in their order
    /// (computed on the GPU).
    pub async fn decode_greedy(&mut self, batch: Batch<'_>) -> Result<Vec<u32>> {
        let (tokens, rows) = self.batch_rows(batch)?;
        self.step_rows(&tokens, rows, Want::ArgmaxEach(batch.prefilled()))?;
        self.read_tokens(batch.decode.len()).await
    }

    /// As `decode_greedy`, each decoded sequence's token chosen among those its mask in
    /// `allowed` allows (a bit per token, `grammar::Constraint::allowed`; all bits set for one
    /// without a grammar), on the GPU.
    pub async fn decode_greedy_within(&mut self, batch: Batch<'_>, allowed: &[Vec<u32>]) -> Result<Vec<u32>> {
        let (tokens, rows) = self.batch_rows(batch)?;
        let words = self.model.config.n_vocab.div_ceil(32);
        if allowed.len() != batch.decode.len() || allowed.iter().any(|mask| mask.len() != words) {
            return Err(Error::Input(format!("one token mask of {words} words per decoded sequence")));
        }
        self.model.gpu.queue.write_buffer(&self.state.allowed, 0, bytemuck::cast_slice(&allowed.concat()));
        self.step_rows(&tokens, rows, Want::ArgmaxEachWithin(batch.prefilled()))?;
        let ids = self.read_tokens(batch.decode.len()).await?;
        for (&id, mask) in ids.iter().zip(allowed) {
            chosen_within(mask, id)?;
        }
        Ok(ids)
    }

    /// As `decode_greedy`, returning the logits that follow each decoded token,
    /// `[sequence][vocab]`.
    pub async fn decode_logits(&mut self, batch: Batch<'_>) -> Result<Vec<Vec<f32>>> {
        let (tokens, rows) = self.batch_rows(batch)?;
        self.step_rows(&tokens, rows, Want::LogitsFrom(batch.prefilled()))?;
        let all = self.model.gpu.read_activations(&self.state.logits, batch.decode.len()).await?;
        Ok(all.chunks(self.model.config.n_vocab).map(<[f32]>::to_vec).collect())
    }

    /// Feeds `tokens` and returns the logits that follow the last one.
    pub async fn next_logits(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.feed(tokens, Want::LogitsFrom(0))?;
        let staging = &self.state.logits_staging;
        let bytes = self.model.gpu.read_staging(staging, staging.size()).await?;
        let row =
            bytes.get(..self.model.config.n_vocab * 4).ok_or_else(|| Error::Gpu("short logits read-back".into()))?;
        Ok(bytemuck::pod_collect_to_vec(row))
    }

    /// Feeds `tokens` and returns the logits after each of them from `from` on,
    /// `[token][vocab]` (what perplexity needs), in as many steps as the session's batch and
    /// logits buffer need.
    pub async fn logits_from(&mut self, tokens: &[u32], from: usize) -> Result<Vec<f32>> {
        if from >= tokens.len() {
            return Err(Error::Input(format!("no logits wanted: {} tokens, logits from {from}", tokens.len())));
        }
        self.validate_ids(tokens)?;
        self.check_room(0, tokens.len())?;
        let SessionOptions { batch, logit_rows, .. } = self.state.options;
        let mut out = Vec::with_capacity((tokens.len() - from) * self.model.config.n_vocab);
        let mut done = 0;
        while done < tokens.len() {
            let first_wanted = from.saturating_sub(done);
            let len = (tokens.len() - done).min(batch).min(first_wanted + logit_rows);
            let chunk = &tokens[done..done + len];
            if first_wanted >= len {
                self.step(chunk, Want::Nothing)?;
            } else {
                self.step(chunk, Want::LogitsFrom(first_wanted))?;
                out.extend(self.model.gpu.read_activations(&self.state.logits, len - first_wanted).await?);
            }
            done += len;
        }
        Ok(out)
    }
}

/// Refuses a token the masked argmax chose outside its mask: it falls back to an index outside
/// the mask where no allowed token has a finite logit.
fn chosen_within(allowed: &[u32], id: u32) -> Result<()> {
    if crate::grammar::is_allowed(allowed, id) {
        return Ok(());
    }
    Err(Error::Gpu(format!("token {id} was chosen outside the allowed ones (no finite logit among them?)")))
}

/// What one batched step feeds (`Session::decode_greedy`): a piece of one sequence's prompt,
/// after which nothing is computed, then one token of each of several other sequences, whose
/// next tokens the step computes.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// `(sequence, tokens)`: the next tokens of a prompt that sequence is being fed.
    pub prefill: Option<(usize, &'a [u32])>,
    /// `(sequence, token)` each.
    pub decode: &'a [(usize, u32)],
}

impl<'a> Batch<'a> {
    /// One token of each of several sequences, and no prefill.
    pub fn decode(decode: &'a [(usize, u32)]) -> Batch<'a> {
        Batch { prefill: None, decode }
    }

    /// Rows of prefill before the decoded ones.
    fn prefilled(&self) -> usize {
        self.prefill.map_or(0, |(_, tokens)| tokens.len())
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The caller's callback asked to stop.
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    /// Time to process the prompt and pick the first token.
    pub prompt_seconds: f64,
    /// Tokens generated (an end-of-generation token is not counted).
    pub generated: usize,
    /// Forward steps that fed a generated token back, and their time.
    pub decode_steps: usize,
    pub decode_seconds: f64,
    pub stop: StopReason,
}

impl GenerationStats {
    pub fn prompt_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_seconds.max(1e-9)
    }
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.decode_steps as f64 / self.decode_seconds.max(1e-9)
    }
}

/// Room left for generated tokens after `prompt` in a context of `ctx` tokens; refuses an empty
/// prompt and one that leaves no room, the refusal ending with `hint` (what the caller can do).
pub fn room_after(prompt: &[u32], ctx: usize, hint: &str) -> Result<usize> {
    if prompt.is_empty() {
        return Err(Error::Input("the prompt is empty".into()));
    }
    if prompt.len() >= ctx {
        return Err(Error::Input(format!(
            "the prompt is {} tokens, which does not fit the context of {ctx} tokens ({hint})",
            prompt.len()
        )));
    }
    Ok(ctx - prompt.len())
}

/// Generation one token at a time, for callers that pull tokens (the browser's async
/// iterator, a server streaming to a client) rather than take a callback.
pub struct Generation {
    sampler: crate::sample::Sampler,
    /// The prompt and the tokens generated so far (what repetition penalties look at).
    history: Vec<u32>,
    /// What the next step feeds: the uncached part of the prompt, then the last token.
    input: Vec<u32>,
    max_tokens: usize,
    stats: GenerationStats,
    done: bool,
    /// How many of the most likely tokens to report with each one's log-probability, if asked.
    logprobs: Option<usize>,
    last_logprobs: Option<TokenLogprobs>,
    /// Structured output: the grammar the tokens must follow.
    constraint: Option<Constraint>,
}

impl Generation {
    /// Generation after `prompt`, whose first `cached` tokens are already in the session's
    /// KV cache (see `Session::reuse_prefix`).
    pub fn new(
        prompt: &[u32],
        cached: usize,
        max_tokens: usize,
        sampler: crate::sample::Sampler,
    ) -> Result<Generation> {
        if cached >= prompt.len() {
            return Err(Error::Input("nothing to evaluate: the prompt is empty or already cached".into()));
        }
        let input = prompt[cached..].to_vec();
        Ok(Generation {
            sampler,
            history: prompt.to_vec(),
            stats: GenerationStats {
                prompt_tokens: input.len(),
                prompt_seconds: 0.0,
                generated: 0,
                decode_steps: 0,
                decode_seconds: 0.0,
                stop: StopReason::MaxTokens,
            },
            input,
            max_tokens,
            done: max_tokens == 0,
            logprobs: None,
            last_logprobs: None,
            constraint: None,
        })
    }

    /// Keeps each generated token's log-probability and the `top` most likely tokens' (see
    /// `take_logprobs`). Generation then reads back every step's logits, even when greedy.
    pub fn keep_logprobs(&mut self, top: usize) {
        self.logprobs = Some(top);
    }

    /// Holds the generated tokens to `constraint`'s grammar; generation ends where the grammar
    /// is complete (or earlier, where it may end and the model chooses to).
    pub fn constrain(&mut self, constraint: Constraint) {
        self.constraint = Some(constraint);
    }

    /// The log-probabilities of the token `next` returned last, when `keep_logprobs` asked.
    pub fn take_logprobs(&mut self) -> Option<TokenLogprobs> {
        self.last_logprobs.take()
    }

    /// The next token, or None once generation has ended (`stats().stop` says why). Stops at
    /// tokens `is_eog` accepts, which are not returned.
    pub async fn next(&mut self, session: &mut Session, is_eog: impl Fn(u32) -> bool) -> Result<Option<u32>> {
        if !self.wants_step(session.position(), session.options().ctx)? {
            return Ok(None);
        }
        let started = web_time::Instant::now();
        let next = self.choose(session).await.inspect_err(|_| self.done = true)?;
        if self.stats.generated == 0 {
            // A conversation's next turn comes back to the end of this prompt at least.
            session.checkpoint();
        }
        self.accept(next, started.elapsed().as_secs_f64(), is_eog)
    }

    /// Whether another step should run, for a sequence holding `position` tokens in a context
    /// of `ctx`: not once generation has ended, nor where the grammar is complete (generation
    /// then ends); a step the context has no room for ends it with an error.
    pub fn wants_step(&mut self, position: usize, ctx: usize) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        if position + self.input.len() > ctx {
            self.done = true;
            return Err(Error::Input(format!(
                "the context ({ctx} tokens) is full after {} generated tokens (raise --ctx or lower -n)",
                self.stats.generated
            )));
        }
        if self.constraint.as_ref().is_some_and(Constraint::is_complete) {
            self.stats.stop = StopReason::EndOfGeneration;
            self.done = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// What the next step feeds: the prompt's uncached part, then the last token.
    pub fn input(&self) -> &[u32] {
        &self.input
    }

    /// Takes all but the last token of the pending input, for the caller to feed itself
    /// (`Session::prefill`), so that the next step feeds one token.
    pub fn take_prefill(&mut self) -> Vec<u32> {
        let keep = self.input.len().saturating_sub(1);
        self.input.drain(..keep).collect()
    }

    /// Whether the next token is chosen from logits on the host (sampling, log-probabilities),
    /// rather than by the GPU's argmax.
    pub fn needs_logits(&self) -> bool {
        !self.sampler.config().is_plain_greedy() || self.logprobs.is_some()
    }

    /// The tokens the grammar allows next (a bit each), where there is one.
    pub fn allowed(&mut self) -> Result<Option<Vec<u32>>> {
        self.constraint.as_mut().map(Constraint::allowed).transpose()
    }

    /// Chooses the next token on the host from the logits after the input: by the sampler,
    /// among the tokens the grammar allows; its log-probabilities kept if asked.
    pub fn choose_from(&mut self, logits: &[f32]) -> Result<u32> {
        let allowed = self.allowed()?;
        let id = self
            .sampler
            .sample_within(logits, &self.history, allowed.as_deref())
            .ok_or_else(|| Error::Gpu("the model gave no finite logit to any token the grammar allows".into()))?;
        self.last_logprobs = self.logprobs.map(|top| token_logprobs(logits, id, top));
        Ok(id)
    }

    /// Takes `next`, chosen after a step that took `seconds`: the token, or None where it ends
    /// generation (a token `is_eog` accepts, not returned).
    pub fn accept(&mut self, next: u32, seconds: f64, is_eog: impl Fn(u32) -> bool) -> Result<Option<u32>> {
        if self.stats.generated == 0 {
            self.stats.prompt_seconds += seconds;
        } else {
            self.stats.decode_steps += 1;
            self.stats.decode_seconds += seconds;
        }
        if is_eog(next) {
            self.stats.stop = StopReason::EndOfGeneration;
            self.done = true;
            return Ok(None);
        }
        if let Some(constraint) = &mut self.constraint {
            constraint.accept(next).inspect_err(|_| self.done = true)?;
        }
        self.stats.generated += 1;
        self.history.push(next);
        self.input = vec![next];
        self.done = self.stats.generated == self.max_tokens;
        Ok(Some(next))
    }

    /// Feeds the pending input and picks the next token: greedy on the GPU where the sampler
    /// allows, else from the logits read back; among the tokens the constraint allows, if any.
    async fn choose(&mut self, session: &mut Session) -> Result<u32> {
        if !self.needs_logits() {
            return match self.allowed()? {
                Some(allowed) => session.next_greedy_within(&self.input, &allowed).await,
                None => session.next_greedy(&self.input).await,
            };
        }
        let logits = session.next_logits(&self.input).await?;
        self.choose_from(&logits)
    }

    /// Ends generation early: the caller wants no more tokens.
    pub fn cancel(&mut self) {
        if !self.done {
            self.done = true;
            self.stats.stop = StopReason::Cancelled;
        }
    }

    pub fn stats(&self) -> &GenerationStats {
        &self.stats
    }

    /// Whether generation has ended (`stats().stop` says why).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Generated tokens as text: each token's bytes held until its character is complete
/// (`StreamDecoder`), its text sorted into reasoning or answer (`ReasoningSplit`).
pub struct TextDecoder {
    decoder: crate::tokenizer::StreamDecoder,
    split: ReasoningSplit,
    /// The channel of the last piece of text.
    channel: Channel,
}

/// One token's text, as `TextDecoder` gives it.
pub struct DecodedText {
    pub channel: Channel,
    /// The text to show in that channel: empty while a character's bytes are incomplete, and
    /// for reasoning markup.
    pub text: String,
    /// The text as decoded, markup included.
    pub raw: String,
}

impl TextDecoder {
    /// For a generation after `prompt` (which may have opened a reasoning block).
    pub fn new(model: &Model, prompt: &[u32]) -> TextDecoder {
        TextDecoder {
            decoder: crate::tokenizer::StreamDecoder::new(),
            split: ReasoningSplit::new(model.reasoning, prompt),
            channel: Channel::Answer,
        }
    }

    pub fn push(&mut self, tok: &crate::tokenizer::Tokenizer, id: u32) -> DecodedText {
        let raw = self.decoder.push(tok, id);
        let text = match self.split.classify(id, &raw) {
            Some((channel, text)) => {
                self.channel = channel;
                text.into_owned()
            }
            None => String::new(),
        };
        DecodedText { channel: self.channel, text, raw }
    }

    /// The bytes still held back at the end of generation, as text of the last channel (None
    /// when none are).
    pub fn finish(&mut self) -> Option<DecodedText> {
        let rest = self.decoder.finish();
        (!rest.is_empty()).then(|| DecodedText { channel: self.channel, text: rest.clone(), raw: rest })
    }
}

/// One generated token as text.
pub struct Piece<'a> {
    /// Its decoded text: empty while a character's bytes are incomplete, and for reasoning
    /// markup (`<think>`, harmony's channel headers).
    pub text: &'a str,
    /// Reasoning or answer (`reasoning::ReasoningSplit`).
    pub channel: Channel,
    /// The text as decoded, markup included (for raw completions).
    pub raw: &'a str,
    /// Its log-probabilities, if kept.
    pub logprobs: Option<TokenLogprobs>,
}

/// Runs `generation` to its end as text: `on_text` gets each token's piece and returns false to
/// stop; whatever bytes are still held back come last (without log-probabilities), even after
/// an error. Stops at end-of-generation tokens.
pub async fn generate_text(
    session: &mut Session,
    generation: &mut Generation,
    mut on_text: impl FnMut(Piece) -> bool,
) -> Result<()> {
    let model = session.model.clone();
    let tok = &model.tokenizer;
    let mut pieces = TextDecoder::new(&model, &generation.history);
    let result = loop {
        match generation.next(session, |t| tok.is_eog(t)).await {
            Ok(Some(id)) => {
                let logprobs = generation.take_logprobs();
                let d = pieces.push(tok, id);
                if !on_text(Piece { text: &d.text, channel: d.channel, raw: &d.raw, logprobs }) {
                    generation.cancel();
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    if let Some(rest) = pieces.finish() {
        on_text(Piece { text: &rest.text, channel: rest.channel, raw: &rest.raw, logprobs: None });
    }
    result
}
