//! `hearth tokenize`: the ids a text becomes, printed like llama-tokenize.

use super::ModelArgs;
use clap::Args;
use hearth::Result;
use hearth::model::vocab;

#[derive(Args)]
pub struct TokenizeArgs {
    /// The text to tokenize
    text: String,
    #[command(flatten)]
    model: ModelArgs,
    /// Print only the ids, as a list: [504, 3575, ...]
    #[arg(long)]
    ids: bool,
    /// Do not add the BOS token even when the vocabulary asks for it
    #[arg(long)]
    no_bos: bool,
    /// Treat special-token texts such as <|im_start|> as plain text
    #[arg(long)]
    no_parse_special: bool,
}

pub fn run(args: TokenizeArgs) -> Result<()> {
    let (_, file) = super::load::open_file(&args.model)?;
    let tok = vocab::tokenizer(&file.header)?;
    let ids = tok.encode(&args.text, !args.no_bos, !args.no_parse_special)?;
    if args.ids {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        println!("[{}]", list.join(", "));
    } else {
        for id in ids {
            println!("{id:6} -> '{}'", String::from_utf8_lossy(&tok.token_piece(id)));
        }
    }
    Ok(())
}
