//! `hearth run`: generate from a prompt, streaming only the generated text to stdout
//! (reasoning dimmed, or left out with --hide-reasoning).

use super::generation_args::{GrammarArgs, PieceWriter, ReasoningArgs, SamplingArgs, SessionArgs, TokenIds};
use super::{GpuArgs, ModelArgs};
use clap::Args;
use hearth::generate::{Generation, Session, generate_text, room_after};
use hearth::prompt::{encode_raw, encode_user_prompt};
use hearth::sample::Sampler;
use hearth::{Error, Result};
use std::io::{IsTerminal, Read, Write};

#[derive(Args)]
pub struct RunArgs {
    /// The prompt; read from stdin when omitted
    #[arg(conflicts_with = "prompt_ids")]
    prompt: Option<String>,
    /// The prompt as token ids ("5 17 99"), fed as they are: no tokenizer, no chat template
    #[arg(long, conflicts_with_all = ["raw", "system"])]
    prompt_ids: Option<TokenIds>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// Generate at most this many tokens
    #[arg(short = 'n', long = "max-tokens", default_value_t = 256)]
    max_tokens: usize,
    /// Send the prompt as it is, without the model's chat template
    #[arg(long)]
    raw: bool,
    /// A system prompt for the chat template
    #[arg(long, conflicts_with = "raw")]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    reasoning: ReasoningArgs,
    #[command(flatten)]
    grammar: GrammarArgs,
    /// Print the generated token ids (space-separated) instead of their text, to compare
    /// engines and adapters token by token
    #[arg(long)]
    ids: bool,
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

pub fn run(args: RunArgs) -> Result<()> {
    let sampler_config = args.sampling.config()?;
    let grammar = args.grammar.grammar()?;
    let prompt = match args.prompt_ids {
        Some(_) => None,
        None => Some(read_prompt(args.prompt)?),
    };
    let loaded = super::load::load(&args.model, &args.gpu)?;
    let model = loaded.model;
    let ids = match (args.prompt_ids, prompt) {
        (Some(ids), _) => ids.0,
        (None, Some(prompt)) if args.raw || model.chat_template.is_none() => encode_raw(&model, &prompt)?,
        (None, Some(prompt)) => encode_user_prompt(&model, &prompt, args.system.as_deref())?,
        (None, None) => return Err(Error::Input("no prompt given".into())),
    };
    let options = args.session.options(model.config.n_ctx_train);
    let room = room_after(&ids, options.ctx, "raise --ctx")?;
    let mut session = Session::new(model.clone(), options)?;
    let max_tokens = args.max_tokens.min(room);
    let mut generation = Generation::new(&ids, 0, max_tokens, Sampler::new(sampler_config))?;
    if let Some(grammar) = &grammar {
        generation.constrain(model.constraint(grammar)?);
    }
    if args.ids {
        let mut stdout = std::io::stdout().lock();
        let tok = &model.tokenizer;
        let mut separator = "";
        while let Some(id) = pollster::block_on(generation.next(&mut session, |t| tok.is_eog(t)))? {
            let text = format!("{}{id}", std::mem::replace(&mut separator, " "));
            // A closed pipe (`| head`) ends generation quietly.
            if stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()).is_err() {
                generation.cancel();
            }
        }
        let _ = writeln!(stdout);
    } else {
        let stdout = std::io::stdout();
        let terminal = stdout.is_terminal();
        let mut out = PieceWriter::new(stdout.lock(), args.reasoning, terminal);
        pollster::block_on(generate_text(&mut session, &mut generation, |piece| out.write(piece.channel, piece.text)))?;
        out.finish();
    }
    let stats = generation.stats();
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
