//! The GPU layout of weight matrices, and the one repack from GGUF blocks into it.
//!
//! GGUF blocks (18, 20 or 34 bytes) are not 4-byte aligned, so every matrix is repacked once at
//! load into aligned arrays that the shaders read with `vec4<u32>` loads:
//!
//! * rows are grouped in tiles of [`TILE_ROWS`] (the row count is padded with zero rows);
//! * within a tile, block `b` (32 consecutive elements of a row) of row `r` is stored at
//!   `((tile * blocks_per_row + b) * TILE_ROWS + r) * vec4s_per_block`, so the invocations of a
//!   workgroup, one or a few rows each, read neighbouring bytes at every step, and a tile is a
//!   contiguous range that can be bound on its own;
//! * the scales `(d, m)` of a block are one `u32` (two f16) at `(tile * blocks_per_row + b) *
//!   TILE_ROWS + r`; a weight is `d * q + m`. Q4_0 is stored as Q4_1 with `m = -8 d`; Q5_0,
//!   Q5_1 and IQ4_NL, whose quants fit a signed byte exactly (`q - 16`, `q`, the level), as
//!   Q8_0 with their own `(d, m)`.
//!
//! Quant words: 4-bit words hold 8 consecutive elements (element `i` in bits `4i..4i+4`), 8-bit
//! words hold 4 signed bytes, f16 words two halves, f32 words one float.

use crate::model::ggml_type::GgmlType;
use crate::quant::dequant::{iq4_nl_levels, q5_quants};
use crate::{Error, Result};
use half::f16;

pub const TILE_ROWS: usize = 64;
pub const BLOCK: usize = 32;

/// The tensor types hearth runs on the GPU.
pub const SUPPORTED_TYPES: [GgmlType; 9] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::IQ4NL,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F32,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// 4-bit unsigned quants with (d, m) scales: Q4_0, Q4_1.
    Q4,
    /// 8-bit signed quants with (d, m) scales: Q8_0, and Q5_0, Q5_1, IQ4_NL widened to bytes.
    Q8,
    F16,
    F32,
}

impl WeightFormat {
    pub fn for_type(ty: GgmlType) -> Result<WeightFormat> {
        Ok(match ty {
            GgmlType::Q4_0 | GgmlType::Q4_1 => WeightFormat::Q4,
            GgmlType::Q8_0 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4NL => WeightFormat::Q8,
            GgmlType::F16 => WeightFormat::F16,
            GgmlType::F32 | GgmlType::BF16 => WeightFormat::F32,
            other => {
                let supported: Vec<&str> = SUPPORTED_TYPES.iter().map(|t| t.name()).collect();
                return Err(Error::Unsupported(format!(
                    "tensor type {other} is not supported yet (supported: {})",
                    supported.join(", ")
                )));
            }
        })
    }

    pub fn words_per_block(self) -> usize {
        match self {
            WeightFormat::Q4 => 4,
            WeightFormat::Q8 => 8,
            WeightFormat::F16 => 16,
            WeightFormat::F32 => 32,
        }
    }

    pub fn has_scales(self) -> bool {
        matches!(self, WeightFormat::Q4 | WeightFormat::Q8)
    }

    /// The preprocessor flag that selects this format's code in the shaders.
    pub fn shader_flag(self) -> &'static str {
        match self {
            WeightFormat::Q4 => "W_Q4",
            WeightFormat::Q8 => "W_Q8",
            WeightFormat::F16 => "W_F16",
            WeightFormat::F32 => "W_F32",
        }
    }
}

/// A matrix in the GPU layout, still on the host.
#[derive(Clone, Debug)]
pub struct PackedMatrix {
    pub format: WeightFormat,
    pub rows: usize,
    pub cols: usize,
    pub quants: Vec<u32>,
    pub scales: Vec<u32>,
}

impl PackedMatrix {
    pub fn blocks_per_row(&self) -> usize {
        self.cols / BLOCK
    }

    pub fn tiles(&self) -> usize {
        self.rows.div_ceil(TILE_ROWS)
    }

    /// Index of block `b` of row `row` in units of blocks (multiply by words per block for quants).
    pub fn block_index(&self, row: usize, b: usize) -> usize {
        (row / TILE_ROWS * self.blocks_per_row() + b) * TILE_ROWS + row % TILE_ROWS
    }

    /// One weight read back from the packed arrays: what a shader sees.
    pub fn get(&self, row: usize, col: usize) -> f32 {
        let bi = self.block_index(row, col / BLOCK);
        let e = col % BLOCK;
        let words = &self.quants[bi * self.format.words_per_block()..][..self.format.words_per_block()];
        let (d, m) = if self.format.has_scales() {
            let s = self.scales[bi];
            (f16::from_bits(s as u16).to_f32(), f16::from_bits((s >> 16) as u16).to_f32())
        } else {
            (1.0, 0.0)
        };
        let q = match self.format {
            WeightFormat::Q4 => ((words[e / 8] >> (4 * (e % 8))) & 0xF) as f32,
            WeightFormat::Q8 => ((words[e / 4] >> (8 * (e % 4))) as u8 as i8) as f32,
            WeightFormat::F16 => f16::from_bits((words[e / 2] >> (16 * (e % 2))) as u16).to_f32(),
            WeightFormat::F32 => f32::from_bits(words[e]),
        };
        d * q + m
    }

    /// Bytes this matrix occupies on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        ((self.quants.len() + self.scales.len()) * 4) as u64
    }
}

/// One source tensor's bytes in GGUF row-major order (`rows` rows of `cols` elements).
#[derive(Clone, Copy)]
pub struct SourceRows<'a> {
    pub ty: GgmlType,
    pub bytes: &'a [u8],
    pub rows: usize,
}

/// How several source tensors become the rows of one packed matrix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RowOrder {
    /// Rows of the first source, then the second, ... (fused Q|K|V).
    Concat,
    /// Row `i` of each source in turn (fused gate|up: gate_i, up_i, gate_i+1, ...), so one
    /// invocation holding neighbouring rows can combine them.
    Interleave,
}

pub fn pack(sources: &[SourceRows], cols: usize, order: RowOrder) -> Result<PackedMatrix> {
    let first = sources.first().ok_or_else(|| Error::Unsupported("no tensors to pack".into()))?;
    let format = WeightFormat::for_type(first.ty)?;
    if !cols.is_multiple_of(BLOCK) {
        return Err(Error::Unsupported(format!("row length {cols} is not a multiple of {BLOCK}")));
    }
    let mut row_bytes = Vec::with_capacity(sources.len());
    for src in sources {
        if WeightFormat::for_type(src.ty)? != format {
            return Err(Error::Unsupported(format!(
                "tensors fused into one matrix have different types ({} and {}); mixed-type fusion is not supported yet",
                first.ty, src.ty
            )));
        }
        let per_row = src
            .ty
            .bytes_for(cols as u64)
            .ok_or_else(|| Error::Unsupported(format!("row length {cols} does not fit {}", src.ty)))?
            as usize;
        if src.bytes.len() != per_row * src.rows {
            return Err(Error::Gguf(format!(
                "tensor holds {} bytes, expected {} rows of {per_row}",
                src.bytes.len(),
                src.rows
            )));
        }
        row_bytes.push(per_row);
    }
    let rows_of = |k: usize| sources[k].rows;
    let total_rows: usize = sources.iter().map(|s| s.rows).sum();
    if order == RowOrder::Interleave && sources.iter().any(|s| s.rows != first.rows) {
        return Err(Error::Unsupported("interleaved tensors must have the same row count".into()));
    }
    let source_row = |out_row: usize| -> (usize, usize) {
        match order {
            RowOrder::Interleave => (out_row % sources.len(), out_row / sources.len()),
            RowOrder::Concat => {
                let mut r = out_row;
                let mut k = 0;
                while r >= rows_of(k) {
                    r -= rows_of(k);
                    k += 1;
                }
                (k, r)
            }
        }
    };

    let nb = cols / BLOCK;
    let wpb = format.words_per_block();
    let padded_rows = total_rows.div_ceil(TILE_ROWS) * TILE_ROWS;
    let mut packed = PackedMatrix {
        format,
        rows: total_rows,
        cols,
        quants: vec![0; padded_rows * nb * wpb],
        scales: if format.has_scales() { vec![0; padded_rows * nb] } else { Vec::new() },
    };
    for out_row in 0..total_rows {
        let (k, r) = source_row(out_row);
        let src = &sources[k];
        let row = &src.bytes[r * row_bytes[k]..][..row_bytes[k]];
        let src_block_bytes = row_bytes[k] / nb;
        for b in 0..nb {
            let bi = packed.block_index(out_row, b);
            let block = &row[b * src_block_bytes..][..src_block_bytes];
            let words = &mut packed.quants[bi * wpb..][..wpb];
            if let Some(scale) = pack_block(src.ty, block, words) {
                packed.scales[bi] = scale;
            }
        }
    }
    Ok(packed)
}

fn le_u16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

/// Writes one block's quant words; returns its packed (d, m) scale for quantized formats.
fn pack_block(ty: GgmlType, block: &[u8], words: &mut [u32]) -> Option<u32> {
    let nibble = |qs: &[u8], e: usize| -> u32 { if e < 16 { (qs[e] & 0xF) as u32 } else { (qs[e - 16] >> 4) as u32 } };
    match ty {
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let qs = if ty == GgmlType::Q4_0 { &block[2..18] } else { &block[4..20] };
            for (w, word) in words.iter_mut().enumerate() {
                *word = (0..8).fold(0, |acc, i| acc | nibble(qs, w * 8 + i) << (4 * i));
            }
            let d = le_u16(block, 0);
            let m = if ty == GgmlType::Q4_0 {
                f16::from_f32(-8.0 * f16::from_bits(d).to_f32()).to_bits()
            } else {
                le_u16(block, 2)
            };
            Some(d as u32 | (m as u32) << 16)
        }
        GgmlType::Q8_0 => {
            for (w, word) in words.iter_mut().enumerate() {
                *word = u32::from_le_bytes([block[2 + 4 * w], block[3 + 4 * w], block[4 + 4 * w], block[5 + 4 * w]]);
            }
            Some(le_u16(block, 0) as u32)
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4NL => {
            let bytes: [i8; 32] = match ty {
                GgmlType::Q5_0 => q5_quants(&block[2..6], &block[6..22]).map(|q| q as i8 - 16),
                GgmlType::Q5_1 => q5_quants(&block[4..8], &block[8..24]).map(|q| q as i8),
                _ => iq4_nl_levels(&block[2..18]),
            };
            for (w, word) in words.iter_mut().enumerate() {
                *word = u32::from_le_bytes(std::array::from_fn(|i| bytes[4 * w + i] as u8));
            }
            let m = if ty == GgmlType::Q5_1 { le_u16(block, 2) } else { 0 };
            Some(le_u16(block, 0) as u32 | (m as u32) << 16)
        }
        GgmlType::F16 => {
            for (w, word) in words.iter_mut().enumerate() {
                *word = u32::from_le_bytes([block[4 * w], block[4 * w + 1], block[4 * w + 2], block[4 * w + 3]]);
            }
            None
        }
        GgmlType::BF16 => {
            for (w, word) in words.iter_mut().enumerate() {
                *word = (le_u16(block, 2 * w) as u32) << 16;
            }
            None
        }
        _ => {
            // F32: only remaining format `WeightFormat::for_type` accepts.
            for (w, word) in words.iter_mut().enumerate() {
                *word = u32::from_le_bytes([block[4 * w], block[4 * w + 1], block[4 * w + 2], block[4 * w + 3]]);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::rng;
    use crate::quant::dequantize;
    use crate::quant::testing::random_tensor;

    #[test]
    fn packed_weights_read_back_as_their_definition() {
        for (i, ty) in SUPPORTED_TYPES.into_iter().enumerate() {
            let mut rng = rng(i as u64);
            let (rows, cols) = (70, 96);
            let a = random_tensor(ty, rows, cols, &mut rng);
            let b = random_tensor(ty, rows, cols, &mut rng);
            let (da, db) = (dequantize(ty, &a).unwrap(), dequantize(ty, &b).unwrap());
            let sources = [SourceRows { ty, bytes: &a, rows }, SourceRows { ty, bytes: &b, rows }];
            let concat = pack(&sources, cols, RowOrder::Concat).unwrap();
            let inter = pack(&sources, cols, RowOrder::Interleave).unwrap();
            assert_eq!(concat.quants.len() % (TILE_ROWS * concat.format.words_per_block()), 0);
            for r in 0..rows {
                for c in 0..cols {
                    let (wa, wb) = (da[r * cols + c], db[r * cols + c]);
                    assert_eq!(concat.get(r, c), wa, "{ty} concat row {r} col {c}");
                    assert_eq!(concat.get(rows + r, c), wb, "{ty} concat row {} col {c}", rows + r);
                    assert_eq!(inter.get(2 * r, c), wa, "{ty} interleaved row {} col {c}", 2 * r);
                    assert_eq!(inter.get(2 * r + 1, c), wb, "{ty} interleaved row {} col {c}", 2 * r + 1);
                }
            }
        }
    }

    #[test]
    fn mismatched_inputs_are_refused() {
        let q4 = vec![0u8; 20 * 2];
        let q8 = vec![0u8; 34 * 2];
        let mixed = [
            SourceRows { ty: GgmlType::Q4_1, bytes: &q4, rows: 1 },
            SourceRows { ty: GgmlType::Q8_0, bytes: &q8, rows: 1 },
        ];
        assert!(pack(&mixed, 64, RowOrder::Concat).unwrap_err().to_string().contains("different types"));
        let short = [SourceRows { ty: GgmlType::Q4_1, bytes: &q4[..30], rows: 1 }];
        assert!(pack(&short, 64, RowOrder::Concat).is_err());
        let q2k = [SourceRows { ty: GgmlType::Q2K, bytes: &[0; 84], rows: 1 }];
        assert!(pack(&q2k, 256, RowOrder::Concat).unwrap_err().to_string().contains("Q2_K"));
    }
}
