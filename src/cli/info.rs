//! `hearth info`: what a model file holds, without touching the GPU.

use super::ModelArgs;
use clap::Args;
use hearth::Result;
use hearth::gpu::KvType;
use hearth::model::ModelConfig;
use hearth::model::gguf::Value;
use hearth::model::memory::{LayerMemory, cache_bytes};
use std::collections::BTreeMap;

#[derive(Args)]
pub struct InfoArgs {
    /// A GGUF file, Hugging Face folder or model name (the default model when omitted)
    model: Option<String>,
    /// For a Hugging Face folder: the type its matrices would load as (q8_0 by default)
    #[arg(long)]
    quant: Option<String>,
    /// Also list every metadata key and tensor
    #[arg(short, long)]
    verbose: bool,
}

pub fn run(args: InfoArgs) -> Result<()> {
    let (path, file) = super::load::open_file(&ModelArgs { model: args.model, quant: args.quant })?;
    let h = &file.header;
    let text = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    let format = if file.is_folder() { "Hugging Face folder".to_string() } else { format!("GGUF v{}", h.version) };
    println!("file:          {} ({:.1} MB, {format})", path.display(), file.len() as f64 / 1e6);
    println!("name:          {}", text("general.name"));
    println!("architecture:  {}", text("general.architecture"));
    match ModelConfig::from_gguf(h) {
        Ok(c) => {
            match &c.experts {
                None => println!("parameters:    {:.1} M", c.n_params() as f64 / 1e6),
                Some(x) => println!(
                    "parameters:    {:.1} M, {:.1} M active ({} of {} experts per token, expert feed-forward {})",
                    c.n_params() as f64 / 1e6,
                    c.n_active_params() as f64 / 1e6,
                    x.used,
                    x.count,
                    x.n_ff
                ),
            }
            println!(
                "layers {}, width {}, feed-forward {}, heads {} (kv {}), head size {}",
                c.n_layer, c.n_embd, c.n_ff, c.n_head, c.n_head_kv, c.head_dim
            );
            let swa = c.swa_geometry;
            if (0..c.n_layer).any(|l| c.is_sliding(l)) && (swa.n_head_kv, swa.head_dim) != (c.n_head_kv, c.head_dim) {
                println!(
                    "sliding-window layers: kv heads {}, head size {}, rope over {} dims",
                    swa.n_head_kv, swa.head_dim, swa.rope_dims
                );
            }
            if c.per_layer_width > 0 {
                println!("per-layer inputs: {} values per layer and token", c.per_layer_width);
            }
            println!(
                "context {}, vocabulary {}, rope base {} over {} dims, rms eps {:e}, {} embeddings",
                c.n_ctx_train,
                c.n_vocab,
                c.rope_base,
                c.rope_dims,
                c.rms_eps,
                if c.tied_embeddings { "tied" } else { "separate output" }
            );
            println!("memory:        {}", memory_summary(&c));
        }
        Err(e) => println!("runnable:      no ({e})"),
    }
    let mut types: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for t in &h.tensors {
        let e = types.entry(t.ty.to_string()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
    }
    let summary: Vec<String> =
        types.iter().map(|(ty, (n, bytes))| format!("{ty} ×{n} ({:.1} MB)", *bytes as f64 / 1e6)).collect();
    println!("tensors:       {} — {}", h.tensors.len(), summary.join(", "));
    println!(
        "tokenizer:     {} (pre: {}), {} tokens",
        text("tokenizer.ggml.model"),
        text("tokenizer.ggml.pre"),
        h.get("tokenizer.ggml.tokens").and_then(Value::as_array).map_or(0, |a| a.len())
    );
    match h.get("tokenizer.chat_template").and_then(Value::as_str) {
        Some(t) => {
            println!("chat template:");
            for line in t.lines() {
                println!("    {line}");
            }
        }
        None => println!("chat template: none (prompts are sent as they are)"),
    }
    if args.verbose {
        println!("\nmetadata:");
        for (k, v) in &h.metadata {
            println!("    {k} = {}", v.summary());
        }
        println!("\ntensors:");
        for t in &h.tensors {
            println!("    {:<40} {:<8} {:?} at {}", t.name, t.ty.to_string(), t.dims, t.offset);
        }
    }
    Ok(())
}

/// What the layers keep between tokens, and the KV cache it takes at the default context and
/// at the trained one (batches of 256, the default).
fn memory_summary(c: &ModelConfig) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for l in 0..c.n_layer {
        let kind = match c.layer_memory(l) {
            _ if c.kv_source(l).is_some() => "no cache (an earlier layer's is shared)".to_string(),
            LayerMemory::Keys => "every position".to_string(),
            LayerMemory::Window(w) => format!("a window of {w}"),
            LayerMemory::Recurrent(s) => format!(
                "a recurrent state ({} heads of {s}x{s} and {} inputs of a width-{} convolution)",
                s.value_heads,
                s.channels(),
                s.conv,
                s = s.head
            ),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let kinds: Vec<String> = kinds
        .iter()
        .map(|(kind, &n)| if n == 1 { format!("1 layer keeps {kind}") } else { format!("{n} layers keep {kind}") })
        .collect();
    let kv = KvType::default();
    let at = |ctx: usize| format!("{:.1} MB at {ctx} tokens", cache_bytes(c, kv, ctx, 256.min(ctx)) as f64 / 1e6);
    let (default_ctx, trained) = (c.n_ctx_train.clamp(1, 4096), c.n_ctx_train.max(1));
    let sizes = if trained > default_ctx { format!("{}, {}", at(default_ctx), at(trained)) } else { at(trained) };
    format!("{}; KV cache {sizes} in {} (--kv-type)", kinds.join(", "), kv.name())
}
