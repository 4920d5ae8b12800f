//! `hearth serve`: the model behind an OpenAI-compatible HTTP API.

use super::generation_args::{SamplingArgs, SessionArgs, at_least_one};
use super::{GpuArgs, ModelArgs};
use clap::Args;
use hearth::Result;
use hearth::serve::{ServeOptions, Shutdown, serve};
use std::sync::Arc;

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
    /// Let web pages from this origin (e.g. https://chat.example.org) call the server from a
    /// browser; repeatable, `*` for any. Pages on localhost are always allowed, others get 403
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// Requests that may wait while others are answered; more get 503
    #[arg(long, default_value_t = 16)]
    queue: usize,
    /// Requests answered at once, decoded together in one GPU step per token; each has its own
    /// KV cache of --ctx tokens, so the cache takes N times the memory
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least_one)]
    parallel: usize,
    /// Connections open at once; more wait until one closes
    #[arg(long, default_value_t = 256, value_parser = at_least_one)]
    max_connections: usize,
    /// Seconds a connection may stay idle, or take to send a request's headers or body, before
    /// it is closed (a stalled body gets 408)
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = at_least_one)]
    timeout: usize,
    /// Longest answer when a request sets no max_tokens
    #[arg(short = 'n', long = "max-tokens", default_value_t = 512, value_parser = at_least_one)]
    max_tokens: usize,
    /// Tokenize chat message contents as plain text: control-token text a client writes in a
    /// message (e.g. `<|im_start|>`) stays text, so it cannot forge a turn; only the chat
    /// template's own markup becomes control tokens. Off by default, as in llama-server: there
    /// such text in a message becomes the control token it spells
    #[arg(long)]
    plain_content: bool,
    /// When a request's messages no longer fit --ctx and its oldest are dropped, move the
    /// cached later ones back instead of processing them again: quicker, but those keep a
    /// trace of what was dropped (as llama.cpp's --context-shift). Not for models with
    /// sliding-window or recurrent layers
    #[arg(long)]
    context_shift: bool,
    /// Serve a built page (the folder web/build.sh writes, web/dist) at `/`, so a browser
    /// opening this server gets the chat page
    #[arg(long, value_name = "DIR")]
    web: Option<std::path::PathBuf>,
    /// Defaults for requests that do not set temperature, top_p, seed or the penalties
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    session: SessionArgs,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let sampling = args.sampling.config()?;
    if let Some(dir) = args.web.as_ref().filter(|dir| !dir.join("index.html").is_file()) {
        return Err(hearth::Error::Input(format!(
            "--web {}: no index.html there; give the folder web/build.sh writes (web/dist)",
            dir.display()
        )));
    }
    let model = super::load::load(&args.model, &args.gpu)?.model;
    let session = args.session.options(model.config.n_ctx_train);
    let shutdown = Arc::new(Shutdown::default());
    let asked = shutdown.clone();
    super::on_ctrl_c(move || match asked.request() {
        1 => eprintln!("stopping: finishing the answer in progress (Ctrl-C again cancels it)"),
        _ => eprintln!("stopping: cancelling the answer in progress"),
    })?;
    let options = ServeOptions {
        addr: format!("{}:{}", args.host, args.port),
        api_key: args.api_key,
        allowed_origins: args.allow_origins,
        queue: args.queue,
        parallel: args.parallel,
        session,
        max_tokens: args.max_tokens,
        plain_content: args.plain_content,
        context_shift: args.context_shift,
        web: args.web,
        max_connections: args.max_connections,
        timeout: std::time::Duration::from_secs(args.timeout as u64),
        sampling,
    };
    serve(model, options, shutdown, |addr| eprintln!("listening on http://{addr} (OpenAI API under /v1)"))?;
    eprintln!("stopped");
    Ok(())
}
