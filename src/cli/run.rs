//! `hearth run`: generate from a prompt, streaming only the generated text to stdout.

use super::{GpuArgs, ModelArgs};
use clap::Args;
use hearth::generate::{Session, generate};
use hearth::model::state::SessionOptions;
use hearth::prompt::{encode_raw, encode_user_prompt};
use hearth::sample::{Sampler, SamplerConfig};
use hearth::tokenizer::StreamDecoder;
use hearth::{Error, Result};
use std::io::{Read, Write};

#[derive(Args)]
pub struct RunArgs {
    /// The prompt; read from stdin when omitted
    prompt: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// Generate at most this many tokens
    #[arg(short = 'n', long = "max-tokens", default_value_t = 256)]
    max_tokens: usize,
    /// Context size in tokens [default: 4096, or the model's own if smaller]
    #[arg(short, long)]
    ctx: Option<usize>,
    /// Send the prompt as it is, without the model's chat template
    #[arg(long)]
    raw: bool,
    /// A system prompt for the chat template
    #[arg(long, conflicts_with = "raw")]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Prompt tokens processed per GPU step
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Print the generated token ids (space-separated) instead of their text, to compare
    /// engines and adapters token by token
    #[arg(long)]
    ids: bool,
}

/// Sampling options, with llama.cpp's defaults.
#[derive(Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Temperature; 0 always picks the most likely token (greedy)
    #[arg(long = "temp", default_value_t = 0.8)]
    temperature: f32,
    /// Sample only from the k most likely tokens (0: all)
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Sample from the smallest set of tokens whose probabilities reach p (1: all)
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one (0: none)
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    /// Penalize recently seen tokens (1: off)
    #[arg(long, default_value_t = 1.0)]
    repeat_penalty: f32,
    /// How many recent tokens the repetition penalty considers
    #[arg(long, default_value_t = 64)]
    repeat_last_n: usize,
    /// Random seed, for reproducible sampling [default: random]
    #[arg(long)]
    seed: Option<u64>,
}

impl SamplingArgs {
    pub fn config(&self) -> Result<SamplerConfig> {
        let seed = self.seed.unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let seed = nanos as u64;
            log::info!("seed: {seed}");
            seed
        });
        let config = SamplerConfig {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed,
        };
        config.check().map_err(|e| Error::Input(format!("{e} (--temp, --top-p, --min-p, --repeat-penalty)")))?;
        Ok(config)
    }
}

fn read_prompt(arg: Option<String>) -> Result<String> {
    if let Some(p) = arg {
        return Ok(p);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Error::Input(format!("could not read the prompt from stdin: {e}")))?;
    Ok(text)
}

/// The context size: what the user asked for, or 4096 capped at the model's training length.
pub fn context_size(asked: Option<usize>, trained: usize) -> Result<usize> {
    match asked {
        Some(0) => Err(Error::Input("--ctx must be at least 1".into())),
        Some(c) => Ok(c),
        None => Ok(trained.clamp(1, 4096)),
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let sampler_config = args.sampling.config()?;
    let prompt = read_prompt(args.prompt)?;
    if args.batch == 0 {
        return Err(Error::Input("--batch must be at least 1".into()));
    }
    let loaded = super::load::load(&args.model, &args.gpu)?;
    let model = loaded.model;
    let ids = if args.raw || model.chat_template.is_none() {
        encode_raw(&model, &prompt)?
    } else {
        encode_user_prompt(&model, &prompt, args.system.as_deref())?
    };
    if ids.is_empty() {
        return Err(Error::Input("the prompt is empty".into()));
    }
    let ctx = context_size(args.ctx, model.config.n_ctx_train)?;
    if ctx > model.config.n_ctx_train {
        log::warn!(
            "--ctx {ctx} is beyond the {} tokens the model was trained on; expect poor output past that",
            model.config.n_ctx_train
        );
    }
    if ids.len() >= ctx {
        return Err(Error::Input(format!(
            "the prompt is {} tokens, which does not fit the context of {ctx} tokens (raise --ctx)",
            ids.len()
        )));
    }
    let options = SessionOptions { ctx, batch: args.batch.min(ctx), logit_rows: 1 };
    let mut session = Session::new(model.clone(), options)?;
    let mut decoder = StreamDecoder::new();
    let mut stdout = std::io::stdout().lock();
    let max_tokens = args.max_tokens.min(ctx - ids.len());
    let tok = &model.tokenizer;
    let mut separator = "";
    let stats = pollster::block_on(generate(
        &mut session,
        &ids,
        max_tokens,
        Sampler::new(sampler_config),
        |t| tok.is_eog(t),
        |id| {
            let text = if args.ids {
                format!("{}{id}", std::mem::replace(&mut separator, " "))
            } else {
                decoder.push(tok, id)
            };
            // A closed pipe (`| head`) ends generation quietly.
            stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()).is_ok()
        },
    ))?;
    if !args.ids {
        let _ = stdout.write_all(decoder.finish().as_bytes());
    }
    let _ = writeln!(stdout);
    eprintln!(
        "prompt: {} tokens, {:.1} t/s | generated: {} tokens, {:.1} t/s | load: {:.2} s | {}",
        stats.prompt_tokens,
        stats.prompt_tokens_per_second(),
        stats.generated,
        stats.decode_tokens_per_second(),
        loaded.seconds,
        model.gpu.info.name
    );
    Ok(())
}
