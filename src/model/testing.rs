//! Small random-weight models written as GGUF, for tests that need a whole model without
//! downloading one.

use super::gguf::{Array, Value};
use super::gguf_writer::GgufWriter;
use crate::ops::delta_net::DeltaShape;
use crate::quant::GgmlType;
use crate::quant::testing::{random_tensor, random_vec};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

#[derive(Clone, Debug)]
pub struct TinyLlama {
    /// "llama", "qwen2" (adds Q|K|V biases and NeoX RoPE), "qwen3" (per-head QK-norm gammas
    /// and NeoX RoPE), "qwen3moe" (qwen3 with `experts`), "phi3" (fused attn_qkv and gate|up
    /// in ffn_up, NeoX RoPE), "gpt-oss" (with `experts`: Q/K/V/output, router and expert
    /// biases, attention sinks, a post-attention norm for the experts, YaRN; untied) or
    /// "qwen35" (with `delta_net`: gated delta-net layers, and every
    /// `full_attention_interval`-th layer Qwen 3's attention with an output gate per head) or
    /// "qwen35moe" (qwen35 with `experts` and a shared expert) or "gemma4" (Gemma 4:
    /// sliding-window layers with `swa_heads`, QK-norm, V-norm, post-norms, a per-layer output
    /// scale, proportional RoPE factors on the global layers, per-layer inputs where
    /// `per_layer_width` is set).
    pub arch: &'static str,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Head size where it is not n_embd / n_head (written as attention.key_length).
    pub head_dim: Option<usize>,
    /// Keys a sliding-window layer sees (gpt-oss: every other layer).
    pub sliding_window: Option<usize>,
    /// The global layers have no `attn_v`: their values are their keys (gemma4).
    pub k_as_v: bool,
    /// Written as gemma4's `attention.shared_kv_layers` (the last layers reuse earlier caches).
    pub shared_kv_layers: usize,
    /// Values per layer of gemma4's per-layer inputs (E2B/E4B; 0: none).
    pub per_layer_width: usize,
    /// The shared-KV layers' feed-forward twice as wide (gemma4's `use_double_wide_mlp`,
    /// written as a per-layer `feed_forward_length`).
    pub double_wide_shared_ffn: bool,
    /// (key/value heads, head size) of the sliding-window layers where they differ from the
    /// others' (written as a per-layer `attention.head_count_kv` and
    /// `attention.key_length_swa`, as Gemma 4's files have them).
    pub swa_heads: Option<(usize, usize)>,
    /// YaRN (factor, original context length) for the RoPE.
    pub yarn: Option<(f32, usize)>,
    pub weights: GgmlType,
    /// The type of attn_v and ffn_down when it differs (as Q4_K_M files store them in Q6_K).
    pub v_and_down: Option<GgmlType>,
    pub tied: bool,
    /// (count, used): a mixture-of-experts feed-forward of `count` experts `n_ff` wide each.
    pub experts: Option<(usize, usize)>,
    /// Two more tokens, `<think>` and `</think>` (ids 259 and 260), as Qwen 3 has.
    pub think_tokens: bool,
    /// A family's markup tokens after those (`HARMONY_TOKENS`, `GEMMA4_TOKENS`): (text, type
    /// as llama.cpp numbers them: 3 control, 4 user-defined).
    pub markup_tokens: &'static [(&'static str, i32)],
    /// RoPE over only the first dimensions of each head (written as rope.dimension_count).
    pub rope_dims: Option<usize>,
    /// The gated delta-net layers' shape (qwen35).
    pub delta_net: Option<DeltaShape>,
    pub full_attention_interval: usize,
    /// Scales the delta-net layers' A: below 1, states that fade more slowly.
    pub state_decay: f32,
    /// Written as `tokenizer.chat_template`.
    pub chat_template: Option<&'static str>,
    pub seed: u64,
}

impl Default for TinyLlama {
    fn default() -> Self {
        TinyLlama {
            arch: "llama",
            n_layer: 2,
            n_embd: 64,
            n_ff: 128,
            n_head: 4,
            n_head_kv: 2,
            head_dim: None,
            sliding_window: None,
            swa_heads: None,
            k_as_v: false,
            shared_kv_layers: 0,
            per_layer_width: 0,
            double_wide_shared_ffn: false,
            yarn: None,
            weights: GgmlType::Q4_1,
            v_and_down: None,
            tied: true,
            experts: None,
            think_tokens: false,
            markup_tokens: &[],
            rope_dims: None,
            delta_net: None,
            full_attention_interval: 4,
            state_decay: 1.0,
            chat_template: None,
            seed: 1,
        }
    }
}

/// GPT-2's byte-to-character map: printable bytes stand for themselves, the rest shift to U+0100 on.
fn byte_chars() -> Vec<String> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut shifted = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b)
            } else {
                shifted += 1;
                char::from_u32(255 + shifted)
            }
            .map(String::from)
            .unwrap_or_default()
        })
        .collect()
}

/// gpt-oss's harmony markup (control tokens), for `markup_tokens`.
pub const HARMONY_TOKENS: &[(&str, i32)] = &[
    ("<|start|>", 3),
    ("<|channel|>", 3),
    ("<|message|>", 3),
    ("<|end|>", 3),
    ("<|call|>", 3),
    ("<|return|>", 3),
    ("<|constrain|>", 3),
];

/// Gemma 4's turn markup (control tokens) and its tool call and string markup (user-defined, as
/// its converter writes them, so that they appear in decoded text), for `markup_tokens`.
pub const GEMMA4_TOKENS: &[(&str, i32)] =
    &[("<|turn>", 3), ("<turn|>", 3), ("<|tool_call>", 4), ("<tool_call|>", 4), ("<|\"|>", 4)];

impl TinyLlama {
    /// Vocabulary: the 256 byte tokens, two merges, and `<|endoftext|>` as end of generation
    /// (and the think tokens and a family's markup where asked).
    pub fn vocab_size(&self) -> usize {
        259 + if self.think_tokens { 2 } else { 0 } + self.markup_tokens.len()
    }

    fn is_qwen35(&self) -> bool {
        self.arch == "qwen35" || self.arch == "qwen35moe"
    }

    /// Whether layer `l` attends to a sliding window (gpt-oss: every other layer, from the
    /// first; gemma4: all but every `full_attention_interval`-th).
    fn is_sliding(&self, l: usize) -> bool {
        match self.arch {
            _ if self.sliding_window.is_none() => false,
            "gpt-oss" => l.is_multiple_of(2),
            "gemma4" => !(l + 1).is_multiple_of(self.full_attention_interval.max(1)),
            _ => false,
        }
    }

    /// Whether layer `l` is one of the last `shared_kv_layers`, with no keys or values of its own.
    fn shares_kv(&self, l: usize) -> bool {
        l + self.shared_kv_layers >= self.n_layer && self.shared_kv_layers > 0
    }

    /// Layer `l`'s feed-forward width.
    fn layer_ffn(&self, l: usize) -> usize {
        if self.double_wide_shared_ffn && self.shares_kv(l) { 2 * self.n_ff } else { self.n_ff }
    }

    /// Layer `l`'s (key/value heads, head size).
    fn layer_heads(&self, l: usize) -> (usize, usize) {
        match self.swa_heads {
            Some(swa) if self.is_sliding(l) => swa,
            _ => (self.n_head_kv, self.head_dim.unwrap_or(self.n_embd / self.n_head)),
        }
    }

    /// Whether layer `l` is a delta-net layer (all but every `full_attention_interval`-th).
    fn is_recurrent(&self, l: usize) -> bool {
        self.delta_net.is_some() && !(l + 1).is_multiple_of(self.full_attention_interval.max(1))
    }

    pub fn to_gguf(&self) -> Vec<u8> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed);
        let mut tokens = byte_chars();
        tokens.extend(["Ġt".to_string(), "he".to_string(), "<|endoftext|>".to_string()]);
        let mut types = vec![1i32; tokens.len()];
        types[258] = 3;
        if self.think_tokens {
            // Qwen 3's are user-defined: they are text, rendered like any other token.
            tokens.extend(["<think>".to_string(), "</think>".to_string()]);
            types.extend([4, 4]);
        }
        tokens.extend(self.markup_tokens.iter().map(|(text, _)| text.to_string()));
        types.extend(self.markup_tokens.iter().map(|&(_, kind)| kind));
        let strings = |v: &[String]| Value::array(v.iter().map(|s| Value::String(s.clone())));
        let e = self.n_embd as u64;
        let oss = self.arch == "gpt-oss";
        let gemma4 = self.arch == "gemma4";
        let full_head = self.head_dim.unwrap_or(self.n_embd / self.n_head);
        let mut w = GgufWriter::new();
        let key = |k: &str| format!("{}.{k}", self.arch);
        w.meta("general.architecture", Value::String(self.arch.into()))
            .meta("general.name", Value::String(format!("tiny random {}", self.arch)))
            .meta(&key("block_count"), Value::U32(self.n_layer as u32))
            .meta(&key("context_length"), Value::U32(256))
            .meta(&key("embedding_length"), Value::U32(self.n_embd as u32))
            .meta(&key("attention.head_count"), Value::U32(self.n_head as u32))
            .meta(
                &key("rope.freq_base"),
                Value::F32(match self.arch {
                    "gpt-oss" => 150000.0,
                    "gemma4" => 1e6,
                    _ => 10000.0,
                }),
            )
            .meta(&key("attention.layer_norm_rms_epsilon"), Value::F32(1e-5))
            .meta("tokenizer.ggml.model", Value::String("gpt2".into()))
            .meta("tokenizer.ggml.pre", Value::String("smollm".into()))
            .meta("tokenizer.ggml.tokens", strings(&tokens))
            .meta("tokenizer.ggml.token_type", Value::array(types.into_iter().map(Value::I32)))
            .meta("tokenizer.ggml.merges", strings(&["Ġ t".to_string(), "h e".to_string()]))
            .meta("tokenizer.ggml.eos_token_id", Value::U32(258));
        if self.double_wide_shared_ffn {
            let widths = (0..self.n_layer).map(|l| Value::U32(self.layer_ffn(l) as u32));
            w.meta(&key("feed_forward_length"), Value::array(widths));
        } else {
            w.meta(&key("feed_forward_length"), Value::U32(self.n_ff as u32));
        }
        if gemma4 {
            // The pattern, head sizes and window are required keys of llama.cpp's gemma4 loader.
            let pattern = (0..self.n_layer).map(|l| Value::Bool(self.is_sliding(l)));
            let swa_head = self.swa_heads.map_or(full_head, |(_, head)| head);
            w.meta(&key("attention.sliding_window_pattern"), Value::array(pattern))
                .meta(&key("attention.key_length_swa"), Value::U32(swa_head as u32))
                .meta(&key("attention.value_length_swa"), Value::U32(swa_head as u32))
                .meta(&key("attention.key_length"), Value::U32(full_head as u32))
                .meta(&key("attention.value_length"), Value::U32(full_head as u32))
                .meta(&key("rope.dimension_count"), Value::U32(full_head as u32))
                .meta(&key("rope.dimension_count_swa"), Value::U32(swa_head as u32))
                .meta(&key("embedding_length_per_layer_input"), Value::U32(self.per_layer_width as u32))
                .meta(&key("rope.freq_base_swa"), Value::F32(10000.0))
                .meta(&key("final_logit_softcapping"), Value::F32(30.0));
            if self.shared_kv_layers > 0 {
                w.meta(&key("attention.shared_kv_layers"), Value::U32(self.shared_kv_layers as u32));
            }
        }
        if let Some(template) = self.chat_template {
            w.meta("tokenizer.chat_template", Value::String(template.into()));
        }
        match self.swa_heads {
            None => w.meta(&key("attention.head_count_kv"), Value::U32(self.n_head_kv as u32)),
            Some(_) if gemma4 => {
                let kv_heads = (0..self.n_layer).map(|l| Value::U32(self.layer_heads(l).0 as u32));
                w.meta(&key("attention.head_count_kv"), Value::array(kv_heads))
            }
            Some((_, head)) => {
                let kv_heads = (0..self.n_layer).map(|l| Value::U32(self.layer_heads(l).0 as u32));
                w.meta(&key("attention.head_count_kv"), Value::array(kv_heads))
                    .meta(&key("attention.key_length_swa"), Value::U32(head as u32))
                    .meta(&key("attention.value_length_swa"), Value::U32(head as u32))
            }
        };
        if let (Some(d), false) = (self.head_dim, gemma4) {
            w.meta(&key("attention.key_length"), Value::U32(d as u32))
                .meta(&key("attention.value_length"), Value::U32(d as u32));
        }
        if let Some(d) = self.rope_dims {
            // Qwen 3.5's M-RoPE sections (text gives every section the same position).
            let pairs = (d / 2) as i32;
            let sections = [pairs - 2 * (pairs / 3), pairs / 3, pairs / 3, 0];
            w.meta(&key("rope.dimension_count"), Value::U32(d as u32))
                .meta(&key("rope.dimension_sections"), Value::array(sections.into_iter().map(Value::I32)));
        }
        if let Some(s) = self.delta_net {
            w.meta(&key("ssm.conv_kernel"), Value::U32(s.conv as u32))
                .meta(&key("ssm.inner_size"), Value::U32(s.value_dim() as u32))
                .meta(&key("ssm.state_size"), Value::U32(s.head as u32))
                .meta(&key("ssm.time_step_rank"), Value::U32(s.value_heads as u32))
                .meta(&key("ssm.group_count"), Value::U32(s.key_heads as u32))
                .meta(&key("full_attention_interval"), Value::U32(self.full_attention_interval as u32));
        }
        if let Some(window) = self.sliding_window {
            w.meta(&key("attention.sliding_window"), Value::U32(window as u32));
        }
        if let Some((factor, original)) = self.yarn {
            w.meta(&key("rope.scaling.type"), Value::String("yarn".into()))
                .meta(&key("rope.scaling.factor"), Value::F32(factor))
                .meta(&key("rope.scaling.original_context_length"), Value::U32(original as u32));
        }
        if let Some((count, used)) = self.experts {
            w.meta(&key("expert_count"), Value::U32(count as u32))
                .meta(&key("expert_used_count"), Value::U32(used as u32))
                .meta(&key("expert_feed_forward_length"), Value::U32(self.n_ff as u32));
            if self.arch == "qwen35moe" {
                w.meta(&key("expert_shared_feed_forward_length"), Value::U32(self.n_ff as u32));
            }
        }
        let vocab = self.vocab_size() as u64;
        // dims[0] is the row length; the rest multiply into rows.
        let mut matrix = |w: &mut GgufWriter, name: &str, dims: &[u64], ty: GgmlType| {
            let rows = dims[1..].iter().product::<u64>() as usize;
            w.tensor(name, dims, ty, random_tensor(ty, rows, dims[0] as usize, &mut rng));
        };
        matrix(&mut w, "token_embd.weight", &[e, vocab], GgmlType::Q8_0);
        let per_layer = self.per_layer_width as u64;
        if per_layer > 0 {
            let all = per_layer * self.n_layer as u64;
            matrix(&mut w, "per_layer_token_embd.weight", &[all, vocab], GgmlType::Q8_0);
            matrix(&mut w, "per_layer_model_proj.weight", &[e, all], self.weights);
        }
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            let (kv_heads, head_dim) = self.layer_heads(l);
            let (q, kv) = ((self.n_head * head_dim) as u64, (kv_heads * head_dim) as u64);
            let ty = self.weights;
            let v_and_down = self.v_and_down.unwrap_or(ty);
            if let Some(s) = self.delta_net.filter(|_| self.is_recurrent(l)) {
                let (ch, vd, hv) = (s.channels() as u64, s.value_dim() as u64, s.value_heads as u64);
                matrix(&mut w, &n("attn_qkv"), &[e, ch], ty);
                matrix(&mut w, &n("attn_gate"), &[e, vd], ty);
                matrix(&mut w, &n("ssm_beta"), &[e, hv], ty);
                matrix(&mut w, &n("ssm_alpha"), &[e, hv], ty);
                matrix(&mut w, &n("ssm_out"), &[vd, e], ty);
            } else if self.is_qwen35() {
                // Each head's queries, then its output gate.
                matrix(&mut w, &n("attn_q"), &[e, 2 * q], ty);
                matrix(&mut w, &n("attn_k"), &[e, kv], ty);
                matrix(&mut w, &n("attn_v"), &[e, kv], v_and_down);
            } else if self.arch == "phi3" {
                matrix(&mut w, &n("attn_qkv"), &[e, q + 2 * kv], ty);
            } else {
                matrix(&mut w, &n("attn_q"), &[e, q], ty);
                if !self.shares_kv(l) {
                    matrix(&mut w, &n("attn_k"), &[e, kv], ty);
                }
                if !(self.k_as_v && !self.is_sliding(l) || self.shares_kv(l)) {
                    matrix(&mut w, &n("attn_v"), &[e, kv], v_and_down);
                }
            }
            if !self.is_recurrent(l) {
                matrix(&mut w, &n("attn_output"), &[q, e], ty);
            }
            if let Some((count, _)) = self.experts {
                // The router stays f32, as converters leave it; expert tensors are [cols, rows, count].
                matrix(&mut w, &n("ffn_gate_inp"), &[e, count as u64], GgmlType::F32);
                let (ff, count) = (self.n_ff as u64, count as u64);
                if gemma4 {
                    // Each expert's gate rows then its up rows, in one tensor.
                    matrix(&mut w, &n("ffn_gate_up_exps"), &[e, 2 * ff, count], ty);
                } else {
                    matrix(&mut w, &n("ffn_gate_exps"), &[e, ff, count], ty);
                    matrix(&mut w, &n("ffn_up_exps"), &[e, ff, count], ty);
                }
                matrix(&mut w, &n("ffn_down_exps"), &[ff, e, count], v_and_down);
                if self.arch == "qwen35moe" {
                    matrix(&mut w, &n("ffn_gate_inp_shexp"), &[e], GgmlType::F32);
                    matrix(&mut w, &n("ffn_gate_shexp"), &[e, ff], ty);
                    matrix(&mut w, &n("ffn_up_shexp"), &[e, ff], ty);
                    matrix(&mut w, &n("ffn_down_shexp"), &[ff, e], v_and_down);
                }
            }
            // Without experts, a dense feed-forward (Gemma 4 has one beside its experts too).
            let dense = self.experts.is_none() || gemma4;
            let ff = self.layer_ffn(l) as u64;
            if dense && self.arch == "phi3" {
                matrix(&mut w, &n("ffn_up"), &[e, 2 * ff], ty);
            } else if dense {
                matrix(&mut w, &n("ffn_gate"), &[e, ff], ty);
                matrix(&mut w, &n("ffn_up"), &[e, ff], ty);
            }
            if dense {
                matrix(&mut w, &n("ffn_down"), &[ff, e], v_and_down);
            }
            if per_layer > 0 {
                matrix(&mut w, &n("inp_gate"), &[e, per_layer], ty);
                matrix(&mut w, &n("proj"), &[per_layer, e], ty);
            }
        }
        // F32 vectors around 1 (gammas; biases too: large enough to matter).
        let mut norm = |w: &mut GgufWriter, name: &str, dims: &[usize]| {
            let len = dims.iter().product();
            let gamma: Vec<u8> = random_vec(len, &mut rng).iter().flat_map(|v| (1.0 + 0.2 * v).to_le_bytes()).collect();
            let dims: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
            w.tensor(name, &dims, GgmlType::F32, gamma);
        };
        let e = self.n_embd;
        let mut ssm_rng = Xoshiro256PlusPlus::seed_from_u64(self.seed ^ 0x55);
        for l in 0..self.n_layer {
            let (kv_heads, head_dim) = self.layer_heads(l);
            let (q, kv) = (self.n_head * head_dim, kv_heads * head_dim);
            let n = |s: &str| format!("blk.{l}.{s}");
            norm(&mut w, &n("attn_norm.weight"), &[e]);
            let post_norm = oss || self.is_qwen35();
            norm(&mut w, &n(if post_norm { "post_attention_norm.weight" } else { "ffn_norm.weight" }), &[e]);
            if let Some(s) = self.delta_net.filter(|_| self.is_recurrent(l)) {
                let (ch, hv) = (s.channels(), s.value_heads);
                let mut f32s = |name: &str, dims: &[u64], values: Vec<f32>| {
                    w.tensor(name, dims, GgmlType::F32, values.iter().flat_map(|v| v.to_le_bytes()).collect());
                };
                f32s(&n("ssm_conv1d.weight"), &[s.conv as u64, ch as u64], random_vec(s.conv * ch, &mut ssm_rng));
                f32s(&n("ssm_dt.bias"), &[hv as u64], random_vec(hv, &mut ssm_rng));
                // A = -exp(A_log): a decay between 0 and 1 per step.
                let a = random_vec(hv, &mut ssm_rng).iter().map(|v| -(0.5 * v).exp() * self.state_decay).collect();
                f32s(&n("ssm_a"), &[hv as u64], a);
                norm(&mut w, &n("ssm_norm.weight"), &[s.head]);
            } else if self.is_qwen35() {
                norm(&mut w, &n("attn_q_norm.weight"), &[head_dim]);
                norm(&mut w, &n("attn_k_norm.weight"), &[head_dim]);
            }
            if gemma4 {
                norm(&mut w, &n("post_attention_norm.weight"), &[e]);
                norm(&mut w, &n("post_ffw_norm.weight"), &[e]);
                norm(&mut w, &n("layer_output_scale.weight"), &[1]);
                if self.per_layer_width > 0 {
                    norm(&mut w, &n("post_norm.weight"), &[e]);
                }
                if let Some((count, _)) = self.experts {
                    for name in ["pre_ffw_norm_2", "post_ffw_norm_1", "post_ffw_norm_2", "ffn_gate_inp.scale"] {
                        let name = if name.contains('.') { n(name) } else { n(&format!("{name}.weight")) };
                        norm(&mut w, &name, &[e]);
                    }
                    norm(&mut w, &n("ffn_down_exps.scale"), &[count]);
                }
            }
            if self.arch == "qwen3" || self.arch == "qwen3moe" || gemma4 {
                norm(&mut w, &n("attn_q_norm.weight"), &[head_dim]);
            }
            if (self.arch == "qwen3" || self.arch == "qwen3moe" || gemma4) && !self.shares_kv(l) {
                norm(&mut w, &n("attn_k_norm.weight"), &[head_dim]);
            }
            if self.arch == "qwen2" || oss {
                norm(&mut w, &n("attn_q.bias"), &[q]);
                norm(&mut w, &n("attn_k.bias"), &[kv]);
                norm(&mut w, &n("attn_v.bias"), &[kv]);
            }
            if let (true, Some((count, _))) = (oss, self.experts) {
                norm(&mut w, &n("attn_output.bias"), &[e]);
                norm(&mut w, &n("attn_sinks.weight"), &[self.n_head]);
                norm(&mut w, &n("ffn_gate_inp.bias"), &[count]);
                norm(&mut w, &n("ffn_gate_exps.bias"), &[self.n_ff, count]);
                norm(&mut w, &n("ffn_up_exps.bias"), &[self.n_ff, count]);
                norm(&mut w, &n("ffn_down_exps.bias"), &[e, count]);
            }
        }
        norm(&mut w, "output_norm.weight", &[e]);
        if self.per_layer_width > 0 {
            norm(&mut w, "per_layer_proj_norm.weight", &[self.per_layer_width]);
        }
        if gemma4 {
            // Proportional RoPE on the global layers: the last quarter of each head's pairs
            // not rotated at all (a factor of 1e30 stops them), the others at their own rates.
            let pairs = full_head / 2;
            let factors: Vec<u8> = (0..pairs)
                .map(|i| if i >= pairs * 3 / 4 { 1e30f32 } else { 1.0 + (i % 3) as f32 })
                .flat_map(|f| f.to_le_bytes())
                .collect();
            w.tensor("rope_freqs.weight", &[pairs as u64], GgmlType::F32, factors);
        }
        if !self.tied {
            let mut rng2 = Xoshiro256PlusPlus::seed_from_u64(self.seed ^ 0xabc);
            w.tensor(
                "output.weight",
                &[e as u64, vocab],
                GgmlType::Q8_0,
                random_tensor(GgmlType::Q8_0, vocab as usize, e, &mut rng2),
            );
        }
        w.to_bytes()
    }
}

/// A crafted GGUF file of `len` bytes (rounded up to a multiple of 32, from 64 on) without
/// tensors, whose one metadata value "blob", a u8 array of 0x5a bytes, runs to its end: parsed
/// into a `Value` per item it once took 32 times its size in memory.
pub fn gguf_array_to_end(len: usize) -> Vec<u8> {
    // The preamble (24 bytes), the key "blob" (12), the value type, the element type and the count (16).
    let n = len.max(64) - 52;
    let mut w = GgufWriter::new();
    if let Ok(blob) = Array::from_encoded(0, n as u64, &vec![0x5a; n]) {
        w.meta("blob", Value::Array(blob));
    }
    w.to_bytes()
}

/// A crafted GGUF file whose tensor "b" (8 F32 values) lies inside tensor "a" (64): its
/// relative offset, 256 as written, is patched to 64.
pub fn gguf_overlapping_tensors() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.tensor("a", &[64], GgmlType::F32, vec![1; 256]).tensor("b", &[8], GgmlType::F32, vec![2; 32]);
    let mut bytes = w.to_bytes();
    // After the preamble (24 bytes) and "a"'s info (33): "b"'s name (9), n_dims, its dimension and type (16).
    let offset_at = 24 + 33 + 9 + 16;
    if let Some(field) = bytes.get_mut(offset_at..offset_at + 8) {
        field.copy_from_slice(&64u64.to_le_bytes());
    }
    bytes
}
