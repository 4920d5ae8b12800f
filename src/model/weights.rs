//! Reading tensors out of a model file into GPU buffers, with their shapes checked against the
//! configuration first.

use super::file::ModelFile;
use super::gguf::{GgufHeader, TensorInfo};
use super::matrix_rows::{RANGE_BYTES, RowReader, TensorRows, pack_by_ranges};
use crate::gpu::Gpu;
use crate::ops::linear::{GpuMatrix, MatrixPart};
use crate::quant::{GgmlType, RowOrder, dequantize, plan_parts};
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
    /// Packed bytes a matrix is uploaded in at a time (`matrix_rows::RANGE_BYTES`).
    pub range_bytes: usize,
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
        WeightLoader {
            gpu,
            file,
            uploaded: std::cell::Cell::new(0),
            expert_bytes: std::cell::Cell::new(0),
            range_bytes: RANGE_BYTES,
        }
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
        let mut sources = Vec::with_capacity(parts.len());
        for (name, rows, taken) in parts {
            let info = self.checked(name, &[cols, *rows])?;
            sources.push(TensorRows::run(info, taken.clone()));
        }
        let mut names: Vec<&str> = Vec::new();
        for &(name, ..) in parts {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        self.upload(&names.join("+"), &sources, cols, order)
    }

    /// Mixture-of-experts tensors of `count` matrices each (`[cols, rows, count]`), packed into
    /// one GPU matrix whose expert `e` holds rows `e * r..(e + 1) * r` (r the parts' rows
    /// together): with `Interleave`, each expert's gate and up rows alternate, since whole
    /// tensors interleave expert by expert.
    pub fn experts(&self, parts: &[(&str, usize)], count: usize, cols: usize, order: RowOrder) -> Result<GpuMatrix> {
        let mut sources = Vec::with_capacity(parts.len());
        for &(name, rows) in parts {
            let info = self.checked(name, &[cols, rows, count])?;
            sources.push(TensorRows::run(info, 0..rows * count));
        }
        let label = parts.iter().map(|p| p.0).collect::<Vec<_>>().join("+");
        self.upload_experts(&label, &sources, cols, order)
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
        let block = |e: usize, p: usize| (e * parts + p) * rows_each..(e * parts + p + 1) * rows_each;
        let sources: Vec<TensorRows> =
            (0..parts).map(|p| TensorRows { info, runs: (0..count).map(|e| block(e, p)).collect() }).collect();
        self.upload_experts(name, &sources, cols, order)
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
        let sources: Vec<TensorRows> =
            (0..parts).map(|p| TensorRows::run(info, p * rows_each..(p + 1) * rows_each)).collect();
        self.upload(name, &sources, cols, order)
    }

    fn upload_experts(&self, label: &str, sources: &[TensorRows], cols: usize, order: RowOrder) -> Result<GpuMatrix> {
        let before = self.uploaded.get();
        let matrix = self.upload(label, sources, cols, order)?;
        self.expert_bytes.set(self.expert_bytes.get() + self.uploaded.get() - before);
        Ok(matrix)
    }

    /// Packs the sources into GPU storage made for the whole matrix, a range of rows at a time
    /// (`matrix_rows.rs`), so the host holds one range of the matrix, not all of it.
    fn upload(&self, label: &str, sources: &[TensorRows], cols: usize, order: RowOrder) -> Result<GpuMatrix> {
        let labelled = |e: Error| match e {
            Error::Unsupported(m) => Error::Unsupported(format!("{label}: {m}")),
            other => other,
        };
        let reader = RowReader::new(self.file, sources, cols).map_err(labelled)?;
        let shapes: Vec<(GgmlType, usize)> = sources.iter().map(|s| (s.info.ty, s.rows())).collect();
        let mut parts = Vec::new();
        let mut first_row = 0;
        for (run, format) in plan_parts(&shapes, order).map_err(labelled)? {
            let rows: usize = shapes[run.clone()].iter().map(|s| s.1).sum();
            let [quant_words, scale_words] = format.packed_words(rows, cols);
            let quants = self.gpu.empty_texels(label, quant_words)?;
            let scales = if scale_words == 0 { None } else { Some(self.gpu.empty_texels(label, scale_words)?) };
            pack_by_ranges(&reader, &sources[run], format, order, self.range_bytes, |qi, qw, si, sw| {
                self.gpu.write_texels(&quants, qi, qw)?;
                if let Some(s) = &scales {
                    self.gpu.write_texels(s, si, sw)?;
                }
                // Hands the range to the GPU now: wgpu holds written bytes in staging memory
                // until the next submission, which would otherwise be after the whole model.
                self.gpu.queue.submit([]);
                Ok(())
            })
            .map_err(labelled)?;
            self.uploaded.set(self.uploaded.get() + (quant_words + scale_words) as u64 * 4);
            parts.push(MatrixPart { first_row, rows, format, quants, scales });
            first_row += rows;
        }
        Ok(GpuMatrix { rows: first_row, cols, parts })
    }
}
