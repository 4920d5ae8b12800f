//! What a sequence remembers between forward steps, as the family plans it per layer, and the
//! contract for coming back to an earlier position of it (prefix reuse).
//!
//! A full-attention layer keeps the keys and values of every position; a sliding-window layer
//! keeps a ring of the last `window + batch - 1` positions (a step writes its batch's keys
//! before it attends, so the first token of a batch still finds its window); a recurrent layer
//! keeps a state of fixed size, overwritten by every token. The ids of the tokens seen are kept
//! beside, so a new prompt that starts the same way resumes after the longest start the memory
//! can come back to:
//! - full-attention layers can come back to any earlier position (later keys are overwritten
//!   before they are read);
//! - a ring can come back as long as the window before that position is still in it: up to
//!   `batch` positions back, or any position while the ring has not wrapped;
//! - a recurrent state cannot come back at all, except to the start (zeroed);
//! - beyond that, to a checkpoint: a copy of the rings and recurrent states taken after a
//!   prompt (what the next turn of a conversation comes back to, also when the template drops
//!   the reasoning of the last reply).
//!
//! A `Memory` holds one or several sequences (`Session::with_sequences`: requests decoded
//! together), each in its own slots of every cache texture (`shaders/kv_slot.wgsl`) with its own
//! tokens; a step's rows say which sequence each token belongs to. With several sequences there
//! are no checkpoints (rings come back only as far as they reach) and no recurrent layers.

use super::config::ModelConfig;
use crate::gpu::{Gpu, KvTexture, KvType};
use crate::ops::Heads;
use crate::ops::delta_net::{DeltaShape, DeltaState};
use crate::{Error, Result};

/// What one layer keeps of the positions before the current one, as its family declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerMemory {
    /// Keys and values of every position (full attention).
    Keys,
    /// Keys and values of the last `window` positions (sliding-window attention).
    Window(usize),
    /// A gated delta-net layer's convolution inputs and state matrices.
    Recurrent(DeltaShape),
}

impl LayerMemory {
    /// Positions the layer's cache holds in a session of `ctx` positions and batches of `batch`
    /// (none for a recurrent layer).
    pub fn slots(self, ctx: usize, batch: usize) -> usize {
        match self {
            LayerMemory::Keys => ctx,
            LayerMemory::Window(w) => ctx.min(w + batch - 1),
            LayerMemory::Recurrent(_) => 0,
        }
    }

    /// Bytes of this layer's memory of one sequence, and of the checkpoint's copy of it, for
    /// keys and values of `heads` stored as `kv`.
    fn bytes(self, heads: &Heads, kv: KvType, ctx: usize, batch: usize) -> (u64, u64) {
        match self {
            LayerMemory::Recurrent(shape) => {
                let (conv, matrices) = shape.state_floats();
                let bytes = (conv + matrices) as u64 * 4;
                (bytes, bytes)
            }
            _ => {
                let slots = self.slots(ctx, batch);
                let bytes = slots as u64 * 2 * kv.row_bytes(heads.n_head_kv, heads.head_dim);
                (bytes, if slots < ctx { bytes } else { 0 })
            }
        }
    }
}

/// Bytes of one sequence's memory of every layer of `c` for a session of `ctx` positions and
/// batches of `batch` (keys and values stored as `kv`, f32 states), with the checkpoint's
/// copies.
pub fn cache_bytes(c: &ModelConfig, kv: KvType, ctx: usize, batch: usize) -> u64 {
    (0..c.n_layer)
        .map(|l| {
            if c.kv_source(l).is_some() {
                return 0;
            }
            let (live, saved) = c.layer_memory(l).bytes(&c.heads(l), kv, ctx, batch);
            live + saved
        })
        .sum()
}

/// One layer's memory, and the checkpoint's copy of what cannot come back by itself.
// One per layer, made once per session: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum LayerCache {
    /// Keys and values (a ring for a sliding window); a copy of a ring that wraps.
    Keys { k: KvTexture, v: KvTexture, window: Option<usize>, saved: Option<(KvTexture, KvTexture)> },
    /// A recurrent layer's state, and its copy.
    Recurrent { state: DeltaState, saved: DeltaState },
    /// Nothing of its own: the layer attends to an earlier layer's keys and values (Gemma 4's
    /// last layers, `ModelConfig::kv_source`).
    Shared { source: usize },
}

/// Where the checkpoint was taken, and how far the full-attention layers still hold what they
/// held then.
#[derive(Clone, Copy)]
struct Checkpoint {
    position: usize,
    /// Positions before this one are unchanged since the checkpoint (a rewind lowers it).
    intact: usize,
}

/// The sequences' memory: each layer's cache, the tokens each sequence holds, and (with one
/// sequence) a checkpoint.
pub struct Memory {
    pub layers: Vec<LayerCache>,
    tokens: Vec<Vec<u32>>,
    checkpoint: Option<Checkpoint>,
}

impl Memory {
    /// The caches `cache_bytes` counts, for each of `sequences`.
    pub fn new(gpu: &Gpu, c: &ModelConfig, kv: KvType, ctx: usize, batch: usize, sequences: usize) -> Result<Memory> {
        let several = sequences > 1;
        let layers = (0..c.n_layer)
            .map(|l| {
                let memory = c.layer_memory(l);
                if let Some(source) = c.kv_source(l) {
                    return Ok(LayerCache::Shared { source });
                }
                if let LayerMemory::Recurrent(shape) = memory {
                    if several {
                        return Err(Error::Unsupported(
                            "several sequences at once are not supported for models with recurrent (delta-net) \
                             layers yet"
                                .into(),
                        ));
                    }
                    return Ok(LayerCache::Recurrent {
                        state: DeltaState::new(gpu, &shape)?,
                        saved: DeltaState::new(gpu, &shape)?,
                    });
                }
                let slots = memory.slots(ctx, batch);
                let ring = slots < ctx;
                let heads = c.heads(l);
                let cache = |label| {
                    let all = (slots * sequences) as u32;
                    gpu.kv_texture(label, kv, heads.n_head_kv, heads.head_dim, all).map(|t| KvTexture {
                        ring,
                        slots: slots as u32,
                        ..t
                    })
                };
                let saved =
                    if ring && !several { Some((cache("k checkpoint")?, cache("v checkpoint")?)) } else { None };
                let window = match memory {
                    LayerMemory::Window(w) => Some(w),
                    _ => None,
                };
                Ok(LayerCache::Keys { k: cache("k cache")?, v: cache("v cache")?, window, saved })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Memory { layers, tokens: vec![Vec::new(); sequences], checkpoint: None })
    }

    /// Layer `l`'s key and value caches.
    pub fn kv(&self, l: usize) -> Result<(&KvTexture, &KvTexture)> {
        match self.layers.get(l) {
            Some(LayerCache::Keys { k, v, .. }) => Ok((k, v)),
            Some(&LayerCache::Shared { source }) if source < l => self.kv(source),
            _ => Err(Error::Gpu(format!("layer {l} keeps no keys and values"))),
        }
    }

    /// Layer `l`'s recurrent state.
    pub fn recurrent(&self, l: usize) -> Result<&DeltaState> {
        match self.layers.get(l) {
            Some(LayerCache::Recurrent { state, .. }) => Ok(state),
            _ => Err(Error::Gpu(format!("layer {l} keeps no recurrent state"))),
        }
    }

    /// Sequences the memory holds.
    pub fn sequences(&self) -> usize {
        self.tokens.len()
    }

    /// Tokens sequence `seq` holds (0 for a sequence there is not).
    pub fn position(&self, seq: usize) -> usize {
        self.tokens.get(seq).map_or(0, Vec::len)
    }

    /// How many tokens from the start of `prompt` sequence `seq` holds.
    pub fn held_prefix(&self, seq: usize, prompt: &[u32]) -> usize {
        let held = self.tokens.get(seq).map_or(&[][..], Vec::as_slice);
        held.iter().zip(prompt).take_while(|(a, b)| a == b).count()
    }

    /// Records that the step just submitted wrote `tokens` after the ones `seq` held.
    pub fn advance(&mut self, seq: usize, tokens: &[u32]) {
        if let Some(held) = self.tokens.get_mut(seq) {
            held.extend_from_slice(tokens);
        }
    }

    /// Forgets all of `seq`: its next token is position 0.
    pub fn reset(&mut self, gpu: &Gpu, seq: usize) {
        self.rewind_to(gpu, seq, 0);
    }

    fn rewind_to(&mut self, gpu: &Gpu, seq: usize, q: usize) {
        if q == 0 && self.position(seq) > 0 {
            // The start of a sequence is a zero state.
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            for l in &self.layers {
                if let LayerCache::Recurrent { state, .. } = l {
                    encoder.clear_buffer(&state.conv, 0, None);
                    encoder.clear_buffer(&state.matrices, 0, None);
                }
            }
            gpu.queue.submit([encoder.finish()]);
        }
        if let Some(held) = self.tokens.get_mut(seq) {
            held.truncate(q);
        }
        if let Some(c) = &mut self.checkpoint {
            c.intact = c.intact.min(q);
        }
    }

    /// Whether every layer, as it stood after `held` positions, can resume at `q`.
    fn reaches(&self, q: usize, held: usize) -> bool {
        q <= held
            && (q == 0
                || self.layers.iter().all(|l| match l {
                    LayerCache::Keys { window: None, .. } => true,
                    LayerCache::Keys { window: Some(w), k, .. } => {
                        (q + 1).saturating_sub(*w) >= held.saturating_sub(k.slots as usize)
                    }
                    LayerCache::Recurrent { .. } => q == held,
                    LayerCache::Shared { .. } => true,
                }))
    }

    /// Copies what cannot come back by itself (rings that wrap, recurrent states) as it stands
    /// now, for `reuse_prefix` to come back to (replacing the checkpoint before). Only with one
    /// sequence: with several it does nothing.
    pub fn checkpoint(&mut self, gpu: &Gpu) {
        if self.sequences() > 1 {
            return;
        }
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let mut copied = false;
        for l in &self.layers {
            match l {
                LayerCache::Keys { k, v, saved: Some((k_saved, v_saved)), .. } => {
                    k.copy_to(&mut encoder, k_saved);
                    v.copy_to(&mut encoder, v_saved);
                    copied = true;
                }
                LayerCache::Recurrent { state, saved } => {
                    state.copy_to(&mut encoder, saved);
                    copied = true;
                }
                LayerCache::Keys { saved: None, .. } | LayerCache::Shared { .. } => {}
            }
        }
        if copied {
            gpu.queue.submit([encoder.finish()]);
        }
        let position = self.position(0);
        self.checkpoint = Some(Checkpoint { position, intact: position });
    }

    /// Comes back to the longest start of `prompt` that sequence `seq` holds and can resume
    /// from (leaving at least its last token to feed, whose logits come next), restoring the
    /// checkpoint where the layers alone cannot; returns how many of `prompt`'s tokens are kept.
    pub fn reuse_prefix(&mut self, gpu: &Gpu, seq: usize, prompt: &[u32]) -> usize {
        let shared = self.held_prefix(seq, prompt);
        let longest = shared.min(prompt.len().saturating_sub(1));
        let live = (0..=longest).rev().find(|&q| self.reaches(q, self.position(seq))).unwrap_or(0);
        let saved =
            self.checkpoint.and_then(|c| (0..=longest.min(c.intact)).rev().find(|&q| self.reaches(q, c.position)));
        let keep = match saved {
            Some(q) if q > live => {
                self.restore_checkpoint(gpu);
                q
            }
            _ => live,
        };
        self.rewind_to(gpu, seq, keep);
        keep
    }

    fn restore_checkpoint(&self, gpu: &Gpu) {
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for l in &self.layers {
            match l {
                LayerCache::Keys { k, v, saved: Some((k_saved, v_saved)), .. } => {
                    k_saved.copy_to(&mut encoder, k);
                    v_saved.copy_to(&mut encoder, v);
                }
                LayerCache::Recurrent { state, saved } => saved.copy_to(&mut encoder, state),
                LayerCache::Keys { saved: None, .. } | LayerCache::Shared { .. } => {}
            }
        }
        gpu.queue.submit([encoder.finish()]);
    }

    /// Bytes of GPU memory the caches, states and the checkpoint's copies use.
    pub fn gpu_bytes(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| match l {
                LayerCache::Keys { k, v, saved, .. } => {
                    k.bytes() + v.bytes() + saved.as_ref().map_or(0, |(k, v)| k.bytes() + v.bytes())
                }
                LayerCache::Recurrent { state, saved } => state.bytes() + saved.bytes(),
                LayerCache::Shared { .. } => 0,
            })
            .sum()
    }

    /// The refusal of `n` more tokens of `seq` where a context of `ctx` has no room for them.
    pub fn check_room(&self, seq: usize, n: usize, ctx: usize) -> Result<()> {
        if seq >= self.sequences() {
            return Err(Error::Input(format!("no sequence {seq} in a session of {}", self.sequences())));
        }
        if self.position(seq) + n > ctx {
            return Err(Error::Input(format!(
                "the context is full: {} tokens already in it plus {n} new ones exceed the context size {ctx} (raise --ctx)",
                self.position(seq)
            )));
        }
        Ok(())
    }
}
