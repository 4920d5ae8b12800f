//! Argument definitions (clap derive) and the dispatch to one file per subcommand.

mod bench;
mod chat;
mod devices;
mod generation_args;
mod info;
mod load;
mod logits;
mod perplexity;
mod pull;
mod quantize;
mod run;
mod serve;
mod tokenize;

use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand};
use hearth::Result;

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "Run open-weight language models on the GPU you already own (Vulkan, Metal, DX12, GL via wgpu)",
    after_help = "Quick start: `hearth run \"Tell me a story\"` fetches the default model (SmolLM2-135M-Instruct Q4_1) on first use.\nSet RUST_LOG=info for more detail."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text from a prompt, streamed to stdout
    Run(run::RunArgs),
    /// Chat in the terminal: the model's chat template, history kept across turns (/help inside)
    Chat(chat::ChatArgs),
    /// Serve the model over an OpenAI-compatible HTTP API (chat and text completions, streaming)
    #[command(after_help = "Point an OpenAI client at http://HOST:PORT/v1 (any key, or the --api-key one). \
Requests are answered one at a time in arrival order; GET /health counts them by stage.\n\
Ctrl-C or SIGTERM stops listening, finishes the answer in progress and turns away those waiting; \
a second one cancels the answer in progress too.")]
    Serve(serve::ServeArgs),
    /// Print a model's token ids for a text (like llama-tokenize)
    Tokenize(tokenize::TokenizeArgs),
    /// Print the logits after every position of a sequence of token ids, one JSON line each
    /// ({"pos", "id", "top": [[id, logit], ...]}), to compare with another engine
    Logits(logits::LogitsArgs),
    /// Show a model file's architecture, sizes, quant types and chat template
    Info(info::InfoArgs),
    /// List the GPU adapters wgpu can use
    Devices(devices::DevicesArgs),
    /// Measure perplexity on a text file with llama-perplexity's protocol
    Perplexity(perplexity::PerplexityArgs),
    /// Download a model into the cache: a known name, an https:// URL or hf:owner/repo/file.gguf
    Pull(pull::PullArgs),
    /// Measure prompt processing and generation speed (like llama-bench), against the adapter's
    /// own bandwidth; `hearth bench compare a.json b.json` compares result files
    Bench(bench::BenchArgs),
    /// Write a GGUF file with its weights in another type (q8_0, q4_k, q4_0, f16), like llama-quantize
    Quantize(quantize::QuantizeArgs),
}

/// Which model to use.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// A GGUF file, a Hugging Face folder (config.json, tokenizer.json, *.safetensors), a known
    /// model name (see `hearth pull --list`), an https:// URL or hf:owner/repo/file.gguf; the
    /// default model when omitted
    #[arg(short, long, env = "HEARTH_MODEL")]
    pub model: Option<String>,
    /// For a Hugging Face folder: the type its F32/F16/BF16 matrices are quantized to while
    /// loading: q8_0 (default; fast, near-lossless), q4_k, q4_0, f16 or f32
    #[arg(long, env = "HEARTH_QUANT")]
    pub quant: Option<String>,
}

/// Which GPU adapter to use.
#[derive(Args, Clone, Debug, Default)]
pub struct GpuArgs {
    /// Adapter index or a substring of its name (see `hearth devices`)
    #[arg(long, env = "HEARTH_DEVICE")]
    pub device: Option<String>,
    /// Graphics API: vulkan, metal, dx12 or gl
    #[arg(long, env = "HEARTH_BACKEND")]
    pub backend: Option<String>,
    /// Compute in f16 where the adapter can, CPU adapters included (slower there)
    #[arg(long, env = "HEARTH_F16", value_parser = FalseyValueParser::new(), conflicts_with = "no_f16")]
    pub f16: bool,
    /// Compute in f32 even where the adapter has f16 arithmetic
    #[arg(long, env = "HEARTH_NO_F16", value_parser = FalseyValueParser::new())]
    pub no_f16: bool,
    /// Reduce through workgroup memory even where the adapter has subgroup operations
    #[arg(long, env = "HEARTH_NO_SUBGROUPS", value_parser = FalseyValueParser::new())]
    pub no_subgroups: bool,
}

impl GpuArgs {
    pub fn choice(&self) -> hearth::gpu::AdapterChoice {
        hearth::gpu::AdapterChoice {
            device: self.device.clone(),
            backend: self.backend.clone(),
            f16: if self.no_f16 {
                Some(false)
            } else if self.f16 {
                Some(true)
            } else {
                None
            },
            no_subgroups: self.no_subgroups,
            ..hearth::gpu::AdapterChoice::from_env()
        }
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Tokenize(a) => tokenize::run(a),
        Command::Logits(a) => logits::run(a),
        Command::Info(a) => info::run(a),
        Command::Devices(a) => devices::run(a),
        Command::Perplexity(a) => perplexity::run(a),
        Command::Pull(a) => pull::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Quantize(a) => quantize::run(a),
    }
}

/// Installs the process's Ctrl-C (and SIGTERM) handler; chat and serve each own one.
fn on_ctrl_c(handler: impl FnMut() + Send + 'static) -> Result<()> {
    ctrlc::set_handler(handler).map_err(|e| hearth::Error::Input(format!("cannot catch Ctrl-C: {e}")))
}
