//! Hugging Face model folders — config.json, tokenizer.json, tokenizer_config.json and one or
//! many *.safetensors shards — read as if they were a GGUF file: a header built from the JSON
//! files (the metadata llama.cpp's converter would write), and tensors renamed, transformed and
//! quantized one at a time, when the weight loader asks for each.

pub mod config;
#[doc(hidden)]
pub mod export;
pub mod names;
pub mod shards;

use super::gguf::{GgufHeader, TensorInfo, Value};
use super::vocab;
use crate::quant::GgmlType;
use crate::quant::quantize::quantize;
use crate::tokenizer::hf_json;
use crate::{Error, Result};
use names::Transform;
use shards::Shard;
use std::collections::HashMap;
use std::path::Path;

/// The types a folder's matrices can be loaded as (`--quant`).
pub const LOAD_TYPES: [GgmlType; 5] = [GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Q4_0, GgmlType::F16, GgmlType::F32];

/// Values converted at a time when a tensor is read.
const CHUNK_VALUES: usize = 1 << 20;

/// Where a GGUF-named tensor comes from.
struct Source {
    shard: usize,
    info: safetensors::tensor::TensorInfo,
    transform: Transform,
}

pub struct HfFolder {
    shards: Vec<Shard>,
    sources: HashMap<String, Source>,
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    if path.exists() { read_text(path).map(Some) } else { Ok(None) }
}

/// The type a matrix with rows of `row` values is stored in: `quant` when its blocks fit,
/// else Q8_0, else F32.
fn matrix_type(quant: GgmlType, row: u64) -> GgmlType {
    [quant, GgmlType::Q8_0].into_iter().find(|t| row.is_multiple_of(t.block_elements())).unwrap_or(GgmlType::F32)
}

impl HfFolder {
    /// Reads the folder's JSON files and shard headers; no tensor data is read yet.
    pub fn open(dir: &Path, quant: GgmlType) -> Result<(GgufHeader, HfFolder)> {
        if !LOAD_TYPES.contains(&quant) {
            let names: Vec<&str> = LOAD_TYPES.iter().map(|t| t.name()).collect();
            return Err(Error::Input(format!("cannot load weights as {quant} (supported: {})", names.join(", "))));
        }
        let config = config::parse(&read_text(&dir.join("config.json"))?)?;
        let tokenizer = hf_json::read(
            &read_text(&dir.join("tokenizer.json"))?,
            read_optional(&dir.join("tokenizer_config.json"))?.as_deref(),
        )?;
        // Newer folders keep the chat template in a file of its own.
        let template = match read_optional(&dir.join("chat_template.jinja"))? {
            Some(t) => Some(t),
            None => tokenizer.chat_template,
        };
        let shards = shards::shard_paths(dir)?.iter().map(|p| Shard::open(p)).collect::<Result<Vec<_>>>()?;

        let mut metadata = config.metadata;
        metadata.push(("general.file_type".into(), Value::U32(super::requantize::file_type_of(quant))));
        metadata.extend(vocab::metadata(&tokenizer.spec, template.as_deref()));

        let mut places: Vec<(String, (usize, safetensors::tensor::TensorInfo))> =
            shards::tensor_places(&shards)?.into_iter().collect();
        places.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tensors = Vec::new();
        let mut sources = HashMap::new();
        for (hf_name, (shard, info)) in places {
            let Some((name, transform)) = names::map(&hf_name, config.arch, config.n_head, config.n_head_kv) else {
                log::debug!("{hf_name}: not used");
                continue;
            };
            if name == "output.weight" && config.tied_embeddings {
                continue;
            }
            shards::check_dtype(info.dtype).map_err(|e| Error::Unsupported(format!("{hf_name}: {e}")))?;
            let dims: Vec<u64> = info.shape.iter().rev().map(|&d| d as u64).collect();
            let ty = match dims.as_slice() {
                [row, _] => matrix_type(quant, *row),
                [_] => GgmlType::F32,
                _ => return Err(Error::Unsupported(format!("{hf_name} has shape {:?}", info.shape))),
            };
            let n_elements: u64 = dims.iter().product();
            let n_bytes = ty.bytes_for(n_elements).unwrap_or(u64::MAX);
            tensors.push(TensorInfo { name: name.clone(), dims, ty, offset: 0, n_bytes });
            if sources.insert(name.clone(), Source { shard, info, transform }).is_some() {
                return Err(Error::Folder(format!("two tensors map to {name}")));
            }
        }
        let header = GgufHeader { version: 3, metadata, tensors, alignment: 32, data_offset: 0 };
        Ok((header, HfFolder { shards, sources }))
    }

    /// A tensor's values in the type its header entry names: widened to f32, transformed to
    /// GGUF's conventions, then quantized.
    pub fn data(&self, info: &TensorInfo) -> Result<Vec<u8>> {
        let source = self
            .sources
            .get(&info.name)
            .ok_or_else(|| Error::Unsupported(format!("the model has no tensor named {:?}", info.name)))?;
        let bytes = self.shards[source.shard].data(&source.info);
        let dtype = source.info.dtype;
        let quantized =
            |values: &[f32]| quantize(info.ty, values).map_err(|e| Error::Unsupported(format!("{}: {e}", info.name)));
        if let Transform::RopeRows { heads } = source.transform {
            return quantized(&rope_rows(&shards::to_f32(dtype, bytes)?, &source.info.shape, heads)?);
        }
        // Whole rows at a time, so host memory holds the output and one chunk of f32 values,
        // not the whole tensor in f32 (Gemma's embedding alone would be 671 MB).
        let row = info.dims.first().copied().unwrap_or(1).max(1) as usize;
        let chunk_values = row * (CHUNK_VALUES / row).max(1);
        let mut out = Vec::with_capacity(usize::try_from(info.n_bytes).unwrap_or(0));
        for chunk in bytes.chunks(chunk_values * dtype.bitsize() / 8) {
            let mut values = shards::to_f32(dtype, chunk)?;
            if source.transform == Transform::PlusOne {
                values.iter_mut().for_each(|v| *v += 1.0);
            }
            out.extend(quantized(&values)?);
        }
        Ok(out)
    }

    /// The shard files, for fingerprinting the model.
    pub fn shard_bytes(&self) -> Vec<&[u8]> {
        self.shards.iter().map(Shard::bytes).collect()
    }
}

/// Q/K rows reordered within each head from rotate-half to interleaved pairs.
fn rope_rows(values: &[f32], shape: &[usize], heads: usize) -> Result<Vec<f32>> {
    let [rows, cols] = *shape else { return Err(Error::Unsupported(format!("a Q/K matrix of shape {shape:?}"))) };
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(Error::Unsupported(format!("{rows} Q/K rows do not split into {heads} heads of pairs")));
    }
    let mut out = vec![0.0; values.len()];
    for (r, row) in values.chunks_exact(cols).enumerate() {
        let to = names::rope_row(r, rows, heads);
        out[to * cols..][..cols].copy_from_slice(row);
    }
    Ok(out)
}
