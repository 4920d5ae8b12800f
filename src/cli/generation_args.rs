//! The options the generating commands (run, chat, serve) share: how to sample, and how big
//! a session is.

use clap::Args;
use hearth::gpu::KvType;
use hearth::grammar::Grammar;
use hearth::model::state::SessionOptions;
use hearth::reasoning::Channel;
use hearth::sample::SamplerConfig;
use hearth::{Error, Result};

/// How generated reasoning is shown on the terminal.
#[derive(Args, Clone, Copy, Debug)]
pub struct ReasoningArgs {
    /// Leave out the model's reasoning (Qwen 3's <think> blocks, gpt-oss's analysis channel)
    /// and print only its answer; otherwise reasoning is shown dimmed before the answer
    #[arg(long)]
    hide_reasoning: bool,
}

/// Writes generated pieces to a terminal or pipe: reasoning dimmed (plain when not a
/// terminal) or left out, the answer as it is.
pub struct PieceWriter<W: std::io::Write> {
    out: W,
    hide_reasoning: bool,
    dim: bool,
    /// Whether the last text written was reasoning.
    in_reasoning: bool,
}

impl<W: std::io::Write> PieceWriter<W> {
    pub fn new(out: W, args: ReasoningArgs, is_terminal: bool) -> Self {
        PieceWriter { out, hide_reasoning: args.hide_reasoning, dim: is_terminal, in_reasoning: false }
    }

    /// Writes one piece; false once the output is gone (a closed pipe).
    pub fn write(&mut self, channel: Channel, text: &str) -> bool {
        if text.is_empty() || (channel == Channel::Reasoning && self.hide_reasoning) {
            return true;
        }
        let reasoning = channel == Channel::Reasoning;
        let mut written = String::new();
        if reasoning != self.in_reasoning {
            if self.dim {
                written.push_str(if reasoning { "\x1b[2m" } else { "\x1b[0m" });
            }
            if !reasoning {
                // The answer starts on a line of its own after the reasoning.
                written.push_str("\n\n");
            }
            self.in_reasoning = reasoning;
        }
        written.push_str(text);
        self.out.write_all(written.as_bytes()).and_then(|_| self.out.flush()).is_ok()
    }

    /// Ends the output: the terminal's colours back, and a newline.
    pub fn finish(&mut self) {
        if self.in_reasoning && self.dim {
            let _ = self.out.write_all(b"\x1b[0m");
        }
        let _ = writeln!(self.out);
        let _ = self.out.flush();
    }
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
    /// Lower the logit of every recently seen token by this (0: off; -2 to 2)
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    presence_penalty: f32,
    /// Lower the logit of recently seen tokens by this times their count (0: off; -2 to 2)
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    frequency_penalty: f32,
    /// How many recent tokens (prompt included) the penalties consider
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
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            repeat_last_n: self.repeat_last_n,
            seed,
        };
        config.check().map_err(|e| {
            Error::Input(format!(
                "{e} (--temp, --top-p, --min-p, --repeat-penalty, --presence-penalty, --frequency-penalty)"
            ))
        })?;
        Ok(config)
    }
}

/// Structured output: the answer held to a JSON schema or a grammar.
#[derive(Args, Clone, Debug)]
pub struct GrammarArgs {
    /// Answer with JSON valid under the JSON schema in FILE (`{}` for any JSON value)
    #[arg(long, value_name = "FILE", conflicts_with = "grammar")]
    json_schema: Option<std::path::PathBuf>,
    /// Answer in the grammar in FILE, in llguidance's Lark syntax (`start: "yes" | "no"`;
    /// `%json {...}` embeds a JSON schema)
    #[arg(long, value_name = "FILE")]
    grammar: Option<std::path::PathBuf>,
}

impl GrammarArgs {
    /// The grammar the files give, read and parsed (not yet compiled: that needs the model).
    pub fn grammar(&self) -> Result<Option<Grammar>> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|e| Error::Input(format!("cannot read {}: {e}", path.display())))
        };
        if let Some(path) = &self.json_schema {
            let schema = serde_json::from_str(&read(path)?)
                .map_err(|e| Error::Input(format!("{} is not JSON: {e}", path.display())))?;
            return Ok(Some(Grammar::JsonSchema(schema)));
        }
        self.grammar.as_deref().map(|path| read(path).map(Grammar::Lark)).transpose()
    }
}

/// A session's size: the context and the prompt tokens per GPU step.
#[derive(Args, Clone, Debug)]
pub struct SessionArgs {
    /// Context size in tokens [default: 4096, or the model's own if smaller]
    #[arg(short, long, value_parser = at_least_one)]
    ctx: Option<usize>,
    /// Prompt tokens processed per GPU step
    #[arg(long, default_value_t = 256, value_parser = at_least_one)]
    batch: usize,
    #[command(flatten)]
    kv: KvTypeArg,
}

/// The KV cache's type, for every command that runs a model.
#[derive(Args, Clone, Copy, Debug)]
pub struct KvTypeArg {
    /// How the KV cache stores keys and values: f16, q8_0 (53% of f16's memory, as llama.cpp's),
    /// q4_0 (28%) or f32 (exact, twice f16's)
    #[arg(long = "kv-type", default_value = "f16", value_parser = kv_type)]
    pub kv_type: KvType,
}

/// A `--kv-type` value.
pub fn kv_type(text: &str) -> std::result::Result<KvType, String> {
    KvType::parse(text).map_err(|e| e.to_string())
}

impl SessionArgs {
    /// The session for a model trained on `trained` tokens of context.
    pub fn options(&self, trained: usize) -> SessionOptions {
        let ctx = self.ctx.unwrap_or(trained.clamp(1, 4096));
        if ctx > trained {
            log::warn!(
                "--ctx {ctx} is beyond the {trained} tokens the model was trained on; expect poor output past that"
            );
        }
        SessionOptions { ctx, batch: self.batch.min(ctx), logit_rows: 1, kv: self.kv.kv_type }
    }
}

/// A count that must be 1 or more (--ctx, --batch, --max-tokens).
pub fn at_least_one(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Token ids given on the command line: "5 17 99" or "5,17,99".
#[derive(Clone, Debug)]
pub struct TokenIds(pub Vec<u32>);

impl std::str::FromStr for TokenIds {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<TokenIds, String> {
        let ids = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u32>().map_err(|e| format!("{s:?} is not a token id ({e})")))
            .collect::<std::result::Result<Vec<u32>, String>>()?;
        if ids.is_empty() {
            return Err("no token ids given".into());
        }
        Ok(TokenIds(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::TokenIds;

    #[test]
    fn token_ids_are_read_with_spaces_or_commas_and_refused_when_not_ids() {
        assert_eq!("5 17,99 ".parse::<TokenIds>().unwrap().0, [5, 17, 99]);
        assert!("5 x".parse::<TokenIds>().unwrap_err().contains("\"x\" is not a token id"));
        assert!("-1".parse::<TokenIds>().is_err());
        assert_eq!(" , ".parse::<TokenIds>().unwrap_err(), "no token ids given");
    }
}
