//! gpt-oss (OpenAI's open-weight models, 20B and 120B): grouped-query attention with Q/K/V and
//! output biases, attention sinks, YaRN RoPE and a sliding window on every other layer, then
//! a mixture-of-experts feed-forward (router with a bias and a softmax over the selected
//! experts, expert biases, a clamped SwiGLU; MXFP4 experts in the released files) after the
//! post-attention norm. RMSNorm throughout, an untied LM head.

use super::moe::ExpertFfn;
use super::{Architecture, Ends, Family, attention, kv_write, load_qkv, sliding};
use crate::Result;
use crate::gpu::Gpu;
use crate::model::config::ModelConfig;
use crate::model::state::State;
use crate::model::weights::WeightLoader;
use crate::ops::Op;
use crate::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::ops::route::{Gating, Routing};
use crate::quant::RowOrder;

pub const GPT_OSS: Family = Family {
    arch: "gpt-oss",
    rope_neox: true,
    rope_base_swa: None,
    swa_rope_scaled: true,
    swa_pattern: 2,
    expert_glu: Epilogue::SwiGluOai,
    harmony: true,
    routing: Some(Routing { gating: Gating::SoftmaxSelected, normalize: false, scale: 1.0 }),
    delta_net: false,
    gated_attention: false,
    attention_scale: None,
    load: |w, c| Ok(Box::new(GptOss::load(w, c)?)),
};

struct Layer {
    attn_norm: wgpu::Buffer,
    qkv: GpuMatrix,
    qkv_bias: Option<wgpu::Buffer>,
    attn_out: GpuMatrix,
    attn_out_bias: Option<wgpu::Buffer>,
    /// One logit per query head joining its softmax.
    sinks: wgpu::Buffer,
    post_attn_norm: wgpu::Buffer,
    ffn: ExpertFfn,
}

pub struct GptOss {
    ends: Ends,
    layers: Vec<Layer>,
}

impl GptOss {
    pub fn load(w: &WeightLoader, c: &ModelConfig) -> Result<GptOss> {
        let e = c.n_embd;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let h = c.heads(i);
            let q = h.q_dim();
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let b = |s: &str| format!("blk.{i}.{s}.bias");
            let (qkv, qkv_bias) = load_qkv(w, c, i)?;
            layers.push(Layer {
                attn_norm: w.vector(&n("attn_norm"), e)?,
                qkv,
                qkv_bias,
                attn_out: w.matrix(&[(&n("attn_output"), e)], q, RowOrder::Concat)?,
                attn_out_bias: if w.has(&b("attn_output")) { Some(w.vector(&b("attn_output"), e)?) } else { None },
                sinks: w.vector(&n("attn_sinks"), h.n_head)?,
                post_attn_norm: w.vector(&n("post_attention_norm"), e)?,
                ffn: ExpertFfn::load(w, c, i)?,
            });
        }
        Ok(GptOss { ends: Ends::load(w, c)?, layers })
    }
}

impl Architecture for GptOss {
    fn graph(&self, gpu: &Gpu, c: &ModelConfig, s: &State) -> Result<Vec<Box<dyn Op>>> {
        let eps = c.rms_eps;
        let st = &s.steps;
        let mut ops: Vec<Box<dyn Op>> = vec![self.ends.embed(gpu, s, 1.0)?];
        for (l, layer) in self.layers.iter().enumerate() {
            let (rope, window) = sliding(c, s, l);
            let qkv = LinearSpec {
                bias: layer.qkv_bias.as_ref(),
                ..LinearSpec::new(Some((&layer.attn_norm, eps)), Epilogue::Store)
            };
            let (qkv_rows, attn) = s.attention_rows(&c.heads(l))?;
            ops.push(Box::new(Linear::new(gpu, st, &layer.qkv, &s.x, qkv_rows, &qkv)?));
            ops.push(kv_write(gpu, c, s, l, rope, None)?);
            ops.push(attention(gpu, c, s, l, rope, window, Some(&layer.sinks))?);
            let out = LinearSpec { bias: layer.attn_out_bias.as_ref(), ..LinearSpec::new(None, Epilogue::Add) };
            ops.push(Box::new(Linear::new(gpu, st, &layer.attn_out, attn, &s.x, &out)?));
            ops.extend(layer.ffn.ops(gpu, s, (&layer.post_attn_norm, eps), None)?);
        }
        ops.push(self.ends.logits(gpu, c, s)?);
        Ok(ops)
    }
}
