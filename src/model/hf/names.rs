//! Hugging Face tensor names → GGUF names, and what must change in the values on the way
//! (the same changes llama.cpp's converter makes).

/// Whole-name renames.
const GLOBAL: &[(&str, &str)] = &[
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// Per-layer renames: `model.layers.{i}.{hf}` → `blk.{i}.{gguf}`. Gemma 3 names its norms
/// differently around the feed-forward, so the shared table is consulted after its own.
const LAYER: &[(&str, &str)] = &[
    ("input_layernorm.weight", "attn_norm.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("self_attn.q_proj.bias", "attn_q.bias"),
    ("self_attn.k_proj.bias", "attn_k.bias"),
    ("self_attn.v_proj.bias", "attn_v.bias"),
    ("self_attn.qkv_proj.weight", "attn_qkv.weight"),
    ("self_attn.q_norm.weight", "attn_q_norm.weight"),
    ("self_attn.k_norm.weight", "attn_k_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.gate_up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
];

const GEMMA3_LAYER: &[(&str, &str)] = &[
    ("post_attention_layernorm.weight", "post_attention_norm.weight"),
    ("pre_feedforward_layernorm.weight", "ffn_norm.weight"),
    ("post_feedforward_layernorm.weight", "post_ffw_norm.weight"),
];

/// A change to a tensor's values between the two conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    None,
    /// Llama's Q and K rows: Hugging Face rotates halves of each head (i, i + d/2), GGUF
    /// neighbours (2i, 2i + 1); the rows of each of `heads` heads are interleaved to match.
    RopeRows {
        heads: usize,
    },
    /// Gemma's RMSNorm multiplies by (1 + w); GGUF files store the 1 added.
    PlusOne,
}

/// Names under which multimodal folders keep the language model's tensors.
const PREFIXES: &[&str] = &["language_model.", "model.language_model."];

/// The GGUF name of a Hugging Face tensor and the transform its values need, or None for
/// tensors hearth does not use (vision towers, rotary caches).
pub fn map(hf: &str, arch: &str, n_head: usize, n_head_kv: usize) -> Option<(String, Transform)> {
    let mut name = hf.to_string();
    for p in PREFIXES {
        if let Some(rest) = hf.strip_prefix(p) {
            name = if rest.starts_with("model.") || rest.starts_with("lm_head") {
                rest.into()
            } else {
                format!("model.{rest}")
            };
        }
    }
    let gemma = arch == "gemma3";
    let plus_one = |is_norm: bool| if gemma && is_norm { Transform::PlusOne } else { Transform::None };
    if let Some(&(_, gguf)) = GLOBAL.iter().find(|(h, _)| *h == name) {
        return Some((gguf.to_string(), plus_one(gguf == "output_norm.weight")));
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let tables: &[&[(&str, &str)]] = if gemma { &[GEMMA3_LAYER, LAYER] } else { &[LAYER] };
    let gguf = tables.iter().find_map(|t| t.iter().find(|(h, _)| *h == part))?.1;
    let transform = match gguf {
        "attn_q.weight" if arch == "llama" => Transform::RopeRows { heads: n_head },
        "attn_k.weight" if arch == "llama" => Transform::RopeRows { heads: n_head_kv },
        g => plus_one(g.ends_with("norm.weight")),
    };
    Some((format!("blk.{layer}.{gguf}"), transform))
}

/// The inverse of `map`'s renaming (GGUF → Hugging Face), for writing test folders.
pub fn hf_name(gguf: &str, arch: &str) -> Option<String> {
    if let Some(&(hf, _)) = GLOBAL.iter().find(|(_, g)| *g == gguf) {
        return Some(hf.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let tables: &[&[(&str, &str)]] = if arch == "gemma3" { &[GEMMA3_LAYER, LAYER] } else { &[LAYER] };
    let hf = tables.iter().find_map(|t| t.iter().find(|(_, g)| *g == part))?.0;
    Some(format!("model.layers.{layer}.{hf}"))
}

/// Row `r` of a Hugging Face Q/K matrix of `rows` rows lands at this GGUF row: within each
/// head, row j·d/2 + i (half j, pair i) becomes row 2i + j.
pub fn rope_row(r: usize, rows: usize, heads: usize) -> usize {
    let d = rows / heads.max(1);
    let (head, within) = (r / d, r % d);
    let (half, pair) = (within / (d / 2), within % (d / 2));
    head * d + 2 * pair + half
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_names_map_with_their_transforms() {
        assert_eq!(
            map("model.embed_tokens.weight", "llama", 9, 3),
            Some(("token_embd.weight".into(), Transform::None))
        );
        assert_eq!(
            map("model.layers.7.self_attn.k_proj.weight", "llama", 9, 3),
            Some(("blk.7.attn_k.weight".into(), Transform::RopeRows { heads: 3 }))
        );
        assert_eq!(map("model.layers.0.self_attn.k_proj.weight", "qwen2", 9, 3).unwrap().1, Transform::None);
        assert_eq!(map("model.layers.0.self_attn.rotary_emb.inv_freq", "llama", 9, 3), None);
        assert_eq!(map("vision_tower.blocks.0.weight", "gemma3", 1, 1), None);
    }

    #[test]
    fn gemma_norms_get_their_one_and_their_own_names() {
        assert_eq!(
            map("model.layers.2.post_attention_layernorm.weight", "gemma3", 4, 1),
            Some(("blk.2.post_attention_norm.weight".into(), Transform::PlusOne))
        );
        assert_eq!(
            map("language_model.model.layers.2.pre_feedforward_layernorm.weight", "gemma3", 4, 1),
            Some(("blk.2.ffn_norm.weight".into(), Transform::PlusOne))
        );
        assert_eq!(map("model.norm.weight", "gemma3", 4, 1).unwrap().1, Transform::PlusOne);
        assert_eq!(map("model.layers.2.self_attn.q_norm.weight", "gemma3", 4, 1).unwrap().1, Transform::PlusOne);
        assert_eq!(
            hf_name("blk.2.ffn_norm.weight", "gemma3").as_deref(),
            Some("model.layers.2.pre_feedforward_layernorm.weight")
        );
        assert_eq!(
            hf_name("blk.2.ffn_norm.weight", "llama").as_deref(),
            Some("model.layers.2.post_attention_layernorm.weight")
        );
    }

    #[test]
    fn rope_rows_interleave_the_halves_of_each_head() {
        // Two heads of 4 rows: HF [a0 a1 b0 b1] per head → GGUF [a0 b0 a1 b1].
        let moved: Vec<usize> = (0..8).map(|r| rope_row(r, 8, 2)).collect();
        assert_eq!(moved, [0, 2, 1, 3, 4, 6, 5, 7]);
    }
}
