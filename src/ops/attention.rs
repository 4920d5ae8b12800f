//! Causal grouped-query attention of a batch of queries over the layer's KV cache. A prompt's
//! tokens go through `shaders/attention_flash.wgsl`, a tile of them per workgroup sharing each
//! key fetched; a decoding token (and the rows of a step mixing sequences) through
//! `shaders/attention.wgsl`, its keys split over several workgroups when it attends to a long
//! context (`shaders/attention_combine.wgsl` merges the splits).

use super::kv_write::rope_defines;
use super::{Dispatch, Heads, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, Defines, Gpu, KvTexture, Slot};
use crate::{Error, Result};

pub struct Attention {
    flash: Dispatch,
    main: Dispatch,
    combine: Dispatch,
}

/// What differs between families' attention beyond the heads.
#[derive(Clone, Copy, Default)]
pub struct AttentionOptions<'a> {
    /// Each token attends only to the last `window` positions, itself included.
    pub window: Option<u32>,
    /// A decoding token's keys are split into workgroups of this many (usually
    /// `keys_per_split(gpu)`; `None`: never split).
    pub keys_per_split: Option<u32>,
    /// One logit per query head that joins every softmax's denominator and adds no value
    /// (gpt-oss's attention sinks).
    pub sinks: Option<&'a wgpu::Buffer>,
    /// A prompt's tokens go through the flash kernel (`false`: all through the per-token one,
    /// for tests and benchmarks to compare the two).
    pub flash: bool,
}

/// Keys one workgroup takes when decoding on a GPU: beyond this, a token's keys are split over
/// several workgroups (with one token there are otherwise only n_head / HPW of them, too few
/// for a GPU). CPU adapters do not split: with a few cores, the extra workgroups' query loads
/// and the combine pass cost more than they spread (measured on lavapipe, 2 cores, 1438-token
/// context: decode 8.1-11.2 t/s split against 12.4-12.9 unsplit).
const KEYS_PER_SPLIT: u32 = 256;

/// Keys the flash kernel's inner loop takes at a time (`KU`): the queries and accumulators,
/// which a software adapter keeps in memory, are read and written once for all of them. Up to
/// 4, and at most 1024 floats of query per invocation times keys: SwiftShader's compiler
/// crashed on Gemma 4's 512-wide heads 4 keys at a time.
fn flash_keys_per_step(heads_per_workgroup: usize, head_dim: usize) -> u32 {
    let fit = (1024 / (heads_per_workgroup * head_dim)).clamp(1, 4) as u32;
    1 << fit.ilog2()
}

/// Workgroups a step's keys are split over: only a lone token (decoding) splits, since a batch
/// already has a workgroup per token.
fn splits(step: &Step, keys_per_split: u32, max_splits: u32) -> u32 {
    if step.n_tokens != 1 {
        return 1;
    }
    (step.pos0 + 1).div_ceil(keys_per_split).clamp(1, max_splits)
}

/// The keys per workgroup a decoding token's attention is split into on this adapter
/// (`None`: never split).
pub fn keys_per_split(gpu: &Gpu) -> Option<u32> {
    if gpu.is_cpu_adapter() { None } else { Some(KEYS_PER_SPLIT) }
}

impl Attention {
    /// `qkv` holds the fused Q|K|V rows of the batch (Q not yet rotated); `out` receives
    /// `[token][n_head * head_dim]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        heads: Heads,
        scale: f32,
        qkv: &Activations,
        rope: &wgpu::Buffer,
        k_cache: &KvTexture,
        v_cache: &KvTexture,
        out: &Activations,
        options: AttentionOptions,
    ) -> Result<Attention> {
        let AttentionOptions { window, keys_per_split, sinks, flash } = options;
        if !heads.head_dim.is_multiple_of(16) {
            return Err(Error::Unsupported(format!(
                "attention heads of {} elements (a multiple of 16 is needed)",
                heads.head_dim
            )));
        }
        if qkv.width != heads.qkv_dim() || out.width != heads.q_dim() {
            return Err(Error::Gpu(format!("attention rows of {} -> {} for heads {heads:?}", qkv.width, out.width)));
        }
        // Also the prompt tokens per flash-attention workgroup (BR), each key read serving them
        // all: on lavapipe 8 and 32 measured alike at depth 2048, 8 was 1.1x faster at depth 0
        // (fewer keys masked in the tile's range).
        let lanes = if gpu.is_cpu_adapter() { 8 } else { 32 };
        let per_workgroup = heads_per_workgroup(&heads);
        let defines = rope_defines(k_cache.slot_defines(Defines::new()), &heads)
            .u32("NH", heads.n_head as u32)
            .u32("NKV", heads.n_head_kv as u32)
            .u32("HD", heads.head_dim as u32)
            .u32("AWG", lanes)
            .flag("FLASH", flash)
            .u32("BR", lanes)
            .u32("KU", flash_keys_per_step(per_workgroup, heads.head_dim))
            .u32("HPW", per_workgroup as u32)
            .u32("HV4", (heads.head_dim / 16) as u32)
            .u32("QS", qkv.stride as u32)
            .u32("OS4", (out.stride / 4) as u32)
            .f32("SCALE", scale)
            .u32("WINDOW", window.unwrap_or(0))
            .flag("SINKS", sinks.is_some())
            .flag("GATED", heads.gated)
            .u32("G0", (heads.q_dim() + 2 * heads.kv_dim()) as u32);
        let keys_per_split = keys_per_split.unwrap_or(k_cache.slots).max(1);
        let max_splits = k_cache.slots.div_ceil(keys_per_split);
        let slot_bytes = (heads.head_dim / 4 + 1) as u64 * 16;
        let partials = gpu.buffer("attention partials", max_splits as u64 * heads.n_head as u64 * slot_bytes)?;
        let mut binds = vec![
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&qkv.buffer)),
            (4, Slot::ReadWrite, Bind::Buffer(&out.buffer)),
            (5, Slot::Read, Bind::Buffer(rope)),
            (6, Slot::ReadWrite, Bind::Buffer(&partials)),
            (14, Slot::Read, Bind::Buffer(&steps.rows)),
        ];
        binds.extend(k_cache.read_binds(2, 12));
        binds.extend(v_cache.read_binds(3, 13));
        if let Some(s) = sinks {
            binds.push((7, Slot::Read, Bind::Buffer(s)));
        }
        let workgroups = (heads.n_head / per_workgroup) as u32;
        let grid = move |s: &Step| [workgroups, s.n_tokens, splits(s, keys_per_split, max_splits)];
        let main = Dispatch::new(gpu, "attention.wgsl", &defines, &binds, grid)?;
        // attention_tiles.wgsl: a lone token never goes through the flash kernel.
        let flash_binds: Vec<_> = binds.iter().filter(|(b, ..)| *b != 6).cloned().collect();
        let tiles = move |s: &Step| if flash && s.n_tokens > 1 { s.n_tokens.div_ceil(lanes) } else { 0 };
        let grid = move |s: &Step| [workgroups, tiles(s), 1];
        let flash = Dispatch::new(gpu, "attention_flash.wgsl", &defines, &flash_binds, grid)?;

        let defines = Defines::new()
            .u32("NH", heads.n_head as u32)
            .u32("HD", heads.head_dim as u32)
            .u32("OS4", (out.stride / 4) as u32)
            .flag("SINKS", sinks.is_some())
            .flag("GATED", heads.gated)
            .u32("QS", qkv.stride as u32)
            .u32("G0", (heads.q_dim() + 2 * heads.kv_dim()) as u32);
        let mut binds = vec![
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&partials)),
            (2, Slot::ReadWrite, Bind::Buffer(&out.buffer)),
        ];
        if let Some(s) = sinks {
            binds.push((3, Slot::Read, Bind::Buffer(s)));
        }
        if heads.gated {
            binds.push((4, Slot::Read, Bind::Buffer(&qkv.buffer)));
        }
        let n_head = heads.n_head as u32;
        let grid =
            move |s: &Step| if splits(s, keys_per_split, max_splits) > 1 { [n_head, s.n_tokens, 1] } else { [0, 0, 0] };
        let combine = Dispatch::new(gpu, "attention_combine.wgsl", &defines, &binds, grid)?;
        Ok(Attention { flash, main, combine })
    }
}

impl super::Op for Attention {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.flash.encode(pass, step, rec);
        self.main.encode(pass, step, rec);
        self.combine.encode(pass, step, rec);
    }

    fn name(&self) -> String {
        "attention".into()
    }
}

/// Query heads one workgroup serves: heads sharing a KV head share every K and V fetch, up to
/// four, and up to 256 query floats in all: each head adds a query and an accumulator of
/// `head_dim` floats per invocation, unrolled into registers, and beyond that the shader
/// compiler's time grows out of hand (Gemma 3's four 256-wide heads in one workgroup took
/// lavapipe 20 s to compile).
fn heads_per_workgroup(heads: &Heads) -> usize {
    let group = heads.n_head / heads.n_head_kv;
    (1..=4).rev().find(|n| group.is_multiple_of(*n) && n * heads.head_dim <= 256).unwrap_or(1)
}

/// CPU reference in f64. `q` is `[token][n_head * head_dim]`; the caches `[position][kv_dim]`.
/// With a `window`, a token sees only the last `window` positions; `sinks` join each head's
/// denominator.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    heads: &Heads,
    pos0: usize,
    n_tokens: usize,
    scale: f32,
    window: Option<usize>,
    sinks: Option<&[f32]>,
) -> Vec<f32> {
    let (hd, kv_dim) = (heads.head_dim, heads.kv_dim());
    let group = heads.n_head / heads.n_head_kv;
    let mut out = vec![0.0; n_tokens * heads.q_dim()];
    for t in 0..n_tokens {
        for h in 0..heads.n_head {
            let qh = &q[t * heads.q_dim() + h * hd..][..hd];
            let kvh = h / group;
            let n_keys = pos0 + t + 1;
            let first = n_keys.saturating_sub(window.unwrap_or(n_keys));
            let scores: Vec<f64> = (first..n_keys)
                .map(|j| {
                    let kj = &k[j * kv_dim + kvh * hd..][..hd];
                    qh.iter().zip(kj).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() * scale as f64
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sink = sinks.map_or(0.0, |s| (s[h] as f64 - max).exp());
            let total: f64 = weights.iter().sum::<f64>() + sink;
            for d in 0..hd {
                let acc: f64 =
                    (first..n_keys).zip(&weights).map(|(j, w)| w * v[j * kv_dim + kvh * hd + d] as f64).sum();
                out[t * heads.q_dim() + h * hd + d] = (acc / total) as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::KvType;
    use crate::ops::Row;
    use crate::ops::kv_write::{RopeScaling, rope_table, rotate};
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    fn check(heads: Heads, pos0: usize, n_tokens: usize, seed: u64) {
        check_split(heads, pos0, n_tokens, seed, None, None)
    }

    fn check_split(
        heads: Heads,
        pos0: usize,
        n_tokens: usize,
        seed: u64,
        keys_per_split: Option<u32>,
        window: Option<u32>,
    ) {
        check_with(heads, pos0, n_tokens, seed, keys_per_split, window, false, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_with(
        heads: Heads,
        pos0: usize,
        n_tokens: usize,
        seed: u64,
        keys_per_split: Option<u32>,
        window: Option<u32>,
        with_sinks: bool,
        flash: bool,
    ) {
        check_kv(KvType::F32, heads, pos0, n_tokens, seed, keys_per_split, window, with_sinks, flash)
    }

    /// As `check_with`, the cache stored as `kind`: the reference reads its keys and values as
    /// the type rounds them.
    #[allow(clippy::too_many_arguments)]
    fn check_kv(
        kind: KvType,
        heads: Heads,
        pos0: usize,
        n_tokens: usize,
        seed: u64,
        keys_per_split: Option<u32>,
        window: Option<u32>,
        with_sinks: bool,
        flash: bool,
    ) {
        let mut rng = rng(seed);
        let n_pos = pos0 + n_tokens;
        let base = 10000.0;
        let qkv = random_vec(n_tokens * heads.qkv_dim(), &mut rng);
        let mut k = random_vec(n_pos * heads.kv_dim(), &mut rng);
        let mut v = random_vec(n_pos * heads.kv_dim(), &mut rng);
        // Large scores make the softmax peaky, which is where an online softmax goes wrong.
        k.iter_mut().for_each(|x| *x *= 4.0);
        let (k_raw, v_raw) = (k.clone(), v.clone());
        for row in k.chunks_mut(heads.kv_dim()).chain(v.chunks_mut(heads.kv_dim())) {
            kind.round_trip(row, heads.head_dim);
        }
        let mut q: Vec<f32> = qkv.chunks(heads.qkv_dim()).flat_map(|row| row[..heads.q_dim()].to_vec()).collect();
        for (t, row) in q.chunks_mut(heads.q_dim()).enumerate() {
            row.chunks_mut(heads.head_dim).for_each(|h| rotate(h, pos0 + t, &heads, base));
        }
        let scale = 1.0 / (heads.head_dim as f32).sqrt();
        // Sinks around the scores' own size, so that they take a real share.
        let sinks: Vec<f32> = random_vec(heads.n_head, &mut rng).iter().map(|s| 3.0 * s + 2.0).collect();
        let sinks_ref = with_sinks.then_some(&sinks[..]);
        let mut want = reference(&q, &k, &v, &heads, pos0, n_tokens, scale, window.map(|w| w as usize), sinks_ref);
        if heads.gated {
            let g0 = heads.q_dim() + 2 * heads.kv_dim();
            for (row, qkv_row) in want.chunks_mut(heads.q_dim()).zip(qkv.chunks(heads.qkv_dim())) {
                row.iter_mut().zip(&qkv_row[g0..]).for_each(|(w, g)| *w /= 1.0 + (-g).exp());
            }
        }

        let g = gpu();
        let qb = g.activations_with("qkv", heads.qkv_dim(), &qkv).unwrap();
        let rope = g.buffer_with("rope", &rope_table(n_pos, heads.rope_dims, base, RopeScaling::None, &[])).unwrap();
        let (kb, vb) = (kv_with(&k_raw, kind, &heads), kv_with(&v_raw, kind, &heads));
        let out = poisoned_rows(n_tokens, heads.q_dim());
        let step = Step { n_tokens: n_tokens as u32, pos0: pos0 as u32, ..Default::default() };
        let steps = step_buffers();
        let sinks_b = g.buffer_with("sinks", &sinks).unwrap();
        let options = AttentionOptions { window, keys_per_split, sinks: with_sinks.then_some(&sinks_b), flash };
        let op = Attention::new(g, &steps, heads, scale, &qb, &rope, &kb, &vb, &out, options).unwrap();
        run(&steps, &[&op], step);
        let what = format!(
            "attention {heads:?} pos0={pos0} T={n_tokens} window={window:?} sinks={with_sinks} flash={flash} {kind:?}"
        );
        assert_close(&read_rows(&out, n_tokens), &want, 1e-5, &what);
    }

    #[test]
    fn decode_step_matches_reference() {
        let heads = Heads { n_head: 9, n_head_kv: 3, head_dim: 64, rope_dims: 64, neox: false, gated: false };
        check(heads, 0, 1, 1);
        check(heads, 70, 1, 2);
    }

    #[test]
    fn heads_of_a_length_the_kernel_cannot_unroll_are_refused() {
        let heads = Heads { n_head: 2, n_head_kv: 1, head_dim: 20, rope_dims: 20, neox: false, gated: false };
        let g = gpu();
        let qb = g.activations("qkv", 1, heads.qkv_dim()).unwrap();
        let out = g.activations("out", 1, heads.q_dim()).unwrap();
        let rope = g.buffer_with("rope", &rope_table(4, heads.rope_dims, 10000.0, RopeScaling::None, &[])).unwrap();
        let kv = kv_with(&vec![0.0; 4 * heads.kv_dim()], KvType::F32, &heads);
        let steps = step_buffers();
        let options = AttentionOptions::default();
        let err = Attention::new(g, &steps, heads, 1.0, &qb, &rope, &kv, &kv, &out, options).err().expect("refused");
        assert!(err.to_string().contains("heads of 20 elements"), "{err}");
    }

    #[test]
    fn long_context_decode_splits_the_keys_and_matches_reference() {
        let heads = Heads { n_head: 9, n_head_kv: 3, head_dim: 64, rope_dims: 64, neox: false, gated: false };
        // 512 keys: two full splits; 701: three uneven ones; a batch never splits.
        check_split(heads, 511, 1, 8, Some(KEYS_PER_SPLIT), None);
        check_split(heads, 700, 1, 9, Some(KEYS_PER_SPLIT), None);
        check_split(heads, 300, 3, 10, Some(KEYS_PER_SPLIT), None);
    }

    #[test]
    fn a_sliding_window_sees_only_the_latest_keys() {
        let heads = Heads { n_head: 4, n_head_kv: 1, head_dim: 64, rope_dims: 64, neox: true, gated: false };
        // A batch crossing the window's edge, a token far beyond it, and a decode whose
        // window's keys are split over workgroups.
        check_split(heads, 9, 6, 11, None, Some(5));
        check_split(heads, 40, 1, 12, None, Some(16));
        check_split(heads, 700, 1, 13, Some(KEYS_PER_SPLIT), Some(300));
    }

    #[test]
    fn sinks_join_every_denominator_in_batches_windows_and_splits() {
        let heads = Heads { n_head: 8, n_head_kv: 2, head_dim: 64, rope_dims: 64, neox: true, gated: false };
        check_with(heads, 0, 7, 14, None, None, true, true);
        check_with(heads, 9, 6, 15, None, Some(5), true, true);
        check_with(heads, 600, 1, 16, Some(KEYS_PER_SPLIT), None, true, true);
    }

    #[test]
    fn gated_heads_scale_their_output_by_the_sigmoid_of_their_gate() {
        let heads = Heads { n_head: 4, n_head_kv: 2, head_dim: 64, rope_dims: 16, neox: true, gated: true };
        check_with(heads, 3, 5, 17, None, None, false, true);
        check_with(heads, 600, 1, 18, Some(KEYS_PER_SPLIT), None, false, true);
    }

    #[test]
    fn a_prompt_through_the_per_token_kernel_matches_the_flash_kernels_reference() {
        // Tiles that mix sequences take this path; here a whole prompt does, windowed, with
        // sinks and gates.
        let heads = Heads { n_head: 4, n_head_kv: 2, head_dim: 64, rope_dims: 64, neox: true, gated: true };
        check_with(heads, 5, 21, 19, None, Some(9), true, false);
        check_with(heads, 5, 21, 19, None, Some(9), true, true);
    }

    #[test]
    fn rows_of_several_sequences_attend_each_to_its_own_keys() {
        // Twelve rows of sequence 0, twelve of sequence 1, then one more of sequence 0: with
        // tiles of 8 rows, some tiles hold one sequence (the flash kernel's) and some both (the
        // per-token kernel's); with tiles of 32, one tile holds all.
        let heads = Heads { n_head: 4, n_head_kv: 2, head_dim: 32, rope_dims: 32, neox: true, gated: false };
        let slots = 40;
        let rows: Vec<Row> = (10..22).map(|p| [0, p]).chain((3..15).map(|p| [1, p])).chain([[0, 22]]).collect();
        let mut rng = rng(20);
        let qkv = random_vec(rows.len() * heads.qkv_dim(), &mut rng);
        let mut k = random_vec(2 * slots * heads.kv_dim(), &mut rng);
        k.iter_mut().for_each(|x| *x *= 4.0);
        let v = random_vec(2 * slots * heads.kv_dim(), &mut rng);
        let scale = 1.0 / (heads.head_dim as f32).sqrt();
        let base = 10000.0;
        let mut want = Vec::new();
        for (row, &[seq, pos]) in qkv.chunks(heads.qkv_dim()).zip(&rows) {
            let mut q = row[..heads.q_dim()].to_vec();
            q.chunks_mut(heads.head_dim).for_each(|h| rotate(h, pos as usize, &heads, base));
            let own = |cache: &[f32]| cache[seq as usize * slots * heads.kv_dim()..][..slots * heads.kv_dim()].to_vec();
            want.extend(reference(&q, &own(&k), &own(&v), &heads, pos as usize, 1, scale, None, None));
        }

        let g = gpu();
        let qb = g.activations_with("qkv", heads.qkv_dim(), &qkv).unwrap();
        let rope = g.buffer_with("rope", &rope_table(slots, heads.rope_dims, base, RopeScaling::None, &[])).unwrap();
        let per_sequence = |kv: KvTexture| KvTexture { slots: slots as u32, ..kv };
        let (kb, vb) = (per_sequence(kv_with(&k, KvType::F32, &heads)), per_sequence(kv_with(&v, KvType::F32, &heads)));
        let steps = step_buffers();
        let step = Step { n_tokens: rows.len() as u32, ..Default::default() };
        for flash in [true, false] {
            let out = poisoned_rows(rows.len(), heads.q_dim());
            let options = AttentionOptions { flash, ..Default::default() };
            let op = Attention::new(g, &steps, heads, scale, &qb, &rope, &kb, &vb, &out, options).unwrap();
            let commands = steps.record(g, &[&op], &step, &rows).unwrap();
            g.queue.submit([commands]);
            g.wait().unwrap();
            assert_close(&read_rows(&out, rows.len()), &want, 1e-5, &format!("two sequences, flash={flash}"));
        }
    }

    #[test]
    fn caches_of_every_type_are_read_as_the_type_rounds_them() {
        // Heads of three blocks (96: the second scale word half used), two KV heads (the second
        // one's blocks and scales further along the row); a prompt (flash tiles) in a window,
        // and a decode split over workgroups. (Every kernel variant compiles in a few seconds on
        // a software adapter: few cases. f16 reads as f32 does, from another texture format;
        // every model test runs on it, the default.)
        let h96 = Heads { n_head: 4, n_head_kv: 2, head_dim: 96, rope_dims: 96, neox: false, gated: false };
        let h64 = Heads { n_head: 2, n_head_kv: 2, head_dim: 64, rope_dims: 64, neox: true, gated: false };
        for (i, kind) in [KvType::Q8_0, KvType::Q4_0].into_iter().enumerate() {
            let seed = 30 + 2 * i as u64;
            check_kv(kind, h96, 12, 9, seed, None, Some(16), true, true);
            check_kv(kind, h64, 600, 1, seed + 1, Some(KEYS_PER_SPLIT), None, false, true);
        }
    }

    #[test]
    fn causal_batch_matches_reference() {
        let heads = Heads { n_head: 4, n_head_kv: 1, head_dim: 128, rope_dims: 96, neox: true, gated: false };
        check(heads, 0, 13, 3);
        check(heads, 9, 5, 4);
        let mha = Heads { n_head: 2, n_head_kv: 2, head_dim: 16, rope_dims: 16, neox: false, gated: false };
        check(mha, 3, 40, 5);
        // Groups of 8 and 6 heads: several workgroups per KV head.
        let wide = Heads { n_head: 16, n_head_kv: 2, head_dim: 32, rope_dims: 32, neox: false, gated: false };
        check(wide, 2, 7, 6);
        let six = Heads { n_head: 12, n_head_kv: 2, head_dim: 64, rope_dims: 64, neox: true, gated: false };
        check(six, 0, 9, 7);
    }

    #[test]
    fn heads_as_wide_as_gemmas_match_reference() {
        // Gemma 3's heads, 256 wide (4 keys per inner step), and Gemma 4's global ones, 512 (2).
        // (Their kernels take the longest to compile: a test of their own, beside the others.)
        let gemma3 = Heads { n_head: 2, n_head_kv: 1, head_dim: 256, rope_dims: 256, neox: true, gated: false };
        check(gemma3, 2, 9, 9);
        let gemma4 = Heads { n_head: 2, n_head_kv: 1, head_dim: 512, rope_dims: 512, neox: true, gated: false };
        check(gemma4, 3, 6, 8);
    }
}
