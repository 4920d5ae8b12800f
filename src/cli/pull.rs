//! `hearth pull`: fetch a model into the cache.

use clap::Args;
use hearth::Result;
use hearth::pull::{BarProgress, manifest, pull};

#[derive(Args)]
pub struct PullArgs {
    /// A known model name, an https:// URL, or hf:owner/repo/file.gguf[@revision]; the default model when omitted
    spec: Option<String>,
    /// List the known model names instead
    #[arg(long)]
    list: bool,
}

pub fn run(args: PullArgs) -> Result<()> {
    if args.list {
        let default = hearth::pull::default_model_name();
        for e in manifest()? {
            let mark = if e.name == default { " (default)" } else { "" };
            println!("{}{mark}\n    {}\n    aliases: {}", e.name, e.description, e.aliases.join(", "));
        }
        return Ok(());
    }
    let spec = args.spec.unwrap_or_else(|| hearth::pull::default_model_name().to_string());
    let path = pull(&spec, &BarProgress::new())?;
    println!("{}", path.display());
    Ok(())
}
