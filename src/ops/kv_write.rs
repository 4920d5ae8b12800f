//! Rotary position embedding of K, and the write of K and V into the layer's cache textures
//! (`shaders/kv_write.wgsl`), with the QK-norm of query and key heads first where the family
//! has one. Q is rotated where it is read, in attention.

use super::{Dispatch, Heads, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, Defines, Gpu, KvTexture, Slot};
use crate::{Error, Result};

/// How a model stretches RoPE beyond the context it was trained on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum RopeScaling {
    #[default]
    None,
    /// Every frequency divided by `factor`.
    Linear { factor: f32 },
    /// YaRN (Peng et al. 2023), as llama.cpp computes it: each pair's angle blends the
    /// interpolated (divided by `factor`) and the original one by a ramp between the pairs
    /// that turn `beta_fast` and `beta_slow` times over `original_ctx` positions, and cos and
    /// sin are scaled by `attn_factor * (1 + 0.1 ln factor)`.
    Yarn { factor: f32, original_ctx: usize, beta_fast: f32, beta_slow: f32, attn_factor: f32 },
}

impl RopeScaling {
    /// Per rotated pair of `dims`: the frequency (angle per position) and the magnitude its
    /// cos and sin are scaled by.
    pub fn frequencies(self, dims: usize, base: f32) -> Vec<(f64, f64)> {
        let base = base as f64;
        let plain = |i: usize| base.powf(-2.0 * i as f64 / dims as f64);
        match self {
            RopeScaling::None => (0..dims / 2).map(|i| (plain(i), 1.0)).collect(),
            RopeScaling::Linear { factor } => (0..dims / 2).map(|i| (plain(i) / factor as f64, 1.0)).collect(),
            RopeScaling::Yarn { factor, original_ctx, beta_fast, beta_slow, attn_factor } => {
                let factor = factor as f64;
                // The pair index whose wavelength fits `turns` times in the original context
                // (ggml_rope_yarn_corr_dims: f32 arithmetic there, floor and ceil of it).
                let corr = |turns: f32| {
                    dims as f32 * (original_ctx as f32 / (turns * 2.0 * std::f32::consts::PI)).ln()
                        / (2.0 * (base as f32).ln())
                };
                let low = corr(beta_fast).floor().max(0.0) as f64;
                let high = corr(beta_slow).ceil().min(dims as f32 - 1.0) as f64;
                let mscale = attn_factor as f64 * (1.0 + 0.1 * factor.ln());
                (0..dims / 2)
                    .map(|i| {
                        let ramp = 1.0 - ((i as f64 - low) / (high - low).max(0.001)).clamp(0.0, 1.0);
                        let f = plain(i);
                        (f / factor * (1.0 - ramp) + f * ramp, mscale)
                    })
                    .collect()
            }
        }
    }
}

/// `scaling`'s frequencies of `dims`, each divided by its pair's factor where `factors` has
/// one (a model's `rope_freqs`: Gemma 4's proportional RoPE, where a factor of 1e30 leaves a
/// pair unrotated).
fn factored(dims: usize, base: f32, scaling: RopeScaling, factors: &[f32]) -> Vec<(f64, f64)> {
    let mut freqs = scaling.frequencies(dims, base);
    freqs.iter_mut().zip(factors).for_each(|((f, _), &factor)| *f /= factor as f64);
    freqs
}

/// cos and sin of every (position, rotated pair), computed once in f64: `[pos][pair] = (cos, sin)`.
pub fn rope_table(
    positions: usize,
    rope_dims: usize,
    base: f32,
    scaling: RopeScaling,
    factors: &[f32],
) -> Vec<[f32; 2]> {
    let freqs = factored(rope_dims, base, scaling, factors);
    let mut table = Vec::with_capacity(positions * freqs.len());
    for pos in 0..positions {
        for &(f, m) in &freqs {
            let angle = pos as f64 * f;
            table.push([(angle.cos() * m) as f32, (angle.sin() * m) as f32]);
        }
    }
    table
}

/// cos and sin of `delta` positions back for every rotated pair, one row of `rope_table`'s
/// layout at unit magnitude: the rotation that moves a key cached at position p to p - delta
/// (`ops::kv_shift`; YaRN's scale of cos and sin is in the cached key already).
pub fn rope_shift_table(
    delta: usize,
    rope_dims: usize,
    base: f32,
    scaling: RopeScaling,
    factors: &[f32],
) -> Vec<[f32; 2]> {
    factored(rope_dims, base, scaling, factors)
        .into_iter()
        .map(|(f, _)| {
            let angle = -(delta as f64) * f;
            [angle.cos() as f32, angle.sin() as f32]
        })
        .collect()
}

/// The defines the RoPE code (`shaders/rope.wgsl`) needs.
pub(crate) fn rope_defines(d: Defines, heads: &Heads) -> Defines {
    d.u32("RD", heads.rope_dims as u32).flag("NEOX", heads.neox)
}

/// Per-head RMSNorm of queries and keys before attention (Gemma 3, Qwen 3), and of values
/// without a gamma where `v_norm` (Gemma 4).
#[derive(Clone, Copy)]
pub struct QkNorm<'a> {
    pub q_gamma: &'a wgpu::Buffer,
    pub k_gamma: &'a wgpu::Buffer,
    pub eps: f32,
    pub v_norm: bool,
}

pub struct KvWrite {
    dispatch: Dispatch,
    name: &'static str,
}

impl KvWrite {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        heads: Heads,
        qkv: &Activations,
        rope: &wgpu::Buffer,
        k_cache: &KvTexture,
        v_cache: &KvTexture,
        qk_norm: Option<QkNorm>,
    ) -> Result<KvWrite> {
        if qkv.width != heads.qkv_dim() {
            return Err(Error::Gpu(format!("qkv rows of {} for heads {heads:?}", qkv.width)));
        }
        let mut defines = rope_defines(k_cache.slot_defines(Defines::new()), &heads)
            .u32("NH", heads.n_head as u32)
            .u32("NKV", heads.n_head_kv as u32)
            .u32("HD", heads.head_dim as u32)
            .u32("QS", qkv.stride as u32);
        let mut binds = vec![
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::ReadWrite, Bind::Buffer(&qkv.buffer)),
            (2, Slot::Read, Bind::Buffer(rope)),
            (14, Slot::Read, Bind::Buffer(&steps.rows)),
        ];
        binds.extend(k_cache.write_binds(3, 7));
        binds.extend(v_cache.write_binds(4, 8));
        // One workgroup per key and value head, and per query head when they are normalised.
        let mut rows = 2 * heads.n_head_kv as u32;
        if let Some(n) = qk_norm {
            defines = defines.flag("QK_NORM", true).f32("EPS", n.eps).flag("V_NORM", n.v_norm);
            binds.extend([(5, Slot::Read, Bind::Buffer(n.q_gamma)), (6, Slot::Read, Bind::Buffer(n.k_gamma))]);
            rows += heads.n_head as u32;
        }
        let grid = move |s: &Step| [rows, s.n_tokens, 1];
        Ok(KvWrite {
            dispatch: Dispatch::new(gpu, "kv_write.wgsl", &defines, &binds, grid)?,
            name: if qk_norm.is_some() { "qk-norm+kv_write" } else { "kv_write" },
        })
    }
}

impl KvWrite {
    /// The QK-norm of the queries alone, for a layer that attends to an earlier layer's keys
    /// and values and caches none of its own (Gemma 4's last layers).
    pub fn queries(gpu: &Gpu, steps: &StepBuffers, heads: Heads, qkv: &Activations, q_norm: QkNorm) -> Result<KvWrite> {
        let defines = Defines::new()
            .flag("QK_NORM", true)
            .flag("QUERIES_ONLY", true)
            .f32("EPS", q_norm.eps)
            .u32("NH", heads.n_head as u32)
            .u32("NKV", heads.n_head_kv as u32)
            .u32("HD", heads.head_dim as u32)
            .u32("QS", qkv.stride as u32);
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::ReadWrite, Bind::Buffer(&qkv.buffer)),
            (5, Slot::Read, Bind::Buffer(q_norm.q_gamma)),
        ];
        let rows = heads.n_head as u32;
        let grid = move |s: &Step| [rows, s.n_tokens, 1];
        Ok(KvWrite { dispatch: Dispatch::new(gpu, "kv_write.wgsl", &defines, &binds, grid)?, name: "q-norm" })
    }
}

impl super::Op for KvWrite {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.dispatch.encode(pass, step, rec)
    }

    fn name(&self) -> String {
        self.name.into()
    }
}

/// CPU reference: rotates one head vector in place for position `pos`.
pub fn rotate(head: &mut [f32], pos: usize, heads: &Heads, base: f32) {
    rotate_scaled(head, pos, heads, base, RopeScaling::None, &[])
}

/// `rotate` with the model's RoPE scaling and frequency factors (`rope_table`).
pub fn rotate_scaled(head: &mut [f32], pos: usize, heads: &Heads, base: f32, scaling: RopeScaling, factors: &[f32]) {
    turn(head, pos as f64, heads, factored(heads.rope_dims, base, scaling, factors));
}

/// CPU reference of `rope_shift_table`: rotates one head back by `delta` positions at unit
/// magnitude (plain RoPE frequencies).
pub fn rotate_back(head: &mut [f32], delta: usize, heads: &Heads, base: f32) {
    let unit = RopeScaling::None.frequencies(heads.rope_dims, base).into_iter().map(|(f, _)| (f, 1.0)).collect();
    turn(head, -(delta as f64), heads, unit);
}

/// Rotates each pair of `head` by `positions` times its frequency, scaled by its magnitude
/// (`freqs`: per pair, as `RopeScaling::frequencies`).
fn turn(head: &mut [f32], positions: f64, heads: &Heads, freqs: Vec<(f64, f64)>) {
    let half = heads.rope_dims / 2;
    for (i, (f, m)) in freqs.into_iter().enumerate() {
        let (s, c) = (positions * f).sin_cos();
        let (s, c) = (s * m, c * m);
        let (a, b) = if heads.neox { (i, i + half) } else { (2 * i, 2 * i + 1) };
        let (x, y) = (head[a] as f64, head[b] as f64);
        head[a] = (x * c - y * s) as f32;
        head[b] = (x * s + y * c) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::KvType;
    use crate::ops::rms_norm::rms_norm;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    #[test]
    fn yarn_keeps_fast_pairs_stretches_slow_ones_and_scales_both() {
        // gpt-oss's settings: the first pairs turn more than 32 times over 4096 positions and
        // keep their frequency; the last turn less than once and are divided by the factor.
        let yarn =
            RopeScaling::Yarn { factor: 32.0, original_ctx: 4096, beta_fast: 32.0, beta_slow: 1.0, attn_factor: 1.0 };
        let (dims, base) = (64, 150000.0);
        let plain = RopeScaling::None.frequencies(dims, base);
        let scaled = yarn.frequencies(dims, base);
        let mscale = 1.0 + 0.1 * 32f64.ln();
        assert_eq!((scaled[0].0, scaled[0].1), (plain[0].0, mscale));
        let last = dims / 2 - 1;
        assert!((scaled[last].0 - plain[last].0 / 32.0).abs() < 1e-15);
        let mid = (1..last).find(|&i| scaled[i].0 < plain[i].0 && scaled[i].0 > plain[i].0 / 32.0);
        assert!(mid.is_some(), "a ramp between the two: {scaled:?}");
        let linear = RopeScaling::Linear { factor: 8.0 }.frequencies(dims, base);
        assert_eq!(linear[3], (plain[3].0 / 8.0, 1.0));
    }

    #[test]
    fn rotates_keys_and_fills_the_cache() {
        for (seed, neox, qk_norm, v_norm, kind) in [
            (1, false, false, false, KvType::F32),
            (2, true, false, false, KvType::F32),
            (3, true, true, false, KvType::F32),
            (4, false, true, true, KvType::F32),
            (5, false, false, false, KvType::F16),
            (6, true, true, false, KvType::Q8_0),
            (7, false, false, false, KvType::Q8_0),
            (8, true, false, false, KvType::Q4_0),
            (9, false, true, true, KvType::Q4_0),
        ] {
            // Partial rotation; head_dim 96 with QK-norm: a head is not a whole number of
            // workgroup widths.
            let head_dim = if qk_norm { 96 } else { 32 };
            let heads = Heads { n_head: 6, n_head_kv: 2, head_dim, rope_dims: head_dim - 8, neox, gated: false };
            let (ctx, pos0, n_tokens, base, eps) = (16, 5, 3, 10000.0, 1e-6);
            let mut rng = rng(seed);
            let qkv = random_vec(n_tokens * heads.qkv_dim(), &mut rng);
            let (q_gamma, k_gamma) = (random_vec(head_dim, &mut rng), random_vec(head_dim, &mut rng));

            let g = gpu();
            let qkv_b = g.activations_with("qkv", heads.qkv_dim(), &qkv).unwrap();
            let rope_b =
                g.buffer_with("rope", &rope_table(ctx, heads.rope_dims, base, RopeScaling::None, &[])).unwrap();
            let (qg, kg) = (g.buffer_with("q gamma", &q_gamma).unwrap(), g.buffer_with("k gamma", &k_gamma).unwrap());
            let kc = g.kv_texture("k", kind, heads.n_head_kv, head_dim, ctx as u32).unwrap();
            let vc = g.kv_texture("v", kind, heads.n_head_kv, head_dim, ctx as u32).unwrap();
            let step = Step { n_tokens: n_tokens as u32, pos0: pos0 as u32, ..Default::default() };
            let steps = step_buffers();
            let norm = qk_norm.then_some(QkNorm { q_gamma: &qg, k_gamma: &kg, eps, v_norm });
            let op = KvWrite::new(g, &steps, heads, &qkv_b, &rope_b, &kc, &vc, norm).unwrap();
            run(&steps, &[&op], step);

            let (hd, q, kv) = (heads.head_dim, heads.q_dim(), heads.kv_dim());
            let what = format!("neox {neox}, qk-norm {qk_norm}, v-norm {v_norm}, {kind:?}");
            let got_k = pollster::block_on(g.read_kv(&kc, ctx as u32, hd)).unwrap();
            let got_v = pollster::block_on(g.read_kv(&vc, ctx as u32, hd)).unwrap();
            let mut want_rows = qkv.clone();
            for t in 0..n_tokens {
                let row = &mut want_rows[t * heads.qkv_dim()..][..heads.qkv_dim()];
                let mut want_k = row[q..q + kv].to_vec();
                if qk_norm {
                    for h in row[..q].chunks_mut(hd) {
                        let normed = rms_norm(h, &q_gamma, eps);
                        h.copy_from_slice(&normed);
                    }
                    want_k = want_k.chunks(hd).flat_map(|h| rms_norm(h, &k_gamma, eps)).collect();
                }
                want_k.chunks_mut(hd).for_each(|h| rotate(h, pos0 + t, &heads, base));
                let p = pos0 + t;
                assert_cache_holds(kind, &got_k[p * kv..][..kv], &want_k, hd, &format!("cached k, {what}"));
                let want_v: Vec<f32> = match v_norm {
                    false => row[q + kv..].to_vec(),
                    true => row[q + kv..].chunks(hd).flat_map(|h| rms_norm(h, &vec![1.0; hd], eps)).collect(),
                };
                assert_cache_holds(kind, &got_v[p * kv..][..kv], &want_v, hd, &format!("cached v, {what}"));
            }
            assert!(got_k[..pos0 * kv].iter().all(|&v| v == 0.0), "positions before pos0 untouched");
            // Queries are normalised in place (with QK-norm); keys and values are only read.
            assert_close(&read_rows(&qkv_b, n_tokens), &want_rows, 1e-5, &format!("qkv rows, {what}"));
        }
    }
}
