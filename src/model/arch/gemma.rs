//! The Gemma 3 and Gemma 4 families: grouped-query attention with QK-norm, sliding-window
//! layers (local RoPE base) around global ones, RMSNorm before and after both attention and the
//! feed-forward, a GELU-gated feed-forward, embeddings scaled by sqrt(width) and an LM head
//! tied to them. (GGUF converters store Gemma's norm weights with its `1 +` already added.)
//!
//! Gemma 4 adds: sliding-window layers with heads of their own (`ModelConfig::heads`), values
//! RMS-normalised too, attention scores unscaled (its queries and keys are normalised),
//! proportional RoPE on the global layers (the file's `rope_freqs` factors), a per-layer output
//! scale, the logits softcapped, layers that may take V from K (no `attn_v`), and last layers
//! that attend to an earlier layer's cache instead of their own (`ModelConfig::kv_source`), and
//! per-layer inputs (E2B, E4B): a second embedding of each token, a slice per layer, mixed with
//! a projection of its first embedding, that gates a third branch of each layer
//! (`ops::per_layer`), and in 26B-A4B a mixture of experts beside the dense feed-forward, each
//! output normalised before the two are summed.

use super::moe::ExpertFfn;
use super::{Architecture, Ends, Family, attention, kv_write, sliding};
use crate::gpu::Activations;
use crate::gpu::Gpu;
use crate::model::config::ModelConfig;
use crate::model::state::State;
use crate::model::weights::WeightLoader;
use crate::ops::Op;
use crate::ops::embed::Embed;
use crate::ops::kv_write::{KvWrite, QkNorm};
use crate::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::ops::per_layer::PerLayerInputs;
use crate::ops::rms_norm::RmsNorm;
use crate::ops::route::{Gating, Routing};
use crate::quant::RowOrder;
use crate::{Error, Result};

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
    attention_scale: None,
    load: |w, c| Ok(Box::new(Gemma::load(w, c, false)?)),
};

pub const GEMMA4: Family = Family {
    arch: "gemma4",
    // Four sliding-window layers for every global one where the file has no pattern.
    swa_pattern: 5,
    attention_scale: Some(1.0),
    // 26B-A4B's experts (the family's other models are dense).
    routing: Some(Routing { gating: Gating::Softmax, normalize: true, scale: 1.0 }),
    load: |w, c| Ok(Box::new(Gemma::load(w, c, true)?)),
    ..GEMMA3
};

struct Layer {
    attn_norm: wgpu::Buffer,
    qkv: GpuMatrix,
    q_norm: wgpu::Buffer,
    /// None for a layer that attends to an earlier layer's cache (its `qkv` is Q alone).
    k_norm: Option<wgpu::Buffer>,
    attn_out: GpuMatrix,
    post_attn_norm: wgpu::Buffer,
    ffn_norm: wgpu::Buffer,
    gate_up: GpuMatrix,
    down: GpuMatrix,
    post_ffn_norm: wgpu::Buffer,
    /// What the layer's output is multiplied by (Gemma 4's `layer_output_scale`).
    out_scale: Option<wgpu::Buffer>,
    per_layer: Option<LayerInput>,
    experts: Option<BesideDense>,
}

/// Gemma 4 26B-A4B's experts, beside the dense feed-forward: the dense output normalised
/// (`post_dense`), the experts' input (`pre_norm`) and output (`post_experts`) likewise, and
/// the two summed before the layer's feed-forward post-norm.
struct BesideDense {
    ffn: ExpertFfn,
    pre_norm: wgpu::Buffer,
    post_dense: wgpu::Buffer,
    post_experts: wgpu::Buffer,
}

/// A layer's use of its per-layer input: `proj(gelu(gate x) * input)`, RMS-normalised, joins
/// the residual stream.
struct LayerInput {
    gate: GpuMatrix,
    proj: GpuMatrix,
    post_norm: wgpu::Buffer,
}

/// The model's per-layer inputs: for each token, its row of `token_embd` times
/// sqrt(width), plus its first embedding projected by `model_proj` (RMS-normalised per
/// layer), over sqrt(2).
struct PerLayerEmbedding {
    token_embd: GpuMatrix,
    model_proj: GpuMatrix,
    proj_norm: wgpu::Buffer,
}

pub struct Gemma {
    ends: Ends,
    per_layer: Option<PerLayerEmbedding>,
    layers: Vec<Layer>,
    /// Gemma 4: values normalised like keys, without a gamma.
    v_norm: bool,
}

impl Gemma {
    pub fn load(w: &WeightLoader, c: &ModelConfig, gemma4: bool) -> Result<Gemma> {
        let e = c.n_embd;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let h = c.heads(i);
            let (q, kv, hd) = (h.q_dim(), h.kv_dim(), h.head_dim);
            let ff = c.ffn_width(i);
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            // Without attn_v (Gemma 4's larger models' global layers) V is K, before its norm.
            let v_name = if w.has(&n("attn_v")) { n("attn_v") } else { n("attn_k") };
            let scale_name = n("layer_output_scale");
            layers.push(Layer {
                attn_norm: w.vector(&n("attn_norm"), e)?,
                qkv: match c.kv_source(i) {
                    Some(_) => w.matrix(&[(&n("attn_q"), q)], e, RowOrder::Concat)?,
                    None => w.matrix(&[(&n("attn_q"), q), (&n("attn_k"), kv), (&v_name, kv)], e, RowOrder::Concat)?,
                },
                q_norm: w.vector(&n("attn_q_norm"), hd)?,
                k_norm: match c.kv_source(i) {
                    Some(_) => None,
                    None => Some(w.vector(&n("attn_k_norm"), hd)?),
                },
                attn_out: w.matrix(&[(&n("attn_output"), e)], q, RowOrder::Concat)?,
                post_attn_norm: w.vector(&n("post_attention_norm"), e)?,
                ffn_norm: w.vector(&n("ffn_norm"), e)?,
                gate_up: w.matrix(&[(&n("ffn_gate"), ff), (&n("ffn_up"), ff)], e, RowOrder::Interleave)?,
                down: w.matrix(&[(&n("ffn_down"), e)], ff, RowOrder::Concat)?,
                post_ffn_norm: w.vector(&n("post_ffw_norm"), e)?,
                out_scale: if w.has(&scale_name) { Some(w.vector(&scale_name, 1)?) } else { None },
                experts: match c.experts {
                    None => None,
                    Some(_) => Some(BesideDense {
                        ffn: ExpertFfn::load(w, c, i)?,
                        pre_norm: w.vector(&n("pre_ffw_norm_2"), e)?,
                        post_dense: w.vector(&n("post_ffw_norm_1"), e)?,
                        post_experts: w.vector(&n("post_ffw_norm_2"), e)?,
                    }),
                },
                per_layer: match c.per_layer_width {
                    0 => None,
                    p => Some(LayerInput {
                        gate: w.matrix(&[(&n("inp_gate"), p)], e, RowOrder::Concat)?,
                        proj: w.matrix(&[(&n("proj"), e)], p, RowOrder::Concat)?,
                        post_norm: w.vector(&n("post_norm"), e)?,
                    }),
                },
            });
        }
        let per_layer = match c.per_layer_width {
            0 => None,
            p => Some(PerLayerEmbedding {
                token_embd: w.matrix(&[("per_layer_token_embd.weight", c.n_vocab)], p * c.n_layer, RowOrder::Concat)?,
                model_proj: w.matrix(&[("per_layer_model_proj.weight", p * c.n_layer)], e, RowOrder::Concat)?,
                proj_norm: w.vector("per_layer_proj_norm.weight", p)?,
            }),
        };
        Ok(Gemma { ends: Ends::load(w, c)?, per_layer, layers, v_norm: gemma4 })
    }
}

impl Architecture for Gemma {
    fn graph(&self, gpu: &Gpu, c: &ModelConfig, s: &State) -> Result<Vec<Box<dyn Op>>> {
        let eps = c.rms_eps;
        let st = &s.steps;
        let embed_scale = (c.n_embd as f32).sqrt();
        let mut ops: Vec<Box<dyn Op>> = vec![self.ends.embed(gpu, s, embed_scale)?];
        let store = LinearSpec::new(None, Epilogue::Store);
        let per_layer = match (&self.per_layer, &s.per_layer) {
            (None, _) => None,
            (Some(weights), Some(b)) => {
                let width = c.per_layer_width;
                let scale = (width as f32).sqrt();
                ops.push(Box::new(Embed::new(gpu, st, &weights.token_embd, &s.ids, &b.inputs, scale)?));
                ops.push(Box::new(Linear::new(gpu, st, &weights.model_proj, &s.x, &b.proj, &store)?));
                ops.push(Box::new(PerLayerInputs::combine(gpu, st, b, &weights.proj_norm, eps, c.n_embd)?));
                Some(b)
            }
            (Some(_), None) => return Err(Error::Gpu("a session without per-layer input buffers".into())),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let (rope, window) = sliding(c, s, l);
            let heads = c.heads(l);
            let (qkv, attn) = s.attention_rows(&heads)?;
            let norm_first = LinearSpec::new(Some((&layer.attn_norm, eps)), Epilogue::Store);
            match &layer.k_norm {
                Some(k_gamma) => {
                    ops.push(Box::new(Linear::new(gpu, st, &layer.qkv, &s.x, qkv, &norm_first)?));
                    let qk_norm = QkNorm { q_gamma: &layer.q_norm, k_gamma, eps, v_norm: self.v_norm };
                    ops.push(kv_write(gpu, c, s, l, rope, Some(qk_norm))?);
                }
                None => {
                    // Queries alone, into the Q part of the rows; keys and values are an
                    // earlier layer's (`State::memory` gives its cache for this layer).
                    let queries = Activations { width: heads.q_dim(), buffer: qkv.buffer.clone(), ..*qkv };
                    ops.push(Box::new(Linear::new(gpu, st, &layer.qkv, &s.x, &queries, &norm_first)?));
                    let q_norm = QkNorm { q_gamma: &layer.q_norm, k_gamma: &layer.q_norm, eps, v_norm: false };
                    ops.push(Box::new(KvWrite::queries(gpu, st, heads, &queries, q_norm)?));
                }
            }
            // Gemma 3 scales queries by 1/sqrt(head size) (its query_pre_attn_scalar for these
            // models); Gemma 4 not at all (`attention_scale`).
            ops.push(attention(gpu, c, s, l, rope, window, None)?);
            ops.push(Box::new(Linear::new(gpu, st, &layer.attn_out, attn, &s.branch, &store)?));
            ops.push(Box::new(RmsNorm::add_to(gpu, st, &s.branch, &layer.post_attn_norm, eps, &s.x, None)?));
            let gated = LinearSpec::new(Some((&layer.ffn_norm, eps)), Epilogue::GeGlu);
            let ffn = s.ffn_rows(layer.down.cols)?;
            ops.push(Box::new(Linear::new(gpu, st, &layer.gate_up, &s.x, &ffn, &gated)?));
            ops.push(Box::new(Linear::new(gpu, st, &layer.down, &ffn, &s.branch, &store)?));
            let ffn_out = match &layer.experts {
                None => &s.branch,
                Some(x) => {
                    let sum = s.experts.as_ref().and_then(|b| b.beside_dense.as_ref());
                    let sum = sum.ok_or_else(|| Error::Gpu("a session without the dense and experts' sum".into()))?;
                    ops.push(Box::new(RmsNorm::store_in(gpu, st, &s.branch, &x.post_dense, eps, sum)?));
                    ops.extend(x.ffn.ops(gpu, s, (&x.pre_norm, eps), Some(&s.branch))?);
                    ops.push(Box::new(RmsNorm::add_to(gpu, st, &s.branch, &x.post_experts, eps, sum, None)?));
                    sum
                }
            };
            // The output scale applies to the layer's whole output, after its last branch.
            let out_scale = layer.out_scale.as_ref();
            let (ffn_scale, last) = match (&layer.per_layer, per_layer) {
                (Some(weights), Some(b)) => (None, Some((weights, b))),
                _ => (out_scale, None),
            };
            ops.push(Box::new(RmsNorm::add_to(gpu, st, ffn_out, &layer.post_ffn_norm, eps, &s.x, ffn_scale)?));
            if let Some((weights, b)) = last {
                ops.push(Box::new(Linear::new(gpu, st, &weights.gate, &s.x, &b.gate, &store)?));
                ops.push(Box::new(PerLayerInputs::gate(gpu, st, b, l)?));
                ops.push(Box::new(Linear::new(gpu, st, &weights.proj, &b.gate, &s.branch, &store)?));
                ops.push(Box::new(RmsNorm::add_to(gpu, st, &s.branch, &weights.post_norm, eps, &s.x, out_scale)?));
            }
        }
        ops.push(self.ends.logits(gpu, c, s)?);
        Ok(ops)
    }
}
