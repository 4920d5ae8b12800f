//! `hearth quantize`: writes a GGUF file with its weights in another type (like llama-quantize).

use super::ModelArgs;
use clap::Args;
use hearth::model::ModelFile;
use hearth::model::requantize::requantize;
use hearth::pull::{BarProgress, Progress};
use hearth::quant::GgmlType;
use hearth::quant::quantize::QUANTIZE_TYPES;
use hearth::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
pub struct QuantizeArgs {
    /// The model to read: a GGUF file, a Hugging Face folder or a known model name
    input: String,
    /// Where to write the new GGUF file
    output: PathBuf,
    /// The weights' new type: q8_0 (near-lossless), q4_k, q4_0 or f16
    #[arg(short, long, default_value = "q8_0")]
    r#type: String,
}

pub fn run(args: QuantizeArgs) -> Result<()> {
    let ty = GgmlType::parse_among(&args.r#type, &QUANTIZE_TYPES, "--type")?;
    let input = super::load::model_path(&ModelArgs { model: Some(args.input.clone()), quant: None })?;
    // A folder's tensors are quantized straight to the target type as they are read.
    let file = ModelFile::open_as(&input, input.is_dir().then_some(ty))?;
    if args.output.canonicalize().ok() == input.canonicalize().ok() {
        return Err(Error::Input(format!("{} is the input file; write the output elsewhere", args.output.display())));
    }
    let progress = BarProgress::new();
    let total = file.header.tensors.iter().map(|t| t.n_bytes).sum();
    progress.start(&format!("quantizing to {ty}"), Some(total));
    let (bytes, report) = requantize(&file, ty, |done, _| progress.advance(done))?;
    progress.finish(&format!("quantized to {ty}"));
    // Written beside the output first, so a failure never leaves half a file under its name.
    let part = args.output.with_extension("gguf.part");
    std::fs::write(&part, &bytes).map_err(|source| Error::Io { path: part.clone(), source })?;
    std::fs::rename(&part, &args.output).map_err(|source| Error::Io { path: args.output.clone(), source })?;
    if !report.fallback.is_empty() {
        eprintln!(
            "{} matrices have rows that are not whole {ty} blocks and were written as Q8_0 (e.g. {})",
            report.fallback.len(),
            report.fallback[0]
        );
    }
    eprintln!(
        "wrote {} ({:.1} MB): {} tensors converted, {} copied as they were",
        args.output.display(),
        bytes.len() as f64 / 1e6,
        report.converted,
        report.copied
    );
    Ok(())
}
