//! One normalized set of hyperparameters, read from GGUF metadata and checked before anything
//! is allocated from it.

use super::file::ModelFile;
use super::gguf::{GgufHeader, Value};
use super::memory::LayerMemory;
use crate::ops::Heads;
use crate::ops::delta_net::DeltaShape;
use crate::ops::kv_write::RopeScaling;
use crate::ops::linear::Epilogue;
use crate::ops::route::{MAX_USED, Routing};
use crate::quant::dequantize;
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub arch: String,
    pub name: Option<String>,
    pub n_layer: usize,
    pub n_embd: usize,
    /// The widest layer's feed-forward width (`ffn_width(l)` gives each layer's).
    pub n_ff: usize,
    /// Each layer's feed-forward width, where the file gives one per layer (Gemma 4 E2B/E4B's
    /// shared-KV layers are twice as wide); empty when every layer's is `n_ff`.
    pub ffn_widths: Vec<usize>,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub rope_dims: usize,
    pub rope_base: f32,
    /// GPT-NeoX rotation pairs (i, i + d/2) rather than (2i, 2i + 1).
    pub rope_neox: bool,
    /// Keys a sliding-window attention layer sees (None: every layer attends to the whole context).
    pub sliding_window: Option<usize>,
    /// With a sliding window, which layers attend to it (the others to the whole context): the
    /// file's per-layer pattern, or every layer but each `swa_pattern`-th of the family's or
    /// the file's number.
    pub sliding_layers: Vec<bool>,
    /// The sliding-window layers' heads where they differ from the others' (Gemma 4).
    pub swa_geometry: SwaGeometry,
    /// RoPE base of the sliding-window layers, when it differs from `rope_base`.
    pub rope_base_swa: Option<f32>,
    /// How RoPE is stretched beyond the trained context (the sliding-window layers too where
    /// the family says so: `rope_scaling_swa`).
    pub rope_scaling: RopeScaling,
    pub rope_scaling_swa: RopeScaling,
    /// The file's RoPE frequency factors for the layers that attend to the whole context (one
    /// per rotated pair; empty where it has none), from `with_rope_factors`.
    pub rope_factors: Vec<f32>,
    pub rms_eps: f32,
    /// The context length the model was trained for.
    pub n_ctx_train: usize,
    pub n_vocab: usize,
    /// The LM head reuses the token embedding (no `output.weight`).
    pub tied_embeddings: bool,
    /// A mixture-of-experts feed-forward in every layer, for families that have one.
    pub experts: Option<Experts>,
    /// Gated delta-net layers among the attention ones, for families that have them.
    pub delta_net: Option<DeltaNetLayers>,
    /// Each query head comes with an output gate: attention's output is multiplied by its
    /// sigmoid (Qwen 3.5's gated attention).
    pub gated_attention: bool,
    /// The factor of attention scores where the family fixes it (else 1/sqrt(head size)).
    pub attention_scale: Option<f32>,
    /// Logits become `cap * tanh(logits / cap)` (`final_logit_softcapping`: Gemma 2 and 4).
    pub logit_softcap: Option<f32>,
    /// Final layers that reuse an earlier layer's cache (`attention.shared_kv_layers`, Gemma 4
    /// E2B/E4B).
    pub shared_kv_layers: usize,
    /// Values per layer of each token's per-layer input (`embedding_length_per_layer_input`,
    /// Gemma 4 E2B/E4B; 0: none).
    pub per_layer_width: usize,
}

/// The attention geometry of sliding-window layers: `attention.key_length_swa`,
/// `rope.dimension_count_swa` and their entries of a per-layer `attention.head_count_kv`,
/// equal to the other layers' where the file does not say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwaGeometry {
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub rope_dims: usize,
}

/// Gated delta-net (linear attention) layers interleaved with attention layers (Qwen 3.5).
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaNetLayers {
    pub shape: DeltaShape,
    /// Whether each layer is a delta-net layer (the others attend).
    pub recurrent: Vec<bool>,
}

/// A mixture-of-experts feed-forward: `used` of `count` experts per token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Experts {
    pub count: usize,
    pub used: usize,
    /// Rows of one expert's gate (and up) projection.
    pub n_ff: usize,
    pub routing: Routing,
    /// The experts' gated activation (a gated epilogue).
    pub gated: Epilogue,
    /// Rows of the gate (and up) projection of a shared expert every token also uses,
    /// weighted by the sigmoid of its own gate (Qwen 3.5 MoE), where the file has one.
    pub shared_n_ff: Option<usize>,
    /// A dense feed-forward (`n_ff` wide) beside the experts, each output normalised before
    /// the two are summed (Gemma 4 26B-A4B), where the file has one.
    pub beside_dense: bool,
}

impl ModelConfig {
    pub fn from_gguf(h: &GgufHeader) -> Result<ModelConfig> {
        let arch = h
            .get("general.architecture")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Gguf("general.architecture is missing".into()))?
            .to_string();
        let family = super::arch::family(&arch)?;
        let key = |k: &str| format!("{arch}.{k}");
        let int =
            |k: &str| -> Result<Option<usize>> {
                match h.get(&key(k)) {
                    None => Ok(None),
                    Some(v) => v.as_u64().and_then(|v| usize::try_from(v).ok()).map(Some).ok_or_else(|| {
                        Error::Gguf(format!("{} is not a non-negative integer: {}", key(k), v.summary()))
                    }),
                }
            };
        let required = |k: &str| int(k)?.ok_or_else(|| Error::Gguf(format!("{} is missing", key(k))));
        let float = |k: &str| h.get(&key(k)).and_then(Value::as_f64).map(|v| v as f32);

        let n_embd = required("embedding_length")?;
        let n_layer = required("block_count")?;
        let per_layer = |k: &str| -> Result<Option<Vec<u64>>> {
            match h.get(&key(k)) {
                Some(v) if v.as_array().is_some() => v
                    .as_array()
                    .and_then(|a| {
                        a.iter().map(|v| v.as_u64().or(v.as_bool().map(u64::from))).collect::<Option<Vec<_>>>()
                    })
                    .filter(|a| a.len() >= n_layer)
                    .map(|a| Some(a[..n_layer].to_vec()))
                    .ok_or_else(|| Error::Gguf(format!("{}: not one number per layer: {}", key(k), v.summary()))),
                _ => Ok(None),
            }
        };
        let (n_ff, ffn_widths) = match per_layer("feed_forward_length")? {
            None => (required("feed_forward_length")?, Vec::new()),
            Some(widths) => {
                let widths: Vec<usize> = widths.into_iter().map(|w| usize::try_from(w).unwrap_or(usize::MAX)).collect();
                (widths.iter().copied().max().unwrap_or(0), widths)
            }
        };
        let n_ctx_train = int("context_length")?.unwrap_or(2048);
        let factor = float("rope.scaling.factor").or(float("rope.scale_linear")).filter(|&f| f != 0.0 && f != 1.0);
        let rope_scaling = match h.get(&key("rope.scaling.type")).and_then(Value::as_str) {
            Some("none") => RopeScaling::None,
            None | Some("linear") => factor.map_or(RopeScaling::None, |factor| RopeScaling::Linear { factor }),
            Some("yarn") => RopeScaling::Yarn {
                factor: factor.unwrap_or(1.0),
                original_ctx: int("rope.scaling.original_context_length")?.unwrap_or(n_ctx_train),
                beta_fast: float("rope.scaling.yarn_beta_fast").unwrap_or(32.0),
                beta_slow: float("rope.scaling.yarn_beta_slow").unwrap_or(1.0),
                attn_factor: float("rope.scaling.attn_factor").unwrap_or(1.0),
            },
            Some(other) => return Err(Error::Unsupported(format!("RoPE scaling {other:?} is not supported yet"))),
        };
        if float("rope.scaling.yarn_log_multiplier").is_some_and(|m| m != 0.0) {
            return Err(Error::Unsupported("YaRN with a log multiplier (DeepSeek) is not supported yet".into()));
        }
        // A family that routes may have dense models too (Gemma 4): experts where the file has
        // their count or a router.
        let has_experts = h.get(&key("expert_count")).is_some() || h.tensor("blk.0.ffn_gate_inp.weight").is_some();
        let experts = match family.routing.filter(|_| has_experts) {
            None => None,
            Some(routing) => {
                let used = required("expert_used_count")?;
                Some(Experts {
                    count: required("expert_count")?,
                    used,
                    // llama.cpp's fallback for files without the key.
                    n_ff: int("expert_feed_forward_length")?.unwrap_or(n_ff / used.max(1)),
                    routing: Routing {
                        scale: float("expert_weights_scale").filter(|&s| s != 0.0).unwrap_or(1.0),
                        ..routing
                    },
                    gated: family.expert_glu,
                    shared_n_ff: match h.tensor("blk.0.ffn_up_shexp.weight") {
                        Some(_) => Some(int("expert_shared_feed_forward_length")?.unwrap_or(n_ff)),
                        None => None,
                    },
                    beside_dense: h.tensor("blk.0.ffn_up.weight").is_some(),
                })
            }
        };
        let n_head = required("attention.head_count")?;
        let head_dim = match int("attention.key_length")? {
            Some(d) => d,
            None if n_head > 0 => n_embd / n_head,
            None => 0,
        };
        let n_vocab = match int("vocab_size")? {
            Some(v) => v,
            None => h
                .get("tokenizer.ggml.tokens")
                .and_then(Value::as_array)
                .map(|a| a.len())
                .or_else(|| h.tensor("token_embd.weight").and_then(|t| t.dims.get(1)).map(|&d| d as usize))
                .unwrap_or(0),
        };
        let sliding_layers: Vec<bool> = match per_layer("attention.sliding_window_pattern")? {
            Some(layers) => layers.iter().map(|&s| s != 0).collect(),
            None => {
                let n = int("attention.sliding_window_pattern")?.unwrap_or(family.swa_pattern);
                (0..n_layer).map(|l| n > 0 && l % n < n - 1).collect()
            }
        };
        // head_count_kv: one number, or one per layer taking one value on the sliding-window
        // layers and one on the others.
        let (n_head_kv, n_head_kv_swa) = match per_layer("attention.head_count_kv")? {
            None => {
                let n = int("attention.head_count_kv")?.unwrap_or(n_head);
                (n, n)
            }
            Some(counts) => {
                let of = |sliding: bool| {
                    let mut kinds = (0..n_layer).filter(|&l| sliding_layers[l] == sliding).map(|l| counts[l] as usize);
                    let first = kinds.next();
                    match first {
                        Some(n) if kinds.all(|m| m == n) => Ok(Some(n)),
                        None => Ok(None),
                        Some(_) => Err(Error::Unsupported(format!("key/value heads per layer {counts:?}"))),
                    }
                };
                let (full, swa) = (of(false)?, of(true)?);
                (full.or(swa).unwrap_or(n_head), swa.or(full).unwrap_or(n_head))
            }
        };
        let rope_dims = int("rope.dimension_count")?.unwrap_or(head_dim);
        let head_dim_swa = int("attention.key_length_swa")?;
        let swa_geometry = SwaGeometry {
            n_head_kv: n_head_kv_swa,
            head_dim: head_dim_swa.unwrap_or(head_dim),
            rope_dims: int("rope.dimension_count_swa")?.or(head_dim_swa).unwrap_or(rope_dims),
        };
        let delta_net = if family.delta_net {
            let (value_heads, head) = (required("ssm.time_step_rank")?, required("ssm.state_size")?);
            let inner = required("ssm.inner_size")?;
            if inner != value_heads * head {
                return Err(Error::Unsupported(format!(
                    "delta-net values of {inner} in {value_heads} heads of {head} (the state is square)"
                )));
            }
            let shape = DeltaShape {
                key_heads: required("ssm.group_count")?,
                value_heads,
                head,
                conv: required("ssm.conv_kernel")?,
            };
            let recurrent = match h.get(&key("attention.recurrent_layers")) {
                Some(v) => v
                    .as_array()
                    .map(|a| a.iter().map(|v| v.as_bool().or(v.as_u64().map(|n| n != 0))).collect::<Option<Vec<_>>>())
                    .and_then(|layers| layers.filter(|l| l.len() >= n_layer))
                    .ok_or_else(|| Error::Gguf(format!("attention.recurrent_layers: {}", v.summary())))?,
                None => {
                    let interval = int("full_attention_interval")?.unwrap_or(4).max(1);
                    (0..n_layer).map(|l| !(l + 1).is_multiple_of(interval)).collect()
                }
            };
            Some(DeltaNetLayers { shape, recurrent: recurrent[..n_layer].to_vec() })
        } else {
            None
        };
        let config = ModelConfig {
            name: h.get("general.name").and_then(Value::as_str).map(str::to_string),
            n_layer,
            n_embd,
            n_ff,
            ffn_widths,
            n_head,
            n_head_kv,
            head_dim,
            rope_dims,
            rope_base: float("rope.freq_base").unwrap_or(10000.0),
            rope_neox: family.rope_neox,
            // 0 means no window, as llama.cpp reads it (its model saver writes 0 for families
            // without one).
            sliding_window: int("attention.sliding_window")?.filter(|&w| w > 0),
            sliding_layers,
            swa_geometry,
            rope_base_swa: float("rope.freq_base_swa").or(family.rope_base_swa),
            rope_scaling,
            rope_scaling_swa: if family.swa_rope_scaled { rope_scaling } else { RopeScaling::None },
            rope_factors: Vec::new(),
            rms_eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            n_ctx_train,
            n_vocab,
            tied_embeddings: h.tensor("output.weight").is_none(),
            experts,
            delta_net,
            gated_attention: family.gated_attention,
            attention_scale: family.attention_scale,
            logit_softcap: float("final_logit_softcapping").filter(|&c| c != 0.0),
            shared_kv_layers: int("attention.shared_kv_layers")?.unwrap_or(0),
            per_layer_width: int("embedding_length_per_layer_input")?.unwrap_or(0),
            arch,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Unsupported(m));
        let c = self;
        if c.n_layer == 0 || c.n_layer > 1024 {
            return bad(format!("{} layers", c.n_layer));
        }
        if c.n_embd == 0 || !c.n_embd.is_multiple_of(32) || c.n_embd > 65536 {
            return bad(format!("embedding width {} (must be a positive multiple of 32)", c.n_embd));
        }
        for ff in std::iter::once(c.n_ff).chain(c.ffn_widths.iter().copied()) {
            if ff == 0 || !ff.is_multiple_of(32) || ff > 1 << 20 {
                return bad(format!("feed-forward width {ff} (must be a positive multiple of 32)"));
            }
        }
        for h in [c.heads_of(false), c.heads_of(true)] {
            if h.n_head == 0 || h.n_head_kv == 0 || !h.n_head.is_multiple_of(h.n_head_kv) {
                return bad(format!("{} query heads over {} key/value heads", h.n_head, h.n_head_kv));
            }
            if h.head_dim == 0 || !h.head_dim.is_multiple_of(4) || h.head_dim > 1024 {
                return bad(format!("head size {} (must be a multiple of 4)", h.head_dim));
            }
            if !h.q_dim().is_multiple_of(32) {
                return bad(format!("attention width {} is not a multiple of 32", h.q_dim()));
            }
            if !h.rope_dims.is_multiple_of(2) || h.rope_dims > h.head_dim {
                return bad(format!("{} rotary dimensions for head size {}", h.rope_dims, h.head_dim));
            }
        }
        if c.n_vocab == 0 || c.n_vocab > 1 << 24 {
            return bad(format!("vocabulary of {} tokens", c.n_vocab));
        }
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if c.shared_kv_layers > 0 {
            let first_shared = c.n_layer.saturating_sub(c.shared_kv_layers);
            let paired = (first_shared..c.n_layer).all(|l| {
                c.kv_source(l).is_some_and(|s| c.is_sliding(s) == c.is_sliding(l) && c.heads(s) == c.heads(l))
            });
            if c.shared_kv_layers >= c.n_layer || !paired {
                return bad(format!(
                    "{} of {} layers sharing earlier layers' caches (the two layers before them must be a sliding-window and a global one)",
                    c.shared_kv_layers, c.n_layer
                ));
            }
        }
        if !c.per_layer_width.is_multiple_of(32) || c.per_layer_width * c.n_layer > 1 << 20 {
            return bad(format!("per-layer inputs of {} values (must be a multiple of 32)", c.per_layer_width));
        }
        if !c.logit_softcap.is_none_or(positive) {
            return bad(format!("logit softcapping {:?}", c.logit_softcap));
        }
        if !positive(c.rms_eps) || !positive(c.rope_base) || !c.rope_base_swa.is_none_or(positive) {
            return bad(format!("rms epsilon {} / rope base {}", c.rms_eps, c.rope_base));
        }
        if let Some(d) = &c.delta_net {
            let s = d.shape;
            if s.key_heads == 0
                || !s.value_heads.is_multiple_of(s.key_heads)
                || s.head == 0
                || !s.head.is_multiple_of(4)
                || s.head > 1024
                || !(2..=16).contains(&s.conv)
            {
                return bad(format!("a delta-net layer of {s:?}"));
            }
        }
        if let Some(x) = &c.experts {
            if x.count == 0 || x.count > 1024 || x.used == 0 || x.used > x.count.min(MAX_USED) {
                return bad(format!("{} experts used of {} (at most {MAX_USED} of 1024)", x.used, x.count));
            }
            for ff in [Some(x.n_ff), x.shared_n_ff].into_iter().flatten() {
                if ff == 0 || !ff.is_multiple_of(32) || ff > 1 << 20 {
                    return bad(format!("expert feed-forward width {ff} (must be a positive multiple of 32)"));
                }
            }
            if !x.routing.scale.is_finite() {
                return bad(format!("expert weights scale {}", x.routing.scale));
            }
        }
        let scale_ok = match c.rope_scaling {
            RopeScaling::None => true,
            RopeScaling::Linear { factor } => factor.is_finite() && factor > 0.0,
            RopeScaling::Yarn { factor, original_ctx, beta_fast, beta_slow, attn_factor } => {
                [factor, beta_fast, beta_slow, attn_factor].iter().all(|v| v.is_finite() && *v > 0.0)
                    && original_ctx > 0
            }
        };
        if !scale_ok {
            return bad(format!("RoPE scaling {:?}", c.rope_scaling));
        }
        Ok(())
    }

    /// The same with the file's RoPE frequency factors (`rope_freqs.weight`: tensor data, which
    /// the header alone does not hold), checked.
    pub fn with_rope_factors(mut self, file: &ModelFile) -> Result<ModelConfig> {
        if let Ok(info) = file.tensor("rope_freqs.weight") {
            let factors = dequantize(info.ty, &file.data(info)?)?;
            if factors.len() != self.rope_dims / 2 || factors.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
                return Err(Error::Unsupported(format!(
                    "rope_freqs.weight: {} factors for {} rotated pairs, each positive",
                    factors.len(),
                    self.rope_dims / 2
                )));
            }
            self.rope_factors = factors;
        }
        Ok(self)
    }

    /// Whether layer `l` attends to the sliding window rather than the whole context.
    pub fn is_sliding(&self, l: usize) -> bool {
        self.sliding_window.is_some() && self.sliding_layers.get(l) == Some(&true)
    }

    /// What layer `l` keeps of earlier positions: the plan a session's `Memory` allocates
    /// (model/memory.rs), from the family's layer pattern and the file's sizes.
    pub fn layer_memory(&self, l: usize) -> LayerMemory {
        match (&self.delta_net, self.sliding_window) {
            (Some(d), _) if d.recurrent.get(l) == Some(&true) => LayerMemory::Recurrent(d.shape),
            (_, Some(w)) if self.is_sliding(l) => LayerMemory::Window(w),
            _ => LayerMemory::Keys,
        }
    }

    /// The earlier layer whose keys and values layer `l` attends to, for the last
    /// `shared_kv_layers` layers (Gemma 4): the last layer before them for a global layer, the
    /// one before that for a sliding-window one, as llama.cpp pairs them (`validate` checks
    /// that each pair is of one kind).
    pub fn kv_source(&self, l: usize) -> Option<usize> {
        let first_shared = self.n_layer.checked_sub(self.shared_kv_layers)?;
        if l < first_shared {
            return None;
        }
        first_shared.checked_sub(if self.is_sliding(l) { 2 } else { 1 })
    }

    /// Layer `l`'s feed-forward width.
    pub fn ffn_width(&self, l: usize) -> usize {
        self.ffn_widths.get(l).copied().unwrap_or(self.n_ff)
    }

    /// Layer `l`'s attention heads.
    pub fn heads(&self, l: usize) -> Heads {
        self.heads_of(self.is_sliding(l))
    }

    /// The heads of the sliding-window layers, or of the others.
    fn heads_of(&self, sliding: bool) -> Heads {
        let g = if sliding {
            self.swa_geometry
        } else {
            SwaGeometry { n_head_kv: self.n_head_kv, head_dim: self.head_dim, rope_dims: self.rope_dims }
        };
        Heads {
            n_head: self.n_head,
            n_head_kv: g.n_head_kv,
            head_dim: g.head_dim,
            rope_dims: g.rope_dims,
            neox: self.rope_neox,
            gated: self.gated_attention,
        }
    }

    /// The distinct heads of the attention layers (one kind, or a sliding-window kind beside
    /// the other), in layer order of first appearance.
    pub fn head_kinds(&self) -> Vec<Heads> {
        let mut kinds: Vec<Heads> = Vec::new();
        for l in (0..self.n_layer).filter(|&l| !matches!(self.layer_memory(l), LayerMemory::Recurrent(_))) {
            let h = self.heads(l);
            if !kinds.contains(&h) {
                kinds.push(h);
            }
        }
        kinds
    }

    /// Parameters in the weight matrices and embeddings (norm vectors included).
    pub fn n_params(&self) -> u64 {
        self.params(self.experts.map_or(0, |x| x.count))
    }

    /// Parameters one token reads: those of the experts it uses, not all of them.
    pub fn n_active_params(&self) -> u64 {
        self.params(self.experts.map_or(0, |x| x.used))
    }

    fn params(&self, experts: usize) -> u64 {
        let e = self.n_embd as u64;
        let mixer = |l: usize| match self.layer_memory(l) {
            LayerMemory::Recurrent(s) => {
                let (proj, out) = (s.proj_width() as u64, s.value_dim() as u64);
                e * proj + out * e + (s.channels() * s.conv + 2 * s.value_heads + s.head) as u64
            }
            _ => e * self.heads(l).qkv_dim() as u64 + self.heads(l).q_dim() as u64 * e,
        };
        let ffn = |l: usize| match &self.experts {
            None => 3 * e * self.ffn_width(l) as u64,
            Some(x) => {
                let shared = x.shared_n_ff.map_or(0, |ff| 3 * e * ff as u64 + e);
                let dense = if x.beside_dense { 3 * e * self.ffn_width(l) as u64 } else { 0 };
                e * x.count as u64 + experts as u64 * 3 * e * x.n_ff as u64 + shared + dense
            }
        };
        // Gemma 4 E2B/E4B: a second embedding table, its projection and norm, and per layer a
        // gate, a projection and a norm.
        let p = self.per_layer_width as u64;
        let per_layer_input = 2 * e * p + e;
        let per_layer_tables = p * self.n_layer as u64 * (self.n_vocab as u64 + e) + p;
        let layers: u64 = (0..self.n_layer).map(|l| mixer(l) + ffn(l) + 2 * e).sum();
        let embd = e * self.n_vocab as u64;
        let per_layer = if p > 0 { per_layer_input * self.n_layer as u64 + per_layer_tables } else { 0 };
        layers + per_layer + embd * if self.tied_embeddings { 1 } else { 2 } + e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gguf_writer::GgufWriter;

    /// A header of the given architecture with small valid hyperparameters and `extra` keys.
    fn config(arch: &str, extra: &[(&str, Value)]) -> Result<ModelConfig> {
        let mut w = GgufWriter::new();
        w.meta("general.architecture", Value::String(arch.into()));
        for (k, v) in [("block_count", 2), ("embedding_length", 64), ("feed_forward_length", 128)] {
            w.meta(&format!("{arch}.{k}"), Value::U32(v));
        }
        w.meta(&format!("{arch}.attention.head_count"), Value::U32(4));
        w.meta("tokenizer.ggml.tokens", Value::array(vec![Value::String("a".into()); 10]));
        for (k, v) in extra {
            w.meta(&format!("{arch}.{k}"), v.clone());
        }
        let bytes = w.to_bytes();
        ModelConfig::from_gguf(&GgufHeader::parse(&bytes, bytes.len() as u64)?)
    }

    #[test]
    fn feed_forward_widths_per_layer_and_per_layer_inputs_are_read_or_refused() {
        let with_widths = |widths: Value, extra: &[(&str, Value)]| {
            let mut w = GgufWriter::new();
            w.meta("general.architecture", Value::String("gemma4".into()));
            for (k, v) in [("block_count", 2), ("embedding_length", 64)] {
                w.meta(&format!("gemma4.{k}"), Value::U32(v));
            }
            w.meta("gemma4.feed_forward_length", widths);
            w.meta("gemma4.attention.head_count", Value::U32(4));
            w.meta("tokenizer.ggml.tokens", Value::array(vec![Value::String("a".into()); 10]));
            for (k, v) in extra {
                w.meta(&format!("gemma4.{k}"), v.clone());
            }
            let bytes = w.to_bytes();
            ModelConfig::from_gguf(&GgufHeader::parse(&bytes, bytes.len() as u64)?)
        };
        let widths = |w: &[u32]| Value::array(w.iter().map(|&w| Value::U32(w)));
        let c = with_widths(widths(&[128, 256]), &[("embedding_length_per_layer_input", Value::U32(32))]).unwrap();
        assert_eq!((c.n_ff, c.ffn_width(0), c.ffn_width(1), c.per_layer_width), (256, 128, 256, 32));
        let params_without = with_widths(widths(&[128, 256]), &[]).unwrap().n_params();
        // Per layer a 64x32 gate and a 32x64 projection and a norm of 64; once the 10 x 64
        // table, its 64 x 64 projection and a norm of 32.
        assert_eq!(c.n_params() - params_without, 2 * (2 * 64 * 32 + 64) + 64 * 10 + 64 * 64 + 32);
        let uniform = with_widths(Value::U32(128), &[]).unwrap();
        assert_eq!((uniform.n_ff, uniform.ffn_width(1)), (128, 128));
        let err = with_widths(widths(&[128, 100]), &[]).unwrap_err().to_string();
        assert!(err.contains("feed-forward width 100"), "{err}");
        let err = with_widths(widths(&[128]), &[]).unwrap_err().to_string();
        assert!(err.contains("not one number per layer"), "{err}");
        let err = with_widths(Value::U32(128), &[("embedding_length_per_layer_input", Value::U32(48))]);
        assert!(err.unwrap_err().to_string().contains("per-layer inputs of 48"));
    }

    #[test]
    fn family_defaults_and_sliding_window_keys_are_read() {
        let llama = config("llama", &[]).unwrap();
        assert_eq!((llama.rope_neox, llama.sliding_window, llama.rope_base_swa), (false, None, None));
        let gemma = config("gemma3", &[("attention.sliding_window", Value::U32(512))]).unwrap();
        assert_eq!((gemma.rope_neox, gemma.sliding_window, gemma.rope_base_swa), (true, Some(512), Some(10000.0)));
        let stated = config("gemma3", &[("rope.freq_base_swa", Value::F32(5000.0))]).unwrap();
        assert_eq!(stated.rope_base_swa, Some(5000.0));
        assert!(config("qwen3", &[]).unwrap().rope_neox);
    }

    #[test]
    fn a_zero_window_is_none_and_a_negative_local_rope_base_is_refused() {
        let gemma = config("gemma3", &[("attention.sliding_window", Value::U32(0))]).unwrap();
        assert_eq!((gemma.sliding_window, gemma.is_sliding(0)), (None, false));
        let err = config("gemma3", &[("rope.freq_base_swa", Value::F32(-1.0))]).unwrap_err().to_string();
        assert!(err.contains("rope base"), "{err}");
    }

    #[test]
    fn expert_counts_rope_scaling_and_window_patterns_are_read_or_refused() {
        let moe =
            |used: u32| config("qwen3moe", &[("expert_count", Value::U32(8)), ("expert_used_count", Value::U32(used))]);
        let x = moe(2).unwrap().experts.unwrap();
        // Without expert_feed_forward_length, llama.cpp's fallback: the feed-forward over those used.
        assert_eq!((x.count, x.used, x.n_ff), (8, 2, 64));
        let err = moe(9).unwrap_err().to_string();
        assert!(err.contains("9 experts used of 8"), "{err}");
        let err = config("qwen3moe", &[("expert_count", Value::U32(8))]).unwrap_err().to_string();
        assert!(err.contains("expert_used_count is missing"), "{err}");
        // A family with dense and mixture-of-experts models (Gemma 4): experts where the file
        // counts them.
        assert!(config("gemma4", &[]).unwrap().experts.is_none());
        let gemma4 = config("gemma4", &[("expert_count", Value::U32(8)), ("expert_used_count", Value::U32(2))]);
        assert_eq!(gemma4.unwrap().experts.map(|x| (x.count, x.used)), Some((8, 2)));

        let yarn = config(
            "gpt-oss",
            &[
                ("expert_count", Value::U32(4)),
                ("expert_used_count", Value::U32(2)),
                ("rope.scaling.type", Value::String("yarn".into())),
                ("rope.scaling.factor", Value::F32(32.0)),
                ("rope.scaling.original_context_length", Value::U32(4096)),
            ],
        )
        .unwrap();
        assert!(matches!(yarn.rope_scaling, RopeScaling::Yarn { factor: 32.0, original_ctx: 4096, .. }));
        assert_eq!(yarn.rope_scaling_swa, yarn.rope_scaling);
        let linear = config("llama", &[("rope.scaling.factor", Value::F32(8.0))]).unwrap();
        assert_eq!(linear.rope_scaling, RopeScaling::Linear { factor: 8.0 });
        let err = config("llama", &[("rope.scaling.type", Value::String("longrope".into()))]).unwrap_err().to_string();
        assert!(err.contains("\"longrope\" is not supported"), "{err}");
        let err = config("llama", &[("rope.scaling.yarn_log_multiplier", Value::F32(0.1))]).unwrap_err().to_string();
        assert!(err.contains("log multiplier"), "{err}");

        let window = |extra: &[(&str, Value)]| {
            let mut keys = vec![("attention.sliding_window", Value::U32(16))];
            keys.extend(extra.iter().cloned());
            config("gemma3", &keys)
        };
        let every_other = window(&[("attention.sliding_window_pattern", Value::U32(2))]).unwrap();
        assert_eq!((0..2).map(|l| every_other.is_sliding(l)).collect::<Vec<_>>(), [true, false]);
        let per_layer = Value::array(vec![Value::Bool(false), Value::Bool(true)]);
        let listed = window(&[("attention.sliding_window_pattern", per_layer)]).unwrap();
        assert_eq!((0..2).map(|l| listed.is_sliding(l)).collect::<Vec<_>>(), [false, true]);
        let short = Value::array(vec![Value::Bool(true)]);
        let err = window(&[("attention.sliding_window_pattern", short)]).unwrap_err().to_string();
        assert!(err.contains("not one number per layer"), "{err}");
    }

    #[test]
    fn rope_factors_and_logit_softcapping_are_read_or_refused() {
        // Head size 16: 8 rotated pairs, one factor each.
        let with_factors = |factors: &[f32]| {
            let mut w = GgufWriter::new();
            w.meta("general.architecture", Value::String("gemma4".into()));
            for (k, v) in [("block_count", 2), ("embedding_length", 64), ("feed_forward_length", 128)] {
                w.meta(&format!("gemma4.{k}"), Value::U32(v));
            }
            w.meta("gemma4.attention.head_count", Value::U32(4));
            w.meta("tokenizer.ggml.tokens", Value::array(vec![Value::String("a".into()); 10]));
            let bytes = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
            w.tensor("rope_freqs.weight", &[factors.len() as u64], crate::quant::GgmlType::F32, bytes);
            let file = ModelFile::from_bytes(w.to_bytes())?;
            ModelConfig::from_gguf(&file.header)?.with_rope_factors(&file)
        };
        let factors = [1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1e30];
        assert_eq!(with_factors(&factors).unwrap().rope_factors, factors);
        let err = with_factors(&factors[..7]).unwrap_err().to_string();
        assert!(err.contains("7 factors for 8 rotated pairs"), "{err}");
        let err = with_factors(&[1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0]).unwrap_err().to_string();
        assert!(err.contains("rope_freqs.weight"), "{err}");

        assert_eq!(
            config("gemma4", &[("final_logit_softcapping", Value::F32(30.0))]).unwrap().logit_softcap,
            Some(30.0)
        );
        let err = config("gemma4", &[("final_logit_softcapping", Value::F32(-1.0))]).unwrap_err().to_string();
        assert!(err.contains("logit softcapping"), "{err}");
    }

    #[test]
    fn sliding_window_layers_read_heads_of_their_own() {
        let pattern = Value::array(vec![Value::Bool(true), Value::Bool(false)]);
        let gemma = |kv_heads: Vec<u32>| {
            config(
                "gemma3",
                &[
                    ("attention.sliding_window", Value::U32(16)),
                    ("attention.sliding_window_pattern", pattern.clone()),
                    ("attention.key_length", Value::U32(16)),
                    ("attention.key_length_swa", Value::U32(8)),
                    ("attention.head_count_kv", Value::array(kv_heads.into_iter().map(Value::U32))),
                ],
            )
        };
        let c = gemma(vec![4, 2]).unwrap();
        let (swa, full) = (c.heads(0), c.heads(1));
        assert_eq!((swa.n_head_kv, swa.head_dim, swa.rope_dims), (4, 8, 8));
        assert_eq!((full.n_head_kv, full.head_dim, full.rope_dims), (2, 16, 16));
        assert_eq!(c.head_kinds(), [swa, full]);
        // Two counts among layers of one kind have no place in this plan.
        let err = config(
            "gemma3",
            &[
                ("attention.sliding_window", Value::U32(16)),
                ("attention.head_count_kv", Value::array(vec![Value::U32(4), Value::U32(2)])),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("key/value heads per layer"), "{err}");
    }

    #[test]
    fn delta_net_layers_are_read_and_bad_shapes_refused() {
        let ssm = |extra: &[(&str, Value)]| {
            let mut keys = vec![
                ("ssm.conv_kernel", Value::U32(4)),
                ("ssm.inner_size", Value::U32(128)),
                ("ssm.state_size", Value::U32(32)),
                ("ssm.time_step_rank", Value::U32(4)),
                ("ssm.group_count", Value::U32(2)),
            ];
            keys.retain(|(k, _)| extra.iter().all(|(e, _)| e != k));
            keys.extend(extra.iter().cloned());
            config("qwen35", &keys)
        };
        let c = ssm(&[("full_attention_interval", Value::U32(2))]).unwrap();
        let shape = DeltaShape { key_heads: 2, value_heads: 4, head: 32, conv: 4 };
        assert_eq!(c.layer_memory(0), LayerMemory::Recurrent(shape));
        assert_eq!(c.layer_memory(1), LayerMemory::Keys);
        let listed = ssm(&[("attention.recurrent_layers", Value::array([Value::Bool(false), Value::Bool(true)]))]);
        assert_eq!(listed.unwrap().delta_net.map(|d| d.recurrent), Some(vec![false, true]));

        let err = |extra: &[(&str, Value)]| ssm(extra).unwrap_err().to_string();
        assert!(err(&[("ssm.inner_size", Value::U32(100))]).contains("the state is square"));
        assert!(err(&[("ssm.group_count", Value::U32(3))]).contains("a delta-net layer of"));
        assert!(err(&[("ssm.conv_kernel", Value::U32(1))]).contains("a delta-net layer of"));
        let short = Value::array([Value::Bool(true)]);
        assert!(err(&[("attention.recurrent_layers", short)]).contains("attention.recurrent_layers"));
    }
}
