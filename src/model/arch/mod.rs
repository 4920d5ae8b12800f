//! Forward graphs, one file per model family. A family loads its weights and, for a session's
//! buffers, lists the ops of one forward step in order.

mod ffn;
mod gemma;
mod gpt_oss;
mod llama;
mod moe;
mod qwen35;

use super::config::ModelConfig;
use super::memory::LayerMemory;
use super::state::State;
use super::weights::WeightLoader;
use crate::gpu::Gpu;
use crate::ops::Op;
use crate::ops::attention::{self, Attention, AttentionOptions};
use crate::ops::embed::Embed;
use crate::ops::kv_write::{KvWrite, QkNorm};
use crate::ops::linear::{CacheWrite, Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::ops::route::Routing;
use crate::quant::RowOrder;
use crate::{Error, Result};

pub trait Architecture: wgpu::WasmNotSendSync {
    /// The ops of one forward step over `state`: embedding to logits.
    fn graph(&self, gpu: &Gpu, config: &ModelConfig, state: &State) -> Result<Vec<Box<dyn Op>>>;
}

/// What hearth knows about one architecture (a GGUF `general.architecture`), declared once in
/// its family's file: the conventions the hyperparameters leave unsaid, and how to load its
/// weights into a forward graph.
pub struct Family {
    /// The GGUF architecture name.
    pub arch: &'static str,
    /// Whether RoPE rotates (i, i + d/2) pairs (GPT-NeoX style) rather than neighbours.
    pub rope_neox: bool,
    /// The RoPE base of sliding-window layers where the file does not say it.
    pub rope_base_swa: Option<f32>,
    /// Whether sliding-window layers share the file's RoPE scaling (else they are unscaled).
    pub swa_rope_scaled: bool,
    /// With a sliding window, every n-th layer is global where the file does not say (0: the
    /// family has no sliding-window layers).
    pub swa_pattern: usize,
    /// The gated activation of its experts, for a mixture-of-experts family.
    pub expert_glu: Epilogue,
    /// Whether its chat format is OpenAI's harmony (reasoning on an analysis channel); other
    /// families' reasoning is found from their vocabulary (`<think>` tokens).
    pub harmony: bool,
    /// How a mixture-of-experts family routes tokens (None: a dense feed-forward); the file
    /// gives the expert counts and any weight scale.
    pub routing: Option<Routing>,
    /// Whether some layers are gated delta-net layers (the file's `ssm.*` keys give their
    /// shape, and `full_attention_interval` or `attention.recurrent_layers` which they are).
    pub delta_net: bool,
    /// Whether each query head has an output gate (stored after it in `attn_q`).
    pub gated_attention: bool,
    /// The factor of attention scores (None: 1/sqrt(head size); Gemma 4's normalised queries
    /// and keys take 1).
    pub attention_scale: Option<f32>,
    pub load: fn(&WeightLoader, &ModelConfig) -> Result<Box<dyn Architecture>>,
}

/// Every architecture hearth runs.
pub static FAMILIES: &[&Family] = &[
    &llama::LLAMA,
    &llama::QWEN2,
    &llama::QWEN3,
    &llama::PHI3,
    &llama::QWEN3MOE,
    &gemma::GEMMA3,
    &gemma::GEMMA4,
    &gpt_oss::GPT_OSS,
    &qwen35::QWEN35,
    &qwen35::QWEN35MOE,
];

/// The family of a GGUF architecture name, or a clear refusal naming the ones hearth has.
pub fn family(arch: &str) -> Result<&'static Family> {
    FAMILIES.iter().copied().find(|f| f.arch == arch).ok_or_else(|| {
        let known: Vec<&str> = FAMILIES.iter().map(|f| f.arch).collect();
        Error::Unsupported(format!("architecture {arch:?} is not supported yet (supported: {})", known.join(", ")))
    })
}

pub fn load(loader: &WeightLoader, config: &ModelConfig) -> Result<Box<dyn Architecture>> {
    (family(&config.arch)?.load)(loader, config)
}

/// Layer `l`'s Q|K|V as one matrix (from separate tensors, or Phi 3's fused `attn_qkv`) and
/// their biases where the file has them (Qwen 2, gpt-oss).
pub(crate) fn load_qkv(w: &WeightLoader, c: &ModelConfig, l: usize) -> Result<(GpuMatrix, Option<wgpu::Buffer>)> {
    let h = c.heads(l);
    let (q, kv) = (h.q_dim(), h.kv_dim());
    let n = |s: &str| format!("blk.{l}.{s}.weight");
    let b = |s: &str| format!("blk.{l}.{s}.bias");
    let qkv = if w.has(&n("attn_qkv")) {
        w.matrix(&[(&n("attn_qkv"), q + 2 * kv)], c.n_embd, RowOrder::Concat)?
    } else {
        w.matrix(&[(&n("attn_q"), q), (&n("attn_k"), kv), (&n("attn_v"), kv)], c.n_embd, RowOrder::Concat)?
    };
    let bias = if w.has(&b("attn_q")) {
        Some(w.vectors(&[(&b("attn_q"), q), (&b("attn_k"), kv), (&b("attn_v"), kv)])?)
    } else {
        None
    };
    Ok((qkv, bias))
}

/// The ends of the graph every family shares: the token embedding, and the final norm and LM
/// head (the embedding itself when the file has no `output.weight`).
pub(crate) struct Ends {
    token_embd: GpuMatrix,
    output: Option<GpuMatrix>,
    output_norm: wgpu::Buffer,
}

impl Ends {
    pub fn load(w: &WeightLoader, c: &ModelConfig) -> Result<Ends> {
        let e = c.n_embd;
        let output = if c.tied_embeddings {
            None
        } else {
            Some(w.matrix(&[("output.weight", c.n_vocab)], e, RowOrder::Concat)?)
        };
        Ok(Ends {
            token_embd: w.matrix(&[("token_embd.weight", c.n_vocab)], e, RowOrder::Concat)?,
            output,
            output_norm: w.vector("output_norm.weight", e)?,
        })
    }

    /// Token ids → rows of the residual stream, times `scale`.
    pub fn embed(&self, gpu: &Gpu, s: &State, scale: f32) -> Result<Box<dyn Op>> {
        Ok(Box::new(Embed::new(gpu, &s.steps, &self.token_embd, &s.ids, &s.x, scale)?))
    }

    /// The residual stream → logits, through the final norm.
    pub fn logits(&self, gpu: &Gpu, c: &ModelConfig, s: &State) -> Result<Box<dyn Op>> {
        let head = self.output.as_ref().unwrap_or(&self.token_embd);
        let spec = LinearSpec {
            logits: true,
            softcap: c.logit_softcap,
            ..LinearSpec::new(Some((&self.output_norm, c.rms_eps)), Epilogue::Store)
        };
        Ok(Box::new(Linear::new(gpu, &s.steps, head, &s.x, &s.logits, &spec)?))
    }
}

/// Layer `l`'s write of K (rotated with the `rope` table) and V from `State::qkv` into its
/// cache, after the QK-norm if the family has one, where the Q|K|V kernel does not do it
/// itself (`cache_write`).
pub(crate) fn kv_write(
    gpu: &Gpu,
    c: &ModelConfig,
    s: &State,
    l: usize,
    rope: &wgpu::Buffer,
    qk_norm: Option<QkNorm>,
) -> Result<Box<dyn Op>> {
    let (k, v) = s.memory.kv(l)?;
    let heads = c.heads(l);
    Ok(Box::new(KvWrite::new(gpu, &s.steps, heads, s.attention_rows(&heads)?.0, rope, k, v, qk_norm)?))
}

/// Layer `l`'s cache, for its Q|K|V kernel to fill as it computes K and V, where the family's
/// RoPE pairs allow it (then no `kv_write` is needed).
pub(crate) fn cache_write<'a>(
    c: &ModelConfig,
    s: &'a State,
    l: usize,
    rope: &'a wgpu::Buffer,
) -> Option<CacheWrite<'a>> {
    let heads = c.heads(l);
    let (k, v) = s.memory.kv(l).ok()?;
    CacheWrite::fits(&heads, k.kind).then_some(CacheWrite { heads, rope, k, v })
}

/// Layer `l`'s RoPE table and, for a sliding-window layer, its window.
pub(crate) fn sliding<'a>(c: &ModelConfig, s: &'a State, l: usize) -> (&'a wgpu::Buffer, Option<u32>) {
    match c.layer_memory(l) {
        LayerMemory::Window(w) => (s.rope_swa.as_ref().unwrap_or(&s.rope), Some(w as u32)),
        LayerMemory::Keys | LayerMemory::Recurrent(_) => (&s.rope, None),
    }
}

/// Layer `l`'s attention: each query of `State::qkv` (rotated with `rope` as it is read) over
/// the layer's cache into `State::attn`, within `window` positions for a sliding-window layer,
/// with the layer's attention `sinks` where the family has them.
pub(crate) fn attention(
    gpu: &Gpu,
    c: &ModelConfig,
    s: &State,
    l: usize,
    rope: &wgpu::Buffer,
    window: Option<u32>,
    sinks: Option<&wgpu::Buffer>,
) -> Result<Box<dyn Op>> {
    let heads = c.heads(l);
    let scale = c.attention_scale.unwrap_or(1.0 / (heads.head_dim as f32).sqrt());
    let (k, v) = s.memory.kv(l)?;
    let options = AttentionOptions { window, keys_per_split: attention::keys_per_split(gpu), sinks, flash: true };
    let (qkv, out) = s.attention_rows(&heads)?;
    Ok(Box::new(Attention::new(gpu, &s.steps, heads, scale, qkv, rope, k, v, out, options)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_architecture_has_one_family_and_unknown_ones_are_named_in_the_refusal() {
        for f in FAMILIES {
            assert_eq!(FAMILIES.iter().filter(|g| g.arch == f.arch).count(), 1, "{}", f.arch);
            assert!(std::ptr::eq(family(f.arch).unwrap(), *f));
        }
        let err = family("mamba").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("\"mamba\"") && err.contains("llama") && err.contains("gemma3"), "{err}");
    }
}
