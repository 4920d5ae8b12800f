//! `hearth serve`: the model behind an OpenAI-compatible HTTP API.

use super::run::{SamplingArgs, context_size};
use super::{GpuArgs, ModelArgs};
use clap::Args;
use hearth::serve::{ServeOptions, serve};
use hearth::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// Address to listen on; anything but loopback exposes the model to the network
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port, printed at start)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Require this key as `Authorization: Bearer KEY` on /v1/ requests
    #[arg(long, env = "HEARTH_API_KEY")]
    api_key: Option<String>,
    /// Requests that may wait while one is answered; more get 503
    #[arg(long, default_value_t = 16)]
    queue: usize,
    /// Context size in tokens [default: 4096, or the model's own if smaller]
    #[arg(short, long)]
    ctx: Option<usize>,
    /// Longest answer when a request sets no max_tokens
    #[arg(short = 'n', long = "max-tokens", default_value_t = 512)]
    max_tokens: usize,
    /// Defaults for requests that do not set temperature, top_p or seed
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Prompt tokens processed per GPU step
    #[arg(long, default_value_t = 256)]
    batch: usize,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let sampling = args.sampling.config()?;
    if args.batch == 0 || args.max_tokens == 0 {
        return Err(Error::Input("--batch and --max-tokens must be at least 1".into()));
    }
    let model = super::load::load(&args.model, &args.gpu)?.model;
    let ctx = context_size(args.ctx, model.config.n_ctx_train)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .map_err(|e| Error::Input(format!("cannot catch Ctrl-C: {e}")))?;
    let options = ServeOptions {
        addr: format!("{}:{}", args.host, args.port),
        api_key: args.api_key,
        queue: args.queue,
        ctx,
        batch: args.batch,
        max_tokens: args.max_tokens,
        sampling,
    };
    serve(model, options, shutdown, |addr| eprintln!("listening on http://{addr} (OpenAI API under /v1)"))?;
    eprintln!("stopped");
    Ok(())
}
