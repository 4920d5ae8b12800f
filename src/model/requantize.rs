//! A GGUF file's weights re-encoded in another type (`hearth quantize`): every matrix is
//! dequantized and quantized again, vectors (norms, biases) and matrices already of the
//! target type are copied unchanged, metadata carries over.

use super::file::ModelFile;
use super::gguf::Value;
use super::gguf_writer::GgufWriter;
use crate::quant::GgmlType;
use crate::quant::dequantize;
use crate::quant::quantize::{QUANTIZE_TYPES, quantize};
use crate::{Error, Result};

/// What became of each tensor, for the summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RequantizeReport {
    pub converted: usize,
    pub copied: usize,
    /// Matrices whose rows are not whole blocks of the target type, written as Q8_0 instead.
    pub fallback: Vec<String>,
}

/// llama.cpp's `general.file_type` for a file mostly of `ty`.
pub(crate) fn file_type_of(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q8_0 => 7,
        GgmlType::Q4K => 14,
        _ => 0,
    }
}

/// The GGUF bytes of `file` with its matrices in `ty`; `on_tensor(bytes_done, bytes_total)` (of
/// the input's tensor data) after each tensor.
pub fn requantize(
    file: &ModelFile,
    ty: GgmlType,
    mut on_tensor: impl FnMut(u64, u64),
) -> Result<(Vec<u8>, RequantizeReport)> {
    if !QUANTIZE_TYPES.contains(&ty) {
        let names: Vec<&str> = QUANTIZE_TYPES.iter().map(|t| t.name()).collect();
        return Err(Error::Input(format!("cannot quantize to {ty} (supported: {})", names.join(", "))));
    }
    let mut w = GgufWriter::new();
    for (key, value) in &file.header.metadata {
        // The writer lays tensors out with its own alignment; the file type is set below.
        if key != "general.alignment" && key != "general.file_type" {
            w.meta(key, value.clone());
        }
    }
    w.meta("general.file_type", Value::U32(file_type_of(ty)));
    let mut report = RequantizeReport::default();
    let total: u64 = file.header.tensors.iter().map(|t| t.n_bytes).sum();
    let mut done = 0;
    for t in &file.header.tensors {
        let bytes = file.data(t)?;
        let row = t.dims.first().copied().unwrap_or(0);
        let is_matrix = t.dims.iter().filter(|&&d| d > 1).count() >= 2;
        if !is_matrix || t.ty == ty {
            w.tensor(&t.name, &t.dims, t.ty, bytes.to_vec());
            report.copied += 1;
        } else {
            let target = if row.is_multiple_of(ty.block_elements()) {
                ty
            } else {
                report.fallback.push(t.name.clone());
                GgmlType::Q8_0
            };
            if !row.is_multiple_of(target.block_elements()) {
                return Err(Error::Unsupported(format!(
                    "{}: rows of {row} values fit neither {ty} nor Q8_0 blocks",
                    t.name
                )));
            }
            let values = dequantize(t.ty, &bytes).map_err(|e| Error::Unsupported(format!("{}: {e}", t.name)))?;
            w.tensor(&t.name, &t.dims, target, quantize(target, &values)?);
            report.converted += 1;
        }
        done += t.n_bytes;
        on_tensor(done, total);
    }
    Ok((w.to_bytes(), report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(w: &GgufWriter) -> ModelFile {
        ModelFile::from_bytes(w.to_bytes()).unwrap()
    }

    #[test]
    fn matrices_are_converted_vectors_copied_and_odd_rows_fall_back_or_are_refused() {
        let floats = |n: usize| (0..n).flat_map(|i| (i as f32 * 0.01 - 0.3).to_le_bytes()).collect::<Vec<u8>>();
        let mut w = GgufWriter::new();
        w.meta("general.file_type", Value::U32(0))
            .tensor("norm.weight", &[256], GgmlType::F32, floats(256))
            .tensor("wide.weight", &[256, 2], GgmlType::F32, floats(512))
            .tensor("narrow.weight", &[64, 2], GgmlType::F32, floats(128));
        let (bytes, report) = requantize(&file_of(&w), GgmlType::Q4K, |_, _| {}).unwrap();
        assert_eq!((report.converted, report.copied, report.fallback), (2, 1, vec!["narrow.weight".to_string()]));
        let out = ModelFile::from_bytes(bytes).unwrap();
        let types: Vec<GgmlType> = out.header.tensors.iter().map(|t| t.ty).collect();
        assert_eq!(types, [GgmlType::F32, GgmlType::Q4K, GgmlType::Q8_0]);
        assert_eq!(out.header.get("general.file_type").and_then(Value::as_u64), Some(14));

        // Rows that fit no block at all are refused with the tensor's name.
        let mut odd = GgufWriter::new();
        odd.tensor("odd.weight", &[40, 2], GgmlType::F32, floats(80));
        let err = requantize(&file_of(&odd), GgmlType::Q8_0, |_, _| {}).unwrap_err().to_string();
        assert!(err.contains("odd.weight"), "{err}");
        let err = requantize(&file_of(&odd), GgmlType::Q2K, |_, _| {}).unwrap_err().to_string();
        assert!(err.contains("Q2_K"), "{err}");
    }
}
