//! Writes the fuzz targets' seed inputs (fuzz/corpus/<target>/seed-*) from small real files:
//! a random-weight GGUF, that model written out as a Hugging Face folder, and its
//! tokenizer.json; and crafted GGUF files the reader must refuse or hold cheaply (an array
//! running to the end of the file, tensors sharing bytes). Run from the repository root:
//! `cargo run --example fuzz_seeds`.

use hearth::model::ModelFile;
use hearth::model::hf::export::write_folder;
use hearth::model::testing::{TinyLlama, gguf_array_to_end, gguf_overlapping_tensors};
use hearth::quant::GgmlType;
use safetensors::Dtype;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let corpus = Path::new("fuzz/corpus");
    let tiny = TinyLlama { n_layer: 1, n_embd: 32, n_ff: 32, n_head: 2, n_head_kv: 1, ..TinyLlama::default() };
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    for (name, weights) in [("q4_1", GgmlType::Q4_1), ("q4_k", GgmlType::Q4K), ("q6_k", GgmlType::Q6K)] {
        seeds.push(("gguf", format!("seed-tiny-{name}"), TinyLlama { weights, ..tiny.clone() }.to_gguf()));
    }
    seeds.push(("gguf", "seed-crafted-array-to-end".into(), gguf_array_to_end(4096)));
    seeds.push(("gguf", "seed-crafted-overlapping-tensors".into(), gguf_overlapping_tensors()));

    let folder = std::env::temp_dir().join(format!("hearth-seeds-{}", std::process::id()));
    let gguf = ModelFile::from_bytes(tiny.to_gguf())?;
    for (name, dtype) in [("f32", Dtype::F32), ("bf16", Dtype::BF16), ("f16", Dtype::F16)] {
        write_folder(&gguf, &folder, dtype, 1)?;
        let read = |f: &str| std::fs::read(folder.join(f));
        let mut parts = read("config.json")?;
        parts.push(0xff);
        parts.extend(read("model.safetensors.index.json")?);
        parts.push(0xff);
        parts.extend(read("model-00001-of-00001.safetensors")?);
        seeds.push(("hf_folder", format!("seed-tiny-{name}"), parts));
    }
    let mut tokenizer = std::fs::read(folder.join("tokenizer.json"))?;
    tokenizer.push(0);
    tokenizer.extend(std::fs::read(folder.join("tokenizer_config.json"))?);
    seeds.push(("tokenizer", "seed-tiny-smollm".into(), tokenizer));
    std::fs::remove_dir_all(&folder)?;

    for (target, name, bytes) in seeds {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        println!("{target}/{name}: {} bytes", bytes.len());
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}
