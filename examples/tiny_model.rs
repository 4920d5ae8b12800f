//! Writes a random-weight GGUF (`model::testing::TinyLlama`) for fixtures checked against other
//! engines: `cargo run --example tiny_model -- OUT.gguf arch=qwen3moe experts=8/2 n_embd=256`.
//! Keys: arch, n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim, experts (count/used),
//! sliding_window, swa_heads (the sliding-window layers' KV heads/head size), yarn (factor/original context), rope_dims, delta_net (key heads/value
//! heads/head size/conv width), full_attention_interval, weights (a GGUF type name, f32 by
//! default so another tool can quantize it), tied (true/false), k_as_v (true: global layers
//! without attn_v, gemma4), shared_kv_layers (gemma4), per_layer_width (gemma4's per-layer
//! inputs), double_wide_shared_ffn (true: gemma4's shared-KV layers' feed-forward twice as
//! wide), seed.

use hearth::model::testing::TinyLlama;
use hearth::ops::delta_net::DeltaShape;
use hearth::quant::GgmlType;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().ok_or("usage: tiny_model OUT.gguf [key=value ...]")?;
    let mut m = TinyLlama { weights: GgmlType::F32, ..TinyLlama::default() };
    let arch_names = ["llama", "qwen2", "qwen3", "qwen3moe", "phi3", "gpt-oss", "qwen35", "qwen35moe", "gemma4"];
    for arg in args {
        let (key, value) = arg.split_once('=').ok_or(format!("{arg}: expected key=value"))?;
        let number = || value.parse::<usize>().map_err(|e| format!("{key}: {e}"));
        match key {
            "arch" => m.arch = arch_names.into_iter().find(|a| *a == value).ok_or(format!("arch {value}"))?,
            "n_layer" => m.n_layer = number()?,
            "n_embd" => m.n_embd = number()?,
            "n_ff" => m.n_ff = number()?,
            "n_head" => m.n_head = number()?,
            "n_head_kv" => m.n_head_kv = number()?,
            "seed" => m.seed = number()? as u64,
            "head_dim" => m.head_dim = Some(number()?),
            "sliding_window" => m.sliding_window = Some(number()?),
            "swa_heads" => {
                let (kv_heads, head) = value.split_once('/').ok_or("swa_heads=KV_HEADS/HEAD_SIZE")?;
                m.swa_heads = Some((kv_heads.parse()?, head.parse()?));
            }
            "yarn" => {
                let (factor, original) = value.split_once('/').ok_or("yarn=FACTOR/ORIGINAL_CONTEXT")?;
                m.yarn = Some((factor.parse()?, original.parse()?));
            }
            "tied" => m.tied = value == "true",
            "k_as_v" => m.k_as_v = value == "true",
            "shared_kv_layers" => m.shared_kv_layers = number()?,
            "per_layer_width" => m.per_layer_width = number()?,
            "double_wide_shared_ffn" => m.double_wide_shared_ffn = value == "true",
            "rope_dims" => m.rope_dims = Some(number()?),
            "full_attention_interval" => m.full_attention_interval = number()?,
            "delta_net" => {
                let n: Vec<usize> = value.split('/').map(str::parse).collect::<Result<_, _>>()?;
                let [key_heads, value_heads, head, conv] = n[..] else {
                    return Err("delta_net=KEY_HEADS/VALUE_HEADS/HEAD/CONV".into());
                };
                m.delta_net = Some(DeltaShape { key_heads, value_heads, head, conv });
            }
            "experts" => {
                let (count, used) = value.split_once('/').ok_or("experts=COUNT/USED")?;
                m.experts = Some((count.parse()?, used.parse()?));
            }
            "weights" => {
                m.weights = GgmlType::parse_among(value, &hearth::quant::layout::SUPPORTED_TYPES, "weights")?;
            }
            other => return Err(format!("unknown key {other}").into()),
        }
    }
    std::fs::write(&out, m.to_gguf())?;
    eprintln!("wrote {out}: {m:?}");
    Ok(())
}
