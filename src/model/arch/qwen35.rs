//! The Qwen 3.5 / 3.6 family: three gated delta-net (linear attention) layers for every gated
//! attention layer (the file says which: `full_attention_interval`), each followed by a SwiGLU
//! feed-forward, RMSNorm throughout.
//!
//! A delta-net layer projects the normed stream once into its query, key and value channels,
//! its output gate z and its per-head beta and alpha (one fused matrix), convolves the channels
//! causally, runs the gated delta rule over each value head's state and normalises the result
//! gated by z (`ops::delta_net`), then projects it back into the stream. An attention layer is
//! Qwen 3's (QK-norm, NeoX RoPE over the file's rotated dimensions) with an output gate per
//! query head, stored after it in `attn_q` and moved after V here (`Heads::gated`). Qwen 3.5
//! MoE (`qwen35moe`) routes each token to its experts (softmax over all, top-k renormalised)
//! beside a shared expert gated by the sigmoid of its own router row (`arch::moe`).

use super::ffn::Ffn;
use super::{Architecture, Ends, Family, attention, kv_write};
use crate::gpu::Gpu;
use crate::model::config::ModelConfig;
use crate::model::state::State;
use crate::model::weights::WeightLoader;
use crate::ops::Op;
use crate::ops::delta_net::{DeltaNet, DeltaShape, DeltaWeights};
use crate::ops::kv_write::QkNorm;
use crate::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::ops::route::{Gating, Routing};
use crate::quant::RowOrder;
use crate::{Error, Result};

pub const QWEN35: Family = Family {
    arch: "qwen35",
    rope_neox: true,
    rope_base_swa: None,
    swa_rope_scaled: false,
    swa_pattern: 0,
    expert_glu: Epilogue::SwiGlu,
    harmony: false,
    routing: None,
    delta_net: true,
    gated_attention: true,
    attention_scale: None,
    load: |w, c| Ok(Box::new(Qwen35::load(w, c)?)),
};
pub const QWEN35MOE: Family = Family {
    arch: "qwen35moe",
    routing: Some(Routing { gating: Gating::Softmax, normalize: true, scale: 1.0 }),
    ..QWEN35
};

enum Mixer {
    DeltaNet {
        /// Query, key and value channels, z, beta and alpha: one matvec.
        proj: GpuMatrix,
        conv: wgpu::Buffer,
        decay: wgpu::Buffer,
        gamma: wgpu::Buffer,
        out: GpuMatrix,
    },
    Attention {
        /// Q, K, V and the queries' output gates.
        qkv: GpuMatrix,
        q_norm: wgpu::Buffer,
        k_norm: wgpu::Buffer,
        out: GpuMatrix,
    },
}

struct Layer {
    attn_norm: wgpu::Buffer,
    mixer: Mixer,
    ffn_norm: wgpu::Buffer,
    ffn: Ffn,
}

pub struct Qwen35 {
    ends: Ends,
    layers: Vec<Layer>,
}

fn delta_shape(c: &ModelConfig) -> Result<DeltaShape> {
    c.delta_net.as_ref().map(|d| d.shape).ok_or_else(|| Error::Unsupported("qwen35 without ssm.* keys".into()))
}

impl Qwen35 {
    pub fn load(w: &WeightLoader, c: &ModelConfig) -> Result<Qwen35> {
        let e = c.n_embd;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let h = c.heads(i);
            let (q, kv, hd) = (h.q_dim(), h.kv_dim(), h.head_dim);
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let recurrent = c.delta_net.as_ref().is_some_and(|d| d.recurrent.get(i) == Some(&true));
            let mixer = if recurrent {
                let s = delta_shape(c)?;
                let (ch, vd, hv) = (s.channels(), s.value_dim(), s.value_heads);
                let parts = [(n("attn_qkv"), ch), (n("attn_gate"), vd), (n("ssm_beta"), hv), (n("ssm_alpha"), hv)];
                let parts: Vec<(&str, usize)> = parts.iter().map(|(name, rows)| (name.as_str(), *rows)).collect();
                Mixer::DeltaNet {
                    proj: w.matrix(&parts, e, RowOrder::Concat)?,
                    conv: w.upload_values("ssm_conv1d", &w.values(&n("ssm_conv1d"), &[s.conv, ch])?)?,
                    decay: w.vectors(&[(&format!("blk.{i}.ssm_dt.bias"), hv), (&format!("blk.{i}.ssm_a"), hv)])?,
                    gamma: w.vector(&n("ssm_norm"), s.head)?,
                    out: w.matrix(&[(&n("ssm_out"), e)], vd, RowOrder::Concat)?,
                }
            } else {
                // attn_q holds each head's queries and then its gate; queries first here, the
                // gates after V.
                let q_name = n("attn_q");
                let head_rows =
                    |h: usize, gate: usize| (q_name.as_str(), 2 * q, (2 * h + gate) * hd..(2 * h + gate + 1) * hd);
                let mut parts: Vec<_> = (0..c.n_head).map(|h| head_rows(h, 0)).collect();
                let (k_name, v_name) = (n("attn_k"), n("attn_v"));
                parts.push((k_name.as_str(), kv, 0..kv));
                parts.push((v_name.as_str(), kv, 0..kv));
                parts.extend((0..c.n_head).map(|h| head_rows(h, 1)));
                Mixer::Attention {
                    qkv: w.matrix_rows(&parts, e, RowOrder::Concat)?,
                    q_norm: w.vector(&n("attn_q_norm"), hd)?,
                    k_norm: w.vector(&n("attn_k_norm"), hd)?,
                    out: w.matrix(&[(&n("attn_output"), e)], q, RowOrder::Concat)?,
                }
            };
            layers.push(Layer {
                attn_norm: w.vector(&n("attn_norm"), e)?,
                mixer,
                ffn_norm: w.vector(&n("post_attention_norm"), e)?,
                ffn: Ffn::load(w, c, i)?,
            });
        }
        Ok(Qwen35 { ends: Ends::load(w, c)?, layers })
    }
}

impl Architecture for Qwen35 {
    fn graph(&self, gpu: &Gpu, c: &ModelConfig, s: &State) -> Result<Vec<Box<dyn Op>>> {
        let plain = LinearSpec::new;
        let eps = c.rms_eps;
        let st = &s.steps;
        let mut ops: Vec<Box<dyn Op>> = vec![self.ends.embed(gpu, s, 1.0)?];
        for (l, layer) in self.layers.iter().enumerate() {
            let normed = Some((&layer.attn_norm, eps));
            match &layer.mixer {
                Mixer::DeltaNet { proj, conv, decay, gamma, out } => {
                    let d = s.delta.as_ref().ok_or_else(|| Error::Gpu("no delta-net buffers".into()))?;
                    ops.push(Box::new(Linear::new(gpu, st, proj, &s.x, &d.proj, &plain(normed, Epilogue::Store))?));
                    let weights = DeltaWeights { conv, decay, gamma };
                    let state = s.memory.recurrent(l)?;
                    let shape = delta_shape(c)?;
                    ops.push(Box::new(DeltaNet::new(gpu, st, shape, eps, d, &weights, state)?));
                    ops.push(Box::new(Linear::new(gpu, st, out, &d.out, &s.x, &plain(None, Epilogue::Add))?));
                }
                Mixer::Attention { qkv, q_norm, k_norm, out } => {
                    let (qkv_rows, attn) = s.attention_rows(&c.heads(l))?;
                    ops.push(Box::new(Linear::new(gpu, st, qkv, &s.x, qkv_rows, &plain(normed, Epilogue::Store))?));
                    let qk_norm = QkNorm { q_gamma: q_norm, k_gamma: k_norm, eps, v_norm: false };
                    ops.push(kv_write(gpu, c, s, l, &s.rope, Some(qk_norm))?);
                    ops.push(attention(gpu, c, s, l, &s.rope, None, None)?);
                    ops.push(Box::new(Linear::new(gpu, st, out, attn, &s.x, &plain(None, Epilogue::Add))?));
                }
            }
            ops.extend(layer.ffn.ops(gpu, s, (&layer.ffn_norm, eps))?);
        }
        ops.push(self.ends.logits(gpu, c, s)?);
        Ok(ops)
    }
}
