//! `hearth chat`: an interactive conversation in the terminal, through the model's chat
//! template, with the KV cache kept between turns so each turn processes only its new tokens.

use super::generation_args::{PieceWriter, ReasoningArgs, SamplingArgs, SessionArgs, at_least_one};
use super::{GpuArgs, ModelArgs};
use clap::Args;
use hearth::conversation::Conversation;
use hearth::generate::{Generation, Session, generate_text};
use hearth::reasoning::Channel;
use hearth::sample::{Sampler, SamplerConfig};
use hearth::{Error, Result};
use std::io::{BufRead, IsTerminal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Args)]
pub struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// A system prompt (change it during the chat with /system TEXT)
    #[arg(long)]
    system: Option<String>,
    /// Longest answer, in tokens
    #[arg(short = 'n', long = "max-tokens", default_value_t = 1024, value_parser = at_least_one)]
    max_tokens: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    session: SessionArgs,
    #[command(flatten)]
    reasoning: ReasoningArgs,
    /// When the chat outgrows --ctx and its oldest messages are dropped, move the cached later
    /// ones back instead of processing them again: instant, but those keep a trace of what was
    /// dropped, so answers differ a little from a fresh start's (as llama.cpp's
    /// --context-shift). Models with sliding-window or recurrent layers process them again
    #[arg(long)]
    context_shift: bool,
}

const HELP: &str = "/reset  forget the conversation (the system prompt stays)\n\
/system TEXT  set the system prompt\n\
/save FILE  write the conversation as JSON\n\
/exit  leave (also Ctrl-D); Ctrl-C stops an answer";

/// Lines typed at a terminal (with editing and history) or read from a pipe.
enum Input {
    Terminal(rustyline::DefaultEditor),
    Piped(std::io::StdinLock<'static>),
}

impl Input {
    fn open() -> Result<Input> {
        if !std::io::stdin().is_terminal() {
            return Ok(Input::Piped(std::io::stdin().lock()));
        }
        rustyline::DefaultEditor::new()
            .map(Input::Terminal)
            .map_err(|e| Error::Input(format!("cannot read from the terminal: {e}")))
    }

    /// The next line, or None at the end of input.
    fn line(&mut self) -> Result<Option<String>> {
        match self {
            Input::Terminal(editor) => loop {
                match editor.readline("> ") {
                    Ok(line) => {
                        let _ = editor.add_history_entry(line.as_str());
                        return Ok(Some(line));
                    }
                    Err(rustyline::error::ReadlineError::Interrupted) => eprintln!("(Ctrl-D or /exit to leave)"),
                    Err(rustyline::error::ReadlineError::Eof) => return Ok(None),
                    Err(e) => return Err(Error::Input(format!("cannot read from the terminal: {e}"))),
                }
            },
            Input::Piped(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) => Ok(None),
                    Ok(_) => Ok(Some(line.trim_end_matches(['\n', '\r']).to_string())),
                    Err(e) => Err(Error::Input(format!("cannot read stdin: {e}"))),
                }
            }
        }
    }
}

struct Chat {
    session: Session,
    conversation: Conversation,
    sampler: SamplerConfig,
    max_tokens: usize,
    reasoning: ReasoningArgs,
    /// Set by Ctrl-C while an answer streams.
    interrupted: Arc<AtomicBool>,
}

impl Chat {
    /// One user message: the answer streamed to stdout (after its reasoning, dimmed) and kept
    /// in the conversation (without the reasoning, as chat templates want it).
    fn turn(&mut self, text: &str) -> Result<()> {
        let ctx = self.session.options().ctx;
        let room = self.max_tokens.min(ctx / 2).max(1);
        let prompt = self.conversation.ask(&self.session.model, text, ctx, room)?;
        let cached = self.session.reuse_prefix(&prompt.ids);
        if prompt.dropped > 0 {
            eprintln!(
                "(the context is full: the oldest {} messages were dropped; {cached} of the {} tokens left came from the cache)",
                prompt.dropped,
                prompt.ids.len()
            );
        }
        let max = self.max_tokens.min(ctx - prompt.ids.len());
        let mut generation = Generation::new(&prompt.ids, cached, max, Sampler::new(self.sampler.clone()))?;
        self.interrupted.store(false, Ordering::SeqCst);
        let mut answer = String::new();
        let stdout = std::io::stdout();
        let terminal = stdout.is_terminal();
        let mut out = PieceWriter::new(stdout.lock(), self.reasoning, terminal);
        let interrupted = &self.interrupted;
        let result = pollster::block_on(generate_text(&mut self.session, &mut generation, |piece| {
            if piece.channel == Channel::Answer {
                answer.push_str(piece.text);
            }
            out.write(piece.channel, piece.text);
            !interrupted.load(Ordering::SeqCst)
        }));
        out.finish();
        // Even a stopped or failed answer stays, as the user saw it.
        self.conversation.answer(&answer);
        if self.interrupted.load(Ordering::SeqCst) {
            eprintln!("(stopped)");
        }
        result
    }

    /// A /command; false to leave.
    fn command(&mut self, line: &str) -> bool {
        let (name, arg) = line.split_once(' ').map_or((line, ""), |(n, a)| (n, a.trim()));
        match name {
            "/exit" | "/quit" => return false,
            "/reset" => {
                self.conversation.reset();
                self.session.reset();
                eprintln!("(conversation cleared)");
            }
            "/system" => {
                self.conversation.system = (!arg.is_empty()).then(|| arg.to_string());
                eprintln!("(system prompt {})", if arg.is_empty() { "removed" } else { "set" });
            }
            "/save" if !arg.is_empty() => match std::fs::write(arg, self.conversation.to_json()) {
                Ok(()) => eprintln!("(saved to {arg})"),
                Err(e) => eprintln!("error: cannot write {arg}: {e}"),
            },
            _ => eprintln!("{HELP}"),
        }
        true
    }
}

pub fn run(args: ChatArgs) -> Result<()> {
    let sampler = args.sampling.config()?;
    let model = super::load::load(&args.model, &args.gpu)?.model;
    if model.chat_template.is_none() {
        eprintln!("warning: the model has no chat template; each message is sent on its own, without history");
    }
    let options = args.session.options(model.config.n_ctx_train);
    let ctx = options.ctx;
    let mut session = Session::new(model.clone(), options)?;
    if !session.allow_cache_moves(args.context_shift) && args.context_shift {
        eprintln!(
            "warning: --context-shift: this model's sliding-window or recurrent layers cannot move their memory; \
             messages kept after dropped ones are processed again"
        );
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    super::on_ctrl_c(move || flag.store(true, Ordering::SeqCst))?;
    let mut chat = Chat {
        session,
        conversation: Conversation::new(args.system),
        sampler,
        max_tokens: args.max_tokens,
        reasoning: args.reasoning,
        interrupted,
    };
    let mut input = Input::open()?;
    if matches!(input, Input::Terminal(_)) {
        eprintln!(
            "chatting with {} ({ctx} tokens of context); /help for commands",
            chat.session.model.config.name.as_deref().unwrap_or("the model")
        );
    }
    while let Some(line) = input.line()? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('/') {
            if !chat.command(line) {
                break;
            }
            continue;
        }
        // A failed turn (too long, say) is reported and the chat goes on.
        if let Err(e) = chat.turn(line) {
            eprintln!("error: {e}");
        }
    }
    Ok(())
}
