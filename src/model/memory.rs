//! What a sequence remembers between forward steps, as the family plans it per layer, and the
//! contract for coming back to an earlier position of it (prefix reuse).
//!
//! A full-attention layer keeps the keys and values of every position; a sliding-window layer
//! keeps a ring of the last `window + batch - 1` positions (a step writes its batch's keys
//! before it attends, so the first token of a batch still finds its window); a later family
//! adds recurrent state. The ids of the tokens seen are kept beside, so a new prompt that
//! starts the same way resumes after the longest start the memory can come back to:
//! - full-attention layers can come back to any earlier position (later keys are overwritten
//!   before they are read);
//! - a ring can come back as long as the window before that position is still in it: up to
//!   `batch` positions back, or any position while the ring has not wrapped;
//! - beyond that, to a checkpoint: a copy of the rings taken after a prompt (what the next turn
//!   of a conversation comes back to when the template drops the reasoning of the last reply).
//!
//! One `Memory` is one sequence; the step's activations are shared (`State`), so serving several
//! sequences at once is several `Memory`s bound in turn.

use super::config::ModelConfig;
use crate::gpu::{Gpu, KvTexture};
use crate::{Error, Result};

/// What one layer keeps of the positions before the current one, as its family declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerMemory {
    /// Keys and values of every position (full attention).
    Keys,
    /// Keys and values of the last `window` positions (sliding-window attention).
    Window(usize),
}

impl LayerMemory {
    /// Positions the layer's cache holds in a session of `ctx` positions and batches of `batch`.
    pub fn slots(self, ctx: usize, batch: usize) -> usize {
        match self {
            LayerMemory::Keys => ctx,
            LayerMemory::Window(w) => ctx.min(w + batch - 1),
        }
    }
}

/// Bytes of the caches of every layer of `c` for a session of `ctx` positions and batches of
/// `batch` (f32 keys and values), with the checkpoint's copy of the rings that wrap.
pub fn cache_bytes(c: &ModelConfig, ctx: usize, batch: usize) -> u64 {
    let per_position = 2 * c.heads().kv_dim() as u64 * 4;
    let slots = |l| c.layer_memory(l).slots(ctx, batch);
    let copies = (0..c.n_layer).map(slots).filter(|&s| s < ctx);
    ((0..c.n_layer).map(slots).sum::<usize>() + copies.sum::<usize>()) as u64 * per_position
}

/// One layer's cache textures.
pub struct LayerCache {
    pub memory: LayerMemory,
    pub k: KvTexture,
    pub v: KvTexture,
    /// The checkpoint's copy of a ring that wraps (fewer slots than the context).
    saved: Option<(KvTexture, KvTexture)>,
}

/// Where the checkpoint was taken, and how far the full-attention layers still hold what they
/// held then.
#[derive(Clone, Copy)]
struct Checkpoint {
    position: usize,
    /// Positions before this one are unchanged since the checkpoint (a rewind lowers it).
    intact: usize,
}

/// One sequence's memory: each layer's cache, the tokens it holds, and a checkpoint.
pub struct Memory {
    pub layers: Vec<LayerCache>,
    tokens: Vec<u32>,
    checkpoint: Option<Checkpoint>,
}

impl Memory {
    /// The caches `cache_bytes` counts.
    pub fn new(gpu: &Gpu, c: &ModelConfig, ctx: usize, batch: usize) -> Result<Memory> {
        let texels = (c.heads().kv_dim() / 4) as u32;
        let layers = (0..c.n_layer)
            .map(|l| {
                let memory = c.layer_memory(l);
                let slots = memory.slots(ctx, batch);
                let ring = slots < ctx;
                let cache = |label| gpu.kv_texture(label, texels, slots as u32).map(|t| KvTexture { ring, ..t });
                let saved = if ring { Some((cache("k checkpoint")?, cache("v checkpoint")?)) } else { None };
                Ok(LayerCache { memory, k: cache("k cache")?, v: cache("v cache")?, saved })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Memory { layers, tokens: Vec::new(), checkpoint: None })
    }

    /// Tokens in the memory.
    pub fn position(&self) -> usize {
        self.tokens.len()
    }

    /// Records that the step just submitted wrote `tokens` after the ones held.
    pub fn advance(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
    }

    /// Forgets everything: the next token is position 0.
    pub fn reset(&mut self) {
        self.rewind_to(0);
    }

    fn rewind_to(&mut self, q: usize) {
        self.tokens.truncate(q);
        if let Some(c) = &mut self.checkpoint {
            c.intact = c.intact.min(q);
        }
    }

    /// Whether every ring, as it stood after `held` positions, still has the window before `q`.
    fn rings_reach(&self, q: usize, held: usize) -> bool {
        q <= held
            && self.layers.iter().all(|l| match l.memory {
                LayerMemory::Keys => true,
                LayerMemory::Window(w) => {
                    q == 0 || (q + 1).saturating_sub(w) >= held.saturating_sub(l.k.slots as usize)
                }
            })
    }

    /// Copies the rings that wrap as they stand now, for `reuse_prefix` to come back to
    /// (replacing the checkpoint before). Nothing is copied where no ring wraps.
    pub fn checkpoint(&mut self, gpu: &Gpu) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let mut copied = false;
        for l in &self.layers {
            if let Some((k, v)) = &l.saved {
                l.k.copy_to(&mut encoder, k);
                l.v.copy_to(&mut encoder, v);
                copied = true;
            }
        }
        if copied {
            gpu.queue.submit([encoder.finish()]);
        }
        let position = self.position();
        self.checkpoint = Some(Checkpoint { position, intact: position });
    }

    /// Comes back to the longest start of `prompt` that the memory holds and can resume from
    /// (leaving at least its last token to feed, whose logits come next), restoring the
    /// checkpoint where the rings alone cannot; returns how many of `prompt`'s tokens are kept.
    pub fn reuse_prefix(&mut self, gpu: &Gpu, prompt: &[u32]) -> usize {
        let shared = self.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let longest = shared.min(prompt.len().saturating_sub(1));
        let live = (0..=longest).rev().find(|&q| self.rings_reach(q, self.position())).unwrap_or(0);
        let saved =
            self.checkpoint.and_then(|c| (0..=longest.min(c.intact)).rev().find(|&q| self.rings_reach(q, c.position)));
        let keep = match saved {
            Some(q) if q > live => {
                self.restore_checkpoint(gpu);
                q
            }
            _ => live,
        };
        self.rewind_to(keep);
        keep
    }

    fn restore_checkpoint(&self, gpu: &Gpu) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for l in &self.layers {
            if let Some((k, v)) = &l.saved {
                k.copy_to(&mut encoder, &l.k);
                v.copy_to(&mut encoder, &l.v);
            }
        }
        gpu.queue.submit([encoder.finish()]);
    }

    /// Bytes of GPU memory the caches and the checkpoint's copies use.
    pub fn gpu_bytes(&self) -> u64 {
        let copies = |l: &LayerCache| l.saved.as_ref().map_or(0, |(k, v)| k.bytes() + v.bytes());
        self.layers.iter().map(|l| l.k.bytes() + l.v.bytes() + copies(l)).sum()
    }

    /// The refusal of `n` more tokens where a context of `ctx` has no room for them.
    pub fn check_room(&self, n: usize, ctx: usize) -> Result<()> {
        if self.position() + n > ctx {
            return Err(Error::Input(format!(
                "the context is full: {} tokens already in it plus {n} new ones exceed the context size {ctx} (raise --ctx)",
                self.position()
            )));
        }
        Ok(())
    }
}
