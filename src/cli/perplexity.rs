//! `hearth perplexity`: llama-perplexity's measurement, so the figures compare.

use super::generation_args::KvTypeArg;
use super::{GpuArgs, ModelArgs};
use clap::Args;
use hearth::generate::Session;
use hearth::model::state::SessionOptions;
use hearth::perplexity::perplexity;
use hearth::{Error, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// The text file to score
    #[arg(short, long)]
    file: PathBuf,
    /// Tokens per chunk; each chunk is scored on its second half
    #[arg(short, long, default_value_t = 512)]
    ctx: usize,
    /// Score at most this many chunks
    #[arg(long)]
    chunks: Option<usize>,
    #[command(flatten)]
    kv: KvTypeArg,
}

pub fn run(args: PerplexityArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file).map_err(|source| Error::Io { path: args.file.clone(), source })?;
    let loaded = super::load::load(&args.model, &args.gpu)?;
    let model = loaded.model;
    let tokens = model.tokenizer.encode(&text, true, false)?;
    let bos = if model.tokenizer.add_bos() { model.tokenizer.bos_id() } else { None };
    let n_ctx = args.ctx;
    let options = SessionOptions { ctx: n_ctx, batch: n_ctx, logit_rows: n_ctx - n_ctx / 2, kv: args.kv.kv_type };
    let mut session = Session::new(model.clone(), options)?;
    eprintln!("{} tokens, {} chunks of {n_ctx}", tokens.len(), tokens.len() / n_ctx.max(1));
    let started = std::time::Instant::now();
    let mut stdout = std::io::stdout();
    let result = pollster::block_on(perplexity(&mut session, &tokens, n_ctx, bos, args.chunks, |i, ppl| {
        let _ = write!(stdout, "[{}]{ppl:.4},", i + 1);
        let _ = stdout.flush();
    }))?;
    println!("\nFinal estimate: PPL = {:.4} +/- {:.5}", result.ppl, result.uncertainty);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} chunks in {seconds:.1} s ({:.1} tokens/s) on {}",
        result.running.len(),
        (result.running.len() * n_ctx) as f64 / seconds,
        model.gpu.info.name
    );
    Ok(())
}
