//! A GGUF model written out as a Hugging Face folder — config.json, tokenizer.json,
//! tokenizer_config.json and float safetensors shards with an index — undoing every change
//! `HfFolder` makes on the way in. Tests compare the two paths with it; fuzzing seeds come
//! from it.

use super::names::{self, Transform};
use crate::model::config::ModelConfig;
use crate::model::file::ModelFile;
use crate::model::vocab;
use crate::quant::dequantize;
use crate::tokenizer::hf_json;
use crate::{Error, Result};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use std::path::Path;

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

fn model_type(arch: &str) -> &str {
    if arch == "gemma3" { "gemma3_text" } else { arch }
}

/// Writes `file` into `dir` (created if missing) with its weights as `dtype` (F32, F16 or
/// BF16) in `shards` files.
pub fn write_folder(file: &ModelFile, dir: &Path, dtype: Dtype, shards: usize) -> Result<()> {
    let c = ModelConfig::from_gguf(&file.header)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let config = serde_json::json!({
        "_name_or_path": c.name,
        "model_type": model_type(&c.arch),
        "hidden_size": c.n_embd,
        "intermediate_size": c.n_ff,
        "num_hidden_layers": c.n_layer,
        "num_attention_heads": c.n_head,
        "num_key_value_heads": c.n_head_kv,
        "head_dim": c.head_dim,
        "vocab_size": c.n_vocab,
        "rope_theta": c.rope_base,
        "rms_norm_eps": c.rms_eps,
        "max_position_embeddings": c.n_ctx_train,
        "tie_word_embeddings": c.tied_embeddings,
        "sliding_window": c.sliding_window,
        "rope_local_base_freq": c.rope_base_swa,
    });
    let spec = vocab::vocab_spec(&file.header)?;
    let template = file.header.get("tokenizer.chat_template").and_then(|v| v.as_str());
    let (tokenizer, tokenizer_config) = hf_json::write(&spec, template)?;
    for (name, text) in [
        ("config.json", config.to_string()),
        ("tokenizer.json", tokenizer),
        ("tokenizer_config.json", tokenizer_config),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
    }

    let tensors = &file.header.tensors;
    let per_shard = tensors.len().div_ceil(shards.max(1)).max(1);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in tensors.chunks(per_shard).enumerate() {
        let shard_name = format!("model-{:05}-of-{:05}.safetensors", i + 1, tensors.len().div_ceil(per_shard));
        let mut named = Vec::with_capacity(chunk.len());
        for t in chunk {
            let hf = names::hf_name(&t.name, &c.arch)
                .ok_or_else(|| Error::Unsupported(format!("no Hugging Face name for {}", t.name)))?;
            let (_, transform) =
                names::map(&hf, &c.arch, c.n_head, c.n_head_kv).unwrap_or((String::new(), Transform::None));
            let mut shape: Vec<usize> = t.dims.iter().rev().map(|&d| d as usize).collect();
            while shape.len() > 1 && shape[0] == 1 {
                shape.remove(0);
            }
            let values = undo(transform, dequantize(t.ty, &file.data(t)?)?, &shape);
            named.push((hf.clone(), shape, encode(dtype, &values)?));
            weight_map.insert(hf, shard_name.clone().into());
        }
        let views = named
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::Folder(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let path = dir.join(&shard_name);
        safetensors::serialize_to_file(views, None, &path)
            .map_err(|e| Error::Folder(format!("{}: {e}", path.display())))?;
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    let path = dir.join("model.safetensors.index.json");
    std::fs::write(&path, index.to_string()).map_err(io(&path))
}

/// The values as Hugging Face stores them.
fn undo(transform: Transform, mut values: Vec<f32>, shape: &[usize]) -> Vec<f32> {
    match (transform, shape) {
        (Transform::None, _) => values,
        (Transform::PlusOne, _) => {
            values.iter_mut().for_each(|v| *v -= 1.0);
            values
        }
        (Transform::RopeRows { heads }, &[rows, cols]) => {
            let mut out = vec![0.0; values.len()];
            for r in 0..rows {
                let from = names::rope_row(r, rows, heads);
                out[r * cols..][..cols].copy_from_slice(&values[from * cols..][..cols]);
            }
            out
        }
        (Transform::RopeRows { .. }, _) => values,
    }
}

fn encode(dtype: Dtype, values: &[f32]) -> Result<Vec<u8>> {
    Ok(match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
        Dtype::BF16 => values.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
        other => return Err(Error::Unsupported(format!("writing safetensors of dtype {other:?}"))),
    })
}
