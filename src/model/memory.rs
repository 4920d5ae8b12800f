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
//! Where moves are allowed (`allow_moves`: `--context-shift`), a new prompt that drops tokens
//! from the middle of what a sequence holds (a conversation that dropped its oldest turns to
//! fit the context) gets the cached run of tokens it keeps after the shared start moved back
//! to where the prompt now has it (`ops::kv_shift`: keys rotated back by as many positions)
//! instead of computing them again. That is not what computing them again gives: beyond the
//! first layer, the moved keys and values were computed while the dropped tokens were before
//! them, and keep a trace of them (as llama.cpp's context shift does). Only where every layer
//! keeps the keys of every position: a ring's window and a recurrent state cannot lose tokens
//! from the middle (llama.cpp refuses the same).
//!
//! A `Memory` holds one or several sequences (`Session::with_sequences`: requests decoded
//! together), each in its own slots of every cache texture (`shaders/kv_slot.wgsl`) with its own
//! tokens; a step's rows say which sequence each token belongs to. With several sequences there
//! are no checkpoints (rings come back only as far as they reach) and no recurrent layers.

use super::config::ModelConfig;
use crate::gpu::{Gpu, KvTexture, KvType};
use crate::ops::Heads;
use crate::ops::delta_net::{DeltaShape, DeltaState};
use crate::ops::kv_shift::{Move, record_move};
use crate::ops::kv_write::{RopeScaling, rope_shift_table};
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
    /// How cached keys turn when they move, where every layer lets them move.
    key_rotation: Option<KeyRotation>,
    /// Whether `reuse_prefix` may move cached tokens back.
    moves_allowed: bool,
}

/// The RoPE of the keys of every layer that caches its own.
struct KeyRotation {
    heads: Heads,
    base: f32,
    scaling: RopeScaling,
    factors: Vec<f32>,
}

impl KeyRotation {
    /// The rotation of `c`'s keys, where all its layers keep every position's keys, of one
    /// shape (`None` where some layer cannot move its memory).
    fn of(c: &ModelConfig) -> Option<KeyRotation> {
        let own = (0..c.n_layer).filter(|&l| c.kv_source(l).is_none());
        if !own.clone().all(|l| c.layer_memory(l) == LayerMemory::Keys) {
            return None;
        }
        let mut all_heads = own.map(|l| c.heads(l));
        let heads = all_heads.next()?;
        all_heads.all(|h| h == heads).then(|| KeyRotation {
            heads,
            base: c.rope_base,
            scaling: c.rope_scaling,
            factors: c.rope_factors.clone(),
        })
    }
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
        Ok(Memory {
            layers,
            tokens: vec![Vec::new(); sequences],
            checkpoint: None,
            key_rotation: KeyRotation::of(c),
            moves_allowed: false,
        })
    }

    /// Lets `reuse_prefix` move cached tokens back past dropped ones (where every layer can);
    /// returns whether they can move in this model.
    pub fn allow_moves(&mut self, allowed: bool) -> bool {
        self.moves_allowed = allowed;
        self.key_rotation.is_some()
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
    /// checkpoint where the layers alone cannot, then (where moves are allowed) moves back the
    /// longest cached run of the tokens that follow in `prompt`; returns how many of `prompt`'s
    /// tokens are kept.
    pub fn reuse_prefix(&mut self, gpu: &Gpu, seq: usize, prompt: &[u32]) -> usize {
        if !self.moves_allowed || self.key_rotation.is_none() {
            return self.reuse_start(gpu, seq, prompt);
        }
        // What the sequence held before the rewind: where the moved run comes from.
        let held = self.tokens.get(seq).cloned().unwrap_or_default();
        let keep = self.reuse_start(gpu, seq, prompt);
        let Some((from, count)) = moved_run(&held, prompt, keep) else { return keep };
        match self.move_back(gpu, Move { seq: seq as u32, from: from as u32, to: keep as u32, count: count as u32 }) {
            Ok(()) => {
                self.advance(seq, &prompt[keep..keep + count]);
                keep + count
            }
            Err(e) => {
                log::warn!(
                    "the cache's tokens {from}..{} could not move back ({e}); computing them again",
                    from + count
                );
                keep
            }
        }
    }

    /// Moves positions of every layer's keys and values back as `mv` says (through one scratch
    /// texture, made for the move).
    fn move_back(&self, gpu: &Gpu, mv: Move) -> Result<()> {
        let Some(rotation) = &self.key_rotation else {
            return Err(Error::Unsupported("this model's memory cannot lose tokens from its middle".into()));
        };
        let heads = &rotation.heads;
        let delta = (mv.from - mv.to) as usize;
        let table = rope_shift_table(delta, heads.rope_dims, rotation.base, rotation.scaling, &rotation.factors);
        let table = gpu.buffer_with("rope shift", &table)?;
        let caches: Vec<_> = self
            .layers
            .iter()
            .filter_map(|l| match l {
                LayerCache::Keys { k, v, .. } => Some((k, v)),
                _ => None,
            })
            .collect();
        // Every cache has one shape (`KeyRotation::of`): one scratch texture serves them all.
        let Some(&(first, _)) = caches.first() else { return Ok(()) };
        let all = first.slots * self.sequences() as u32;
        let made = gpu.kv_texture("kv move scratch", first.kind, heads.n_head_kv, heads.head_dim, all)?;
        let scratch = KvTexture { slots: first.slots, ..made };
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for kv in caches {
            record_move(gpu, &mut encoder, heads, kv, &scratch, &table, mv)?;
        }
        gpu.queue.submit([encoder.finish()]);
        Ok(())
    }

    /// `reuse_prefix`'s shared start: how many of `prompt`'s first tokens are kept as they are.
    fn reuse_start(&mut self, gpu: &Gpu, seq: usize, prompt: &[u32]) -> usize {
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

/// The fewest cached tokens worth moving: below it, computing them again costs less than the
/// move's kernel and scratch texture (and a few tokens match by chance).
const FEWEST_MOVED: usize = 16;

/// The longest run of `held` (what a sequence holds) after its first `keep` tokens that
/// `prompt` continues with at `keep`, leaving `prompt`'s last token to feed: where it starts
/// in `held` and its length (none shorter than `FEWEST_MOVED`).
fn moved_run(held: &[u32], prompt: &[u32], keep: usize) -> Option<(usize, usize)> {
    let wanted = prompt.get(keep..prompt.len().saturating_sub(1)).unwrap_or(&[]);
    let mut best: Option<(usize, usize)> = None;
    for from in keep + 1..held.len() {
        let count = held[from..].iter().zip(wanted).take_while(|(a, b)| a == b).count();
        if count > best.map_or(0, |(_, n)| n) {
            best = Some((from, count));
            if count == wanted.len() {
                break;
            }
        }
    }
    best.filter(|&(_, n)| n >= FEWEST_MOVED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_kept_run_after_the_shared_start_moves() {
        let held: Vec<u32> = (0..60).collect();
        // Start 0..5 kept, 5..20 dropped, 20..50 kept, then new tokens.
        let mut prompt: Vec<u32> = (0..5).chain(20..50).collect();
        prompt.extend([100, 101]);
        assert_eq!(moved_run(&held, &prompt, 5), Some((20, 30)));
        // The prompt's last token is left to feed.
        let ends: Vec<u32> = (0..5).chain(20..50).collect();
        assert_eq!(moved_run(&held, &ends, 5), Some((20, 29)));
        // Of two runs, the longer.
        let two: Vec<u32> = (0..5).chain(10..27).chain([200]).chain(40..60).chain([201]).collect();
        assert_eq!(moved_run(&held, &two, 5), Some((10, 17)));
        // Too short a run is computed again; nothing held beyond the start, nothing moves.
        let short: Vec<u32> = (0..5).chain(30..40).chain([7]).collect();
        assert_eq!(moved_run(&held, &short, 5), None);
        assert_eq!(moved_run(&held[..5], &prompt, 5), None);
        assert_eq!(moved_run(&[], &prompt, 0), None);
    }
}
