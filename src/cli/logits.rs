//! `hearth logits`: the logits after every position of a sequence of token ids, one JSON object
//! per line, to compare engines (llama.cpp's outputs on the same file) without a tokenizer.

use super::generation_args::TokenIds;
use super::{GpuArgs, ModelArgs};
use clap::Args;
use hearth::Result;
use hearth::generate::Session;
use hearth::model::state::SessionOptions;
use std::io::Write;

/// Logit rows read back per GPU step: enough to keep steps full, few enough that a 262k
/// vocabulary's rows stay small (64 MB).
const LOGIT_ROWS: usize = 64;

#[derive(Args)]
pub struct LogitsArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// The sequence, as token ids separated by spaces or commas ("5 17 99"): no tokenizer is
    /// involved, so any GGUF works, placeholder vocabularies included
    #[arg(long)]
    ids: TokenIds,
    /// How many of the largest logits to print per position, largest first (0: all of them)
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Prompt tokens processed per GPU step
    #[arg(long, default_value_t = 256, value_parser = super::generation_args::at_least_one)]
    batch: usize,
}

pub fn run(args: LogitsArgs) -> Result<()> {
    let ids = args.ids.0;
    let loaded = super::load::load(&args.model, &args.gpu)?;
    let model = loaded.model;
    let vocab = model.config.n_vocab;
    let batch = args.batch.min(ids.len());
    let options = SessionOptions { ctx: ids.len(), batch, logit_rows: batch.min(LOGIT_ROWS), kv: Default::default() };
    let mut session = Session::new(model, options)?;
    let logits = pollster::block_on(session.logits_from(&ids, 0))?;
    let mut stdout = std::io::stdout().lock();
    for (pos, (&id, row)) in ids.iter().zip(logits.chunks(vocab)).enumerate() {
        let line = Line { pos, id, top: largest(row, args.top) };
        let text = serde_json::to_string(&line).map_err(|e| hearth::Error::Input(format!("logits to JSON: {e}")))?;
        // A closed pipe (`| head`) ends the output quietly.
        if writeln!(stdout, "{text}").is_err() {
            break;
        }
    }
    Ok(())
}

/// One position's line: its token and the largest logits after it.
#[derive(serde::Serialize)]
struct Line {
    pos: usize,
    id: u32,
    top: Vec<(u32, f32)>,
}

/// The `n` largest logits (all when 0) as (id, logit), largest first, ties by id.
fn largest(row: &[f32], n: usize) -> Vec<(u32, f32)> {
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let mut all: Vec<(u32, f32)> = row.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
    // Only the n largest are sorted: a 262k vocabulary, every position.
    if n > 0 && n < all.len() {
        all.select_nth_unstable_by(n - 1, order);
        all.truncate(n);
    }
    all.sort_by(order);
    all
}

#[cfg(test)]
mod tests {
    use super::largest;

    #[test]
    fn the_largest_logits_come_first_ties_by_id() {
        let row = [0.5, 2.0, -1.0, 2.0, 1.0];
        assert_eq!(largest(&row, 3), [(1, 2.0), (3, 2.0), (4, 1.0)]);
        assert_eq!(largest(&row, 0).len(), 5);
        assert_eq!(largest(&row, 9).len(), 5);
    }
}
