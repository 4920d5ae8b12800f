//! Reading tensors out of a model file into GPU buffers, with their shapes checked against the
//! configuration first.

use super::file::ModelFile;
use super::gguf::{GgufHeader, TensorInfo};
use crate::gpu::Gpu;
use crate::ops::linear::GpuMatrix;
use crate::quant::{GgmlType, RowOrder, SourceRows, dequantize, pack_parts};
use crate::{Error, Result};
use std::ops::Range;

pub struct WeightLoader<'a> {
    pub gpu: &'a Gpu,
    pub file: &'a ModelFile,
    /// Bytes uploaded so far, for progress and the load summary.
    pub uploaded: std::cell::Cell<u64>,
    /// Of those, the bytes of mixture-of-experts matrices, of which a token reads only its
    /// experts' share.
    pub expert_bytes: std::cell::Cell<u64>,
}

/// Bytes a tensor takes on the GPU once repacked: for a matrix, its quant and scale words
/// (padded to whole tiles); otherwise f32 values. From the tensor info alone, before anything
/// is read or allocated.
fn planned(t: &TensorInfo) -> (u64, u64) {
    use crate::quant::layout::{TILE_ROWS, WeightFormat};
    // Saturating: a crafted file may pair a zero dimension with an enormous one.
    match (t.dims.as_slice(), WeightFormat::for_type(t.ty)) {
        ([cols, rows, ..], Ok(format)) => {
            let padded_rows = rows.div_ceil(TILE_ROWS as u64).saturating_mul(TILE_ROWS as u64);
            let [quants, scales] = format.row_bytes_apart(*cols);
            (padded_rows.saturating_mul(quants), padded_rows.saturating_mul(scales))
        }
        _ => (t.n_elements().saturating_mul(4), 0),
    }
}

/// Bytes the file's weights take on the GPU once repacked.
pub fn planned_bytes(header: &GgufHeader) -> u64 {
    header.tensors.iter().map(planned).map(|(a, b)| a.saturating_add(b)).fold(0, u64::saturating_add)
}

/// Refuses, before anything is uploaded, a matrix whose packed words no texture of the adapter
/// could hold.
pub fn check_textures(gpu: &Gpu, header: &GgufHeader) -> Result<()> {
    for t in header.tensors.iter().filter(|t| t.dims.len() >= 2) {
        let (quants, scales) = planned(t);
        gpu.check_texels_fit(&t.name, quants.max(scales))?;
    }
    Ok(())
}

impl<'a> WeightLoader<'a> {
    pub fn new(gpu: &'a Gpu, file: &'a ModelFile) -> Self {
        WeightLoader { gpu, file, uploaded: std::cell::Cell::new(0), expert_bytes: std::cell::Cell::new(0) }
    }

    fn checked(&self, name: &str, dims: &[usize]) -> Result<&'a super::gguf::TensorInfo> {
        let info = self.file.tensor(name)?;
        let got = info.dims.clone();
        let mut want: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        // GGUF may carry trailing unit dimensions.
        let mut got_trimmed = got.clone();
        while got_trimmed.len() > want.len() && got_trimmed.last() == Some(&1) {
            got_trimmed.pop();
        }
        while want.len() > got_trimmed.len() && want.last() == Some(&1) {
            want.pop();
        }
        if got_trimmed != want {
            return Err(Error::Unsupported(format!(
                "tensor {name:?} has shape {got:?}, expected {want:?} for this model's hyperparameters"
            )));
        }
        Ok(info)
    }

    /// Whether the file has a tensor of this name (for a family's optional parts).
    pub fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_ok()
    }

    /// A 1-D tensor of `len` values as an f32 storage buffer.
    pub fn vector(&self, name: &str, len: usize) -> Result<wgpu::Buffer> {
        self.vectors(&[(name, len)])
    }

    /// 1-D tensors of the given lengths, one after the other in one f32 storage buffer (the
    /// biases of fused Q|K|V).
    pub fn vectors(&self, parts: &[(&str, usize)]) -> Result<wgpu::Buffer> {
        let mut values = Vec::new();
        for &(name, len) in parts {
            values.extend(self.values(name, &[len])?);
        }
        let label = parts.iter().map(|p| p.0).collect::<Vec<_>>().join("+");
        self.upload_values(&label, &values)
    }

    /// A tensor of these dimensions (innermost first) as f32 values on the host, for a family
    /// to rearrange before `upload_values`.
    pub fn values(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
        let info = self.checked(name, dims)?;
        dequantize(info.ty, &self.file.data(info)?)
    }

    /// f32 values as one storage buffer.
    pub fn upload_values(&self, label: &str, values: &[f32]) -> Result<wgpu::Buffer> {
        self.uploaded.set(self.uploaded.get() + values.len() as u64 * 4);
        self.gpu.buffer_with(label, values)
    }

    /// Matrices of `cols` columns (and the given row counts) packed into one GPU matrix.
    pub fn matrix(&self, parts: &[(&str, usize)], cols: usize, order: RowOrder) -> Result<GpuMatrix> {
        let whole: Vec<(&str, usize, Range<usize>)> = parts.iter().map(|&(name, rows)| (name, rows, 0..rows)).collect();
        self.matrix_rows(&whole, cols, order)
    }

    /// Runs of rows of matrices packed into one GPU matrix, in the order given: each part a
    /// tensor's name, its rows, and the rows taken (Qwen 3.5 stores each query head's output
    /// gate after it in `attn_q`; its queries and its gates become separate runs).
    pub fn matrix_rows(
        &self,
        parts: &[(&str, usize, Range<usize>)],
        cols: usize,
        order: RowOrder,
    ) -> Result<GpuMatrix> {
        // Each tensor's bytes once, however many runs are taken from it.
        let mut tensors: Vec<(&str, GgmlType, std::borrow::Cow<[u8]>, usize)> = Vec::new();
        for &(name, rows, _) in parts {
            if !tensors.iter().any(|t| t.0 == name) {
                let info = self.checked(name, &[cols, rows])?;
                tensors.push((name, info.ty, self.file.data(info)?, rows));
            }
        }
        let mut sources = Vec::with_capacity(parts.len());
        for (name, _, taken) in parts {
            let Some((_, ty, bytes, rows)) = tensors.iter().find(|t| t.0 == *name) else { continue };
            let row_bytes = bytes.len() / (*rows).max(1);
            let slice = bytes
                .get(taken.start * row_bytes..taken.end * row_bytes)
                .ok_or_else(|| Error::Unsupported(format!("rows {taken:?} of {name:?}, which has {rows}")))?;
            sources.push(SourceRows { ty: *ty, bytes: slice, rows: taken.len() });
        }
        let names: Vec<&str> = tensors.iter().map(|t| t.0).collect();
        self.upload(&names.join("+"), &sources, cols, order)
    }

    /// Mixture-of-experts tensors of `count` matrices each (`[cols, rows, count]`), packed into
    /// one GPU matrix whose expert `e` holds rows `e * r..(e + 1) * r` (r the parts' rows
    /// together): with `Interleave`, each expert's gate and up rows alternate, since whole
    /// tensors interleave expert by expert.
    pub fn experts(&self, parts: &[(&str, usize)], count: usize, cols: usize, order: RowOrder) -> Result<GpuMatrix> {
        let mut tensors = Vec::with_capacity(parts.len());
        for &(name, rows) in parts {
            let info = self.checked(name, &[cols, rows, count])?;
            tensors.push((info.ty, self.file.data(info)?, rows * count));
        }
        let sources: Vec<SourceRows> =
            tensors.iter().map(|(ty, bytes, rows)| SourceRows { ty: *ty, bytes, rows: *rows }).collect();
        let label = parts.iter().map(|p| p.0).collect::<Vec<_>>().join("+");
        let before = self.uploaded.get();
        let matrix = self.upload(&label, &sources, cols, order)?;
        self.expert_bytes.set(self.expert_bytes.get() + self.uploaded.get() - before);
        Ok(matrix)
    }

    /// A mixture-of-experts tensor whose every expert holds `parts` blocks of `rows_each` rows
    /// (Gemma 4's `ffn_gate_up_exps`: each expert's gate rows, then its up rows), packed as if
    /// each block were a tensor of its own over all experts (as `experts` packs them).
    pub fn split_experts(
        &self,
        name: &str,
        parts: usize,
        rows_each: usize,
        count: usize,
        cols: usize,
        order: RowOrder,
    ) -> Result<GpuMatrix> {
        let info = self.checked(name, &[cols, parts * rows_each, count])?;
        let bytes = self.file.data(info)?;
        let blocks = parts * count;
        if blocks == 0 || !bytes.len().is_multiple_of(blocks) {
            return Err(Error::Gguf(format!("{name}: {} bytes are not {blocks} equal blocks", bytes.len())));
        }
        let mut split = vec![Vec::with_capacity(bytes.len() / parts); parts];
        for (i, block) in bytes.chunks_exact(bytes.len() / blocks).enumerate() {
            split[i % parts].extend_from_slice(block);
        }
        let sources: Vec<SourceRows> =
            split.iter().map(|b| SourceRows { ty: info.ty, bytes: b, rows: rows_each * count }).collect();
        let before = self.uploaded.get();
        let matrix = self.upload(name, &sources, cols, order)?;
        self.expert_bytes.set(self.expert_bytes.get() + self.uploaded.get() - before);
        Ok(matrix)
    }

    /// One tensor of `parts * rows_each` rows cut into `parts` equal blocks of rows, packed as if
    /// they were separate tensors (Phi 3 stores gate and up as the two halves of `ffn_up`).
    pub fn split_matrix(
        &self,
        name: &str,
        parts: usize,
        rows_each: usize,
        cols: usize,
        order: RowOrder,
    ) -> Result<GpuMatrix> {
        let info = self.checked(name, &[cols, parts * rows_each])?;
        let bytes = self.file.data(info)?;
        let part_bytes = bytes.len() / parts.max(1);
        let sources: Vec<SourceRows> = bytes
            .chunks_exact(part_bytes.max(1))
            .map(|chunk| SourceRows { ty: info.ty, bytes: chunk, rows: rows_each })
            .collect();
        self.upload(name, &sources, cols, order)
    }

    fn upload(&self, label: &str, sources: &[SourceRows], cols: usize, order: RowOrder) -> Result<GpuMatrix> {
        let parts = pack_parts(sources, cols, order).map_err(|e| match e {
            Error::Unsupported(m) => Error::Unsupported(format!("{label}: {m}")),
            other => other,
        })?;
        self.uploaded.set(self.uploaded.get() + parts.iter().map(|p| p.gpu_bytes()).sum::<u64>());
        GpuMatrix::upload_parts(self.gpu, label, &parts)
    }
}
