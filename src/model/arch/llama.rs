//! The Llama family (SmolLM2, TinyLlama, Llama 2/3, Mistral; Qwen 2, which adds Q|K|V biases;
//! Qwen 3, which adds QK-norm; Qwen 3 MoE, Qwen 3 with a mixture-of-experts feed-forward;
//! Phi 3, which stores Q|K|V and gate|up fused): pre-norm blocks of grouped-query attention
//! with RoPE and a SwiGLU feed-forward, RMSNorm throughout.

use super::ffn::Ffn;
use super::{Architecture, Ends, Family, attention, cache_write, kv_write, load_qkv};
use crate::Result;
use crate::gpu::Gpu;
use crate::model::config::ModelConfig;
use crate::model::state::State;
use crate::model::weights::WeightLoader;
use crate::ops::Op;
use crate::ops::kv_write::QkNorm;
use crate::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::ops::route::{Gating, Routing};
use crate::quant::RowOrder;

fn load(w: &WeightLoader, c: &ModelConfig) -> Result<Box<dyn Architecture>> {
    Ok(Box::new(Llama::load(w, c)?))
}

pub const LLAMA: Family = Family {
    arch: "llama",
    rope_neox: false,
    rope_base_swa: None,
    swa_rope_scaled: false,
    swa_pattern: 0,
    expert_glu: Epilogue::SwiGlu,
    harmony: false,
    routing: None,
    delta_net: false,
    gated_attention: false,
    attention_scale: None,
    load,
};
pub const QWEN2: Family = Family { arch: "qwen2", rope_neox: true, ..LLAMA };
pub const QWEN3: Family = Family { arch: "qwen3", rope_neox: true, ..LLAMA };
pub const PHI3: Family = Family { arch: "phi3", rope_neox: true, ..LLAMA };
/// Qwen 3 MoE (Qwen3-30B-A3B, 235B-A22B): the softmax over all experts, the top-k weights
/// renormalised (its `norm_topk_prob`).
pub const QWEN3MOE: Family = Family {
    arch: "qwen3moe",
    rope_neox: true,
    routing: Some(Routing { gating: Gating::Softmax, normalize: true, scale: 1.0 }),
    ..LLAMA
};

struct Layer {
    attn_norm: wgpu::Buffer,
    /// Q, K and V stacked: one matvec.
    qkv: GpuMatrix,
    /// Biases of Q|K|V (Qwen 2), when the file has them.
    qkv_bias: Option<wgpu::Buffer>,
    /// Per-head RMSNorm gammas of queries and keys (Qwen 3), when the file has them.
    qk_norm: Option<(wgpu::Buffer, wgpu::Buffer)>,
    attn_out: GpuMatrix,
    ffn_norm: wgpu::Buffer,
    ffn: Ffn,
}

pub struct Llama {
    ends: Ends,
    layers: Vec<Layer>,
}

impl Llama {
    pub fn load(w: &WeightLoader, c: &ModelConfig) -> Result<Llama> {
        let e = c.n_embd;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let h = c.heads(i);
            let q = h.q_dim();
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let (qkv, qkv_bias) = load_qkv(w, c, i)?;
            layers.push(Layer {
                attn_norm: w.vector(&n("attn_norm"), e)?,
                qkv,
                qkv_bias,
                qk_norm: if w.has(&n("attn_q_norm")) {
                    Some((w.vector(&n("attn_q_norm"), h.head_dim)?, w.vector(&n("attn_k_norm"), h.head_dim)?))
                } else {
                    None
                },
                attn_out: w.matrix(&[(&n("attn_output"), e)], q, RowOrder::Concat)?,
                ffn_norm: w.vector(&n("ffn_norm"), e)?,
                ffn: Ffn::load(w, c, i)?,
            });
        }
        Ok(Llama { ends: Ends::load(w, c)?, layers })
    }
}

impl Architecture for Llama {
    fn graph(&self, gpu: &Gpu, c: &ModelConfig, s: &State) -> Result<Vec<Box<dyn Op>>> {
        let plain = LinearSpec::new;
        let eps = c.rms_eps;
        let st = &s.steps;
        let mut ops: Vec<Box<dyn Op>> = vec![self.ends.embed(gpu, s, 1.0)?];
        for (l, layer) in self.layers.iter().enumerate() {
            // Keys are normalised (QK-norm) over whole heads before they are rotated and cached,
            // which the Q|K|V kernel's octets of rows cannot do.
            let cache = if layer.qk_norm.is_none() { cache_write(c, s, l, &s.rope) } else { None };
            let (qkv, attn) = s.attention_rows(&c.heads(l))?;
            ops.push(Box::new(Linear::new(
                gpu,
                st,
                &layer.qkv,
                &s.x,
                qkv,
                &LinearSpec {
                    bias: layer.qkv_bias.as_ref(),
                    cache,
                    ..plain(Some((&layer.attn_norm, eps)), Epilogue::Store)
                },
            )?));
            if cache.is_none() {
                let qk_norm =
                    layer.qk_norm.as_ref().map(|(q_gamma, k_gamma)| QkNorm { q_gamma, k_gamma, eps, v_norm: false });
                ops.push(kv_write(gpu, c, s, l, &s.rope, qk_norm)?);
            }
            ops.push(attention(gpu, c, s, l, &s.rope, None, None)?);
            ops.push(Box::new(Linear::new(gpu, st, &layer.attn_out, attn, &s.x, &plain(None, Epilogue::Add))?));
            ops.extend(layer.ffn.ops(gpu, s, (&layer.ffn_norm, eps))?);
        }
        ops.push(self.ends.logits(gpu, c, s)?);
        Ok(ops)
    }
}
