//! The buffers one generation session owns: activations for a batch, the KV cache, the RoPE
//! table and the per-step uniform. Allocated once; nothing is allocated per token.

use super::config::ModelConfig;
use crate::gpu::{Activations, Gpu, KvTexture};
use crate::ops::StepBuffers;
use crate::ops::kv_write::rope_table;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug)]
pub struct SessionOptions {
    /// Context length: positions the KV cache holds.
    pub ctx: usize,
    /// Tokens processed in one forward step (prompt chunks).
    pub batch: usize,
    /// Tokens of a step whose logits are kept (1 for generation; the batch for perplexity).
    pub logit_rows: usize,
}

pub struct State {
    pub options: SessionOptions,
    pub steps: StepBuffers,
    pub ids: wgpu::Buffer,
    /// The residual stream, `[batch][n_embd]`.
    pub x: Activations,
    pub qkv: Activations,
    pub attn: Activations,
    pub ffn: Activations,
    pub logits: Activations,
    /// The token greedy sampling picked.
    pub token: wgpu::Buffer,
    pub rope: wgpu::Buffer,
    pub k_cache: Vec<KvTexture>,
    pub v_cache: Vec<KvTexture>,
}

impl State {
    pub fn new(gpu: &Gpu, c: &ModelConfig, options: SessionOptions) -> Result<State> {
        let SessionOptions { ctx, batch, logit_rows } = options;
        if ctx == 0 || batch == 0 || logit_rows == 0 || logit_rows > batch {
            return Err(Error::Input(format!("invalid session sizes {options:?}")));
        }
        let h = c.heads();
        let kv_texels = (h.kv_dim() / 4) as u32;
        let mut k_cache = Vec::with_capacity(c.n_layer);
        let mut v_cache = Vec::with_capacity(c.n_layer);
        for _ in 0..c.n_layer {
            k_cache.push(gpu.kv_texture("k cache", kv_texels, ctx as u32)?);
            v_cache.push(gpu.kv_texture("v cache", kv_texels, ctx as u32)?);
        }
        Ok(State {
            options,
            // Each distinct linear input width splits a batch into its own windows.
            steps: StepBuffers::new(gpu, 4 * (batch + 1)),
            ids: gpu.buffer("token ids", (batch * 4) as u64)?,
            x: gpu.activations("hidden", batch, c.n_embd)?,
            qkv: gpu.activations("qkv", batch, h.qkv_dim())?,
            attn: gpu.activations("attention out", batch, h.q_dim())?,
            ffn: gpu.activations("ffn", batch, c.n_ff)?,
            logits: gpu.activations("logits", logit_rows, c.n_vocab)?,
            token: gpu.buffer("token", 16)?,
            rope: gpu.buffer_with("rope", &rope_table(ctx, c.rope_dims, c.rope_base, None))?,
            k_cache,
            v_cache,
        })
    }

    /// Bytes of GPU memory the session uses.
    pub fn gpu_bytes(&self) -> u64 {
        let activations = [&self.x, &self.qkv, &self.attn, &self.ffn, &self.logits];
        activations.iter().map(|a| a.buffer.size()).sum::<u64>()
            + self.ids.size()
            + self.rope.size()
            + self
                .k_cache
                .iter()
                .chain(&self.v_cache)
                .map(|t| t.texture.width() as u64 * t.texture.height() as u64 * 16)
                .sum::<u64>()
    }
}
