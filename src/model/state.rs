//! The buffers one generation session owns: activations for a batch, the sequence's memory
//! (model/memory.rs), the RoPE tables and the per-step uniform. Allocated and counted here,
//! once; nothing is allocated per token.

use super::config::ModelConfig;
use super::memory::{Memory, cache_bytes};
use crate::gpu::{Activations, Gpu, KvType, row_stride, window_bytes};
use crate::ops::delta_net::DeltaBuffers;
use crate::ops::experts::RouteBuffers;
use crate::ops::kv_write::rope_table;
use crate::ops::per_layer::PerLayerBuffers;
use crate::ops::{Heads, StepBuffers};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug)]
pub struct SessionOptions {
    /// Context length: positions the KV cache holds.
    pub ctx: usize,
    /// Tokens processed in one forward step (prompt chunks).
    pub batch: usize,
    /// Tokens of a step whose logits are kept (1 for generation; the batch for perplexity).
    pub logit_rows: usize,
    /// How the KV cache stores keys and values (`--kv-type`).
    pub kv: KvType,
}

pub struct State {
    pub options: SessionOptions,
    pub steps: StepBuffers,
    pub ids: wgpu::Buffer,
    /// The residual stream, `[batch][n_embd]`.
    pub x: Activations,
    /// Per kind of attention heads (`ModelConfig::head_kinds`): Q|K|V rows and attention's
    /// output rows (`attention_rows`).
    attention: Vec<(Heads, Activations, Activations)>,
    pub ffn: Activations,
    /// A block's output before it joins the residual stream, for families that normalise it
    /// first (Gemma's post-norms).
    pub branch: Activations,
    pub logits: Activations,
    /// The tokens greedy sampling picked, one per logits row.
    pub token: wgpu::Buffer,
    /// Where `token` is copied for the host to read, in the same submit as the step.
    pub token_staging: wgpu::Buffer,
    /// The tokens structured output allows next, a bit each (`grammar::Constraint::allowed`),
    /// a mask per logits row.
    pub allowed: wgpu::Buffer,
    /// Where one row of `logits` is copied for sampling, likewise.
    pub logits_staging: wgpu::Buffer,
    pub rope: wgpu::Buffer,
    /// The RoPE table of sliding-window layers, when their base differs.
    pub rope_swa: Option<wgpu::Buffer>,
    /// What the sequences remember of their earlier positions.
    pub memory: Memory,
    /// The mixture-of-experts buffers, for families that have one.
    pub experts: Option<ExpertState>,
    /// The gated delta-net layers' buffers, for families that have them.
    pub delta: Option<DeltaBuffers>,
    /// Each token's per-layer inputs, for models that have them (Gemma 4 E2B/E4B).
    pub per_layer: Option<PerLayerBuffers>,
}

/// What a mixture-of-experts feed-forward keeps per step: each token's router logits and route,
/// and one row per (token, slot) pair for the expert's activations and output.
pub struct ExpertState {
    pub router: Activations,
    pub route: RouteBuffers,
    pub ffn: Activations,
    pub out: Activations,
    /// Where a dense feed-forward runs beside the experts (Gemma 4), the normalised sum of the
    /// two outputs, one row per token.
    pub beside_dense: Option<Activations>,
}

/// Width of the feed-forward activations: the dense feed-forward's, or a shared expert's.
fn ffn_width(c: &ModelConfig) -> usize {
    c.experts.and_then(|x| x.shared_n_ff).map_or(c.n_ff, |ff| ff.max(c.n_ff))
}

/// Rows of the widest activation and of the logits that one binding of the adapter holds
/// (each buffer keeps one window of slack: the uniform window, or a row; gpu/activations.rs),
/// refused when not even one row fits. The header check runs it before any weight is uploaded.
pub fn rows_per_binding(gpu: &Gpu, c: &ModelConfig) -> Result<(usize, usize)> {
    let binding = gpu.limits.max_storage_buffer_binding_size.min(gpu.limits.max_buffer_size);
    let rows_fitting = |width: usize| {
        let row = row_stride(width) as u64 * 4;
        (binding.saturating_sub(window_bytes(gpu, row)) / row) as usize
    };
    let delta_width = c.delta_net.as_ref().map_or(0, |d| d.shape.proj_width());
    let attention_width = c.head_kinds().iter().map(Heads::qkv_dim).max().unwrap_or(0);
    let per_layer_width = c.per_layer_width * c.n_layer;
    let widest = [c.n_embd, attention_width, ffn_width(c), delta_width, per_layer_width].into_iter().max().unwrap_or(1);
    let (mut max_batch, max_logit_rows) = (rows_fitting(widest), rows_fitting(c.n_vocab));
    if let Some(x) = &c.experts {
        // One row per (token, slot) pair, and a grid of pairs no taller than WebGPU allows.
        let pair_rows =
            rows_fitting(x.n_ff.max(c.n_embd)).min(gpu.limits.max_compute_workgroups_per_dimension as usize);
        max_batch = max_batch.min(pair_rows / x.used).min(rows_fitting(x.count));
    }
    if let Some(d) = &c.delta_net {
        max_batch = max_batch.min(DeltaBuffers::max_batch(&d.shape, binding));
    }
    if max_batch == 0 || max_logit_rows == 0 {
        return Err(Error::Unsupported(format!(
            "one row of activations ({widest} values) or logits ({} values), with a window of slack, exceeds {}'s largest binding of {binding} bytes",
            c.n_vocab, gpu.info.name
        )));
    }
    Ok((max_batch, max_logit_rows))
}

/// Shrinks the batch and the logits rows so every activation buffer fits one binding of the
/// adapter (a session then processes prompts and logits in more steps).
fn fit_to_bindings(gpu: &Gpu, c: &ModelConfig, options: SessionOptions) -> Result<SessionOptions> {
    let (max_batch, max_logit_rows) = rows_per_binding(gpu, c)?;
    let batch = options.batch.min(max_batch);
    let logit_rows = options.logit_rows.min(max_logit_rows).min(batch);
    if batch < options.batch || logit_rows < options.logit_rows {
        log::info!("batch {batch} and logits rows {logit_rows} fit {}'s bindings", gpu.info.name);
    }
    Ok(SessionOptions { batch, logit_rows, ..options })
}

impl State {
    /// The buffers of a session of `sequences` sequences.
    pub fn new(gpu: &Gpu, c: &ModelConfig, options: SessionOptions, sequences: usize) -> Result<State> {
        if options.ctx == 0 || options.batch == 0 || options.logit_rows == 0 || options.logit_rows > options.batch {
            return Err(Error::Input(format!("invalid session sizes {options:?}")));
        }
        let options = fit_to_bindings(gpu, c, options)?;
        let SessionOptions { ctx, batch, logit_rows, kv } = options;
        let kv_bytes = cache_bytes(c, kv, ctx, batch) * sequences as u64;
        let head_kinds = c.head_kinds();
        let attention_widths: usize = head_kinds.iter().map(|h| h.qkv_dim() + h.q_dim()).sum();
        let widths = 2 * c.n_embd + attention_widths + ffn_width(c);
        // Per token, the router's logits and a row of the expert ffn and output per slot.
        // (The shared expert's gate logit and weight: one more of each per token.)
        let expert_widths = c
            .experts
            .map_or(0, |x| x.count + 2 + x.used * (x.n_ff + c.n_embd) + if x.beside_dense { c.n_embd } else { 0 });
        let route_bytes = c.experts.map_or(0, |x| RouteBuffers::bytes_for(batch, x.used, x.count));
        let delta_bytes = c.delta_net.as_ref().map_or(0, |d| DeltaBuffers::bytes_for(&d.shape, batch));
        let per_layer_widths = match c.per_layer_width {
            0 => 0,
            w => PerLayerBuffers::floats_per_token(w, c.n_layer),
        };
        let activation_bytes = ((batch * (widths + expert_widths + per_layer_widths) + logit_rows * c.n_vocab) * 4)
            as u64
            + route_bytes
            + delta_bytes;
        gpu.check_room_for(
            &format!("a session of {ctx} tokens (KV cache and activations)"),
            kv_bytes + activation_bytes,
        )?;
        Ok(State {
            options,
            // Each distinct linear input width splits a batch into its own windows.
            steps: StepBuffers::new(gpu, batch, 4 * (batch + 1))?,
            ids: gpu.buffer("token ids", (batch * 4) as u64)?,
            x: gpu.activations("hidden", batch, c.n_embd)?,
            attention: head_kinds
                .into_iter()
                .map(|h| {
                    Ok((
                        h,
                        gpu.activations("qkv", batch, h.qkv_dim())?,
                        gpu.activations("attention out", batch, h.q_dim())?,
                    ))
                })
                .collect::<Result<_>>()?,
            ffn: gpu.activations("ffn", batch, ffn_width(c))?,
            branch: gpu.activations("branch", batch, c.n_embd)?,
            logits: gpu.activations("logits", logit_rows, c.n_vocab)?,
            token: gpu.buffer("tokens", (logit_rows.max(4) * 4) as u64)?,
            token_staging: gpu.staging("tokens read-back", (logit_rows * 4) as u64),
            allowed: gpu.buffer("allowed tokens", (logit_rows * c.n_vocab.div_ceil(32) * 4) as u64)?,
            logits_staging: gpu.staging("logits read-back", (c.n_vocab * 4) as u64),
            rope: gpu
                .buffer_with("rope", &rope_table(ctx, c.rope_dims, c.rope_base, c.rope_scaling, &c.rope_factors))?,
            rope_swa: match (c.rope_base_swa, c.rope_scaling_swa == c.rope_scaling, c.swa_geometry.rope_dims) {
                (None, true, dims) if dims == c.rope_dims && c.rope_factors.is_empty() => None,
                (base, _, dims) => {
                    let table = rope_table(ctx, dims, base.unwrap_or(c.rope_base), c.rope_scaling_swa, &[]);
                    Some(gpu.buffer_with("rope (sliding window)", &table)?)
                }
            },
            memory: Memory::new(gpu, c, kv, ctx, batch, sequences)?,
            experts: match &c.experts {
                None => None,
                Some(x) => Some(ExpertState {
                    router: gpu.activations("router logits", batch, x.count + usize::from(x.shared_n_ff.is_some()))?,
                    route: match x.shared_n_ff {
                        None => RouteBuffers::new(gpu, batch, x.used, x.count)?,
                        Some(_) => RouteBuffers::new(gpu, batch, x.used, x.count)?.with_shared_gate(gpu, batch)?,
                    },
                    ffn: gpu.activations("expert ffn", batch * x.used, x.n_ff)?,
                    out: gpu.activations("expert out", batch * x.used, c.n_embd)?,
                    beside_dense: match x.beside_dense {
                        true => Some(gpu.activations("dense and experts", batch, c.n_embd)?),
                        false => None,
                    },
                }),
            },
            delta: match &c.delta_net {
                None => None,
                Some(d) => Some(DeltaBuffers::new(gpu, &d.shape, batch)?),
            },
            per_layer: match c.per_layer_width {
                0 => None,
                w => Some(PerLayerBuffers::new(gpu, batch, w, c.n_layer)?),
            },
        })
    }

    /// The feed-forward activations of a layer `width` wide (the buffer holds the widest).
    pub fn ffn_rows(&self, width: usize) -> Result<Activations> {
        if width > self.ffn.width {
            return Err(Error::Gpu(format!("a feed-forward of {width} in rows of {}", self.ffn.width)));
        }
        Ok(Activations { width, buffer: self.ffn.buffer.clone(), ..self.ffn })
    }

    /// The Q|K|V rows and attention output rows of layers with `heads`.
    pub fn attention_rows(&self, heads: &Heads) -> Result<(&Activations, &Activations)> {
        self.attention
            .iter()
            .find(|(h, _, _)| h == heads)
            .map(|(_, qkv, out)| (qkv, out))
            .ok_or_else(|| Error::Gpu(format!("no attention rows for {heads:?}")))
    }

    /// Bytes of GPU memory the session uses.
    pub fn gpu_bytes(&self) -> u64 {
        let activations = [&self.x, &self.ffn, &self.branch, &self.logits];
        let attention: u64 = self.attention.iter().map(|(_, qkv, out)| qkv.buffer.size() + out.buffer.size()).sum();
        let experts = self.experts.as_ref().map_or(0, |x| {
            let beside = x.beside_dense.as_ref().map_or(0, |b| b.buffer.size());
            x.router.buffer.size() + x.route.bytes() + x.ffn.buffer.size() + x.out.buffer.size() + beside
        });
        let delta = self.delta.as_ref().map_or(0, DeltaBuffers::bytes);
        let per_layer = self.per_layer.as_ref().map_or(0, PerLayerBuffers::bytes);
        experts
            + delta
            + per_layer
            + attention
            + activations.iter().map(|a| a.buffer.size()).sum::<u64>()
            + self.ids.size()
            + self.allowed.size()
            + self.rope.size()
            + self.rope_swa.as_ref().map_or(0, |r| r.size())
            + self.memory.gpu_bytes()
    }
}
