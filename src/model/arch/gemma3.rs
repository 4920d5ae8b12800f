//! The Gemma 3 family: grouped-query attention with QK-norm, five sliding-window layers (local
//! RoPE base) for every global one, RMSNorm before and after both attention and the
//! feed-forward, a GELU-gated feed-forward, embeddings scaled by sqrt(width) and an LM head
//! tied to them. (GGUF converters store Gemma's norm weights with its `1 +` already added.)

use super::{Architecture, Ends, Family, attention, kv_write, sliding};
use crate::Result;
use crate::gpu::Gpu;
use crate::model::config::ModelConfig;
use crate::model::state::State;
use crate::model::weights::WeightLoader;
use crate::ops::Op;
use crate::ops::kv_write::QkNorm;
use crate::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::ops::rms_norm::RmsNorm;
use crate::quant::RowOrder;

/// RoPE base of the sliding-window layers (Gemma 3's `rope_local_base_freq`; GGUF files do not
/// carry it).
const ROPE_BASE_LOCAL: f32 = 10000.0;

pub const GEMMA3: Family = Family {
    arch: "gemma3",
    rope_neox: true,
    rope_base_swa: Some(ROPE_BASE_LOCAL),
    // Gemma 3's linear scaling (4B and up) is for its global layers alone.
    swa_rope_scaled: false,
    // Every sixth layer attends to the whole context; the others to the sliding window.
    swa_pattern: 6,
    expert_glu: Epilogue::GeGlu,
    harmony: false,
    routing: None,
    delta_net: false,
    gated_attention: false,
    load: |w, c| Ok(Box::new(Gemma3::load(w, c)?)),
};

struct Layer {
    attn_norm: wgpu::Buffer,
    qkv: GpuMatrix,
    q_norm: wgpu::Buffer,
    k_norm: wgpu::Buffer,
    attn_out: GpuMatrix,
    post_attn_norm: wgpu::Buffer,
    ffn_norm: wgpu::Buffer,
    gate_up: GpuMatrix,
    down: GpuMatrix,
    post_ffn_norm: wgpu::Buffer,
}

pub struct Gemma3 {
    ends: Ends,
    layers: Vec<Layer>,
}

impl Gemma3 {
    pub fn load(w: &WeightLoader, c: &ModelConfig) -> Result<Gemma3> {
        let e = c.n_embd;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let h = c.heads(i);
            let (q, kv, hd) = (h.q_dim(), h.kv_dim(), h.head_dim);
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: w.vector(&n("attn_norm"), e)?,
                qkv: w.matrix(&[(&n("attn_q"), q), (&n("attn_k"), kv), (&n("attn_v"), kv)], e, RowOrder::Concat)?,
                q_norm: w.vector(&n("attn_q_norm"), hd)?,
                k_norm: w.vector(&n("attn_k_norm"), hd)?,
                attn_out: w.matrix(&[(&n("attn_output"), e)], q, RowOrder::Concat)?,
                post_attn_norm: w.vector(&n("post_attention_norm"), e)?,
                ffn_norm: w.vector(&n("ffn_norm"), e)?,
                gate_up: w.matrix(&[(&n("ffn_gate"), c.n_ff), (&n("ffn_up"), c.n_ff)], e, RowOrder::Interleave)?,
                down: w.matrix(&[(&n("ffn_down"), e)], c.n_ff, RowOrder::Concat)?,
                post_ffn_norm: w.vector(&n("post_ffw_norm"), e)?,
            });
        }
        Ok(Gemma3 { ends: Ends::load(w, c)?, layers })
    }
}

impl Architecture for Gemma3 {
    fn graph(&self, gpu: &Gpu, c: &ModelConfig, s: &State) -> Result<Vec<Box<dyn Op>>> {
        let eps = c.rms_eps;
        let st = &s.steps;
        let embed_scale = (c.n_embd as f32).sqrt();
        let mut ops: Vec<Box<dyn Op>> = vec![self.ends.embed(gpu, s, embed_scale)?];
        for (l, layer) in self.layers.iter().enumerate() {
            let (rope, window) = sliding(c, s, l);
            let (qkv, attn) = s.attention_rows(&c.heads(l))?;
            let norm_first = LinearSpec::new(Some((&layer.attn_norm, eps)), Epilogue::Store);
            ops.push(Box::new(Linear::new(gpu, st, &layer.qkv, &s.x, qkv, &norm_first)?));
            let qk_norm = QkNorm { q_gamma: &layer.q_norm, k_gamma: &layer.k_norm, eps };
            ops.push(kv_write(gpu, c, s, l, rope, Some(qk_norm))?);
            // Queries scaled by 1/sqrt(head size): Gemma 3's query_pre_attn_scalar for these models.
            ops.push(attention(gpu, c, s, l, rope, window, None)?);
            let store = LinearSpec::new(None, Epilogue::Store);
            ops.push(Box::new(Linear::new(gpu, st, &layer.attn_out, attn, &s.branch, &store)?));
            ops.push(Box::new(RmsNorm::add_to(gpu, st, &s.branch, &layer.post_attn_norm, eps, &s.x)?));
            let gated = LinearSpec::new(Some((&layer.ffn_norm, eps)), Epilogue::GeGlu);
            ops.push(Box::new(Linear::new(gpu, st, &layer.gate_up, &s.x, &s.ffn, &gated)?));
            ops.push(Box::new(Linear::new(gpu, st, &layer.down, &s.ffn, &s.branch, &store)?));
            ops.push(Box::new(RmsNorm::add_to(gpu, st, &s.branch, &layer.post_ffn_norm, eps, &s.x)?));
        }
        ops.push(self.ends.logits(gpu, c, s)?);
        Ok(ops)
    }
}
