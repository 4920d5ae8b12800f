//! The GPU layout of weight matrices, and the one repack from GGUF blocks into it.
//!
//! GGUF blocks (18 to 210 bytes) are not 4-byte aligned, so every matrix is repacked once at
//! load into aligned arrays that the shaders read with `vec4<u32>` loads:
//!
//! * rows are grouped in tiles of [`TILE_ROWS`] (the row count is padded with zero rows);
//! * within a tile, block `b` (32 consecutive elements of a row) of row `r` is stored at
//!   `((tile * blocks_per_row + b) * TILE_ROWS + r) * vec4s_per_block`, so the invocations of a
//!   workgroup, one or a few rows each, read neighbouring bytes at every step, and a tile is a
//!   contiguous range that can be bound on its own;
//! * the scales `(d, m)` of a block are one `u32` (two f16) at `(tile * blocks_per_row + b) *
//!   TILE_ROWS + r`, or two (one per 16 weights) at twice that index for [`WeightFormat::Q8S16`];
//!   a weight is `d * q + m`.
//!
//! Every GGUF type maps onto one of these formats without changing a quant: Q4_0 is stored as
//! Q4_1 with `m = -8 d`; Q5_0, Q5_1, IQ4_NL, Q5_K and IQ4_XS, whose quants fit a signed byte
//! (`q - 16`, `q`, the level), as 8-bit; Q4_K as 4-bit; Q6_K, Q3_K and Q2_K, whose scales change
//! every 16 weights, as 8-bit with a scale pair per 16. The K-quants' sub-block scales
//! (`d * sc`, `-dmin * m`) are products the format computes in f32; stored as f16 they are
//! rounded to 11 significant bits (a relative error below 2^-11, far under the quantization's
//! own). Tensors fused into one matrix (Q|K|V, gate|up) may differ in type: they share the
//! narrowest format that holds them all.
//!
//! Quant words: 4-bit words hold 8 consecutive elements (element `i` in bits `4i..4i+4`), 8-bit
//! words hold 4 signed bytes, f16 words two halves, f32 words one float.

use super::GgmlType;
use crate::quant::dequant::{SUPERBLOCK_TYPES, decode_superblock, iq4_nl_levels, q5_quants};
use crate::{Error, Result};
use half::f16;

pub const TILE_ROWS: usize = 64;
pub const BLOCK: usize = 32;

/// The tensor types hearth runs on the GPU.
pub const SUPPORTED_TYPES: [GgmlType; 15] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::IQ4NL,
    GgmlType::IQ4XS,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F32,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// 4-bit unsigned quants with (d, m) scales: Q4_0, Q4_1, Q4_K.
    Q4,
    /// 8-bit signed quants with (d, m) scales: Q8_0, and Q5_0, Q5_1, IQ4_NL, Q5_K, IQ4_XS
    /// widened to bytes.
    Q8,
    /// 8-bit signed quants with a (d, m) pair per 16 weights: Q6_K, Q3_K, Q2_K.
    Q8S16,
    F16,
    F32,
}

impl WeightFormat {
    pub fn for_type(ty: GgmlType) -> Result<WeightFormat> {
        Ok(match ty {
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q4K => WeightFormat::Q4,
            GgmlType::Q8_0 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::IQ4NL | GgmlType::Q5K | GgmlType::IQ4XS => {
                WeightFormat::Q8
            }
            GgmlType::Q6K | GgmlType::Q3K | GgmlType::Q2K => WeightFormat::Q8S16,
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

    /// The narrowest format that holds every weight of both unchanged (for fused tensors of
    /// different types): quantized formats nest (4-bit quants fit bytes, one scale pair per
    /// block fits one per 16), anything else meets in f32.
    pub fn common(self, other: WeightFormat) -> WeightFormat {
        let rank = |f: WeightFormat| match f {
            WeightFormat::Q4 => Some(0),
            WeightFormat::Q8 => Some(1),
            WeightFormat::Q8S16 => Some(2),
            WeightFormat::F16 | WeightFormat::F32 => None,
        };
        match (rank(self), rank(other)) {
            _ if self == other => self,
            (Some(a), Some(b)) => {
                if a >= b {
                    self
                } else {
                    other
                }
            }
            _ => WeightFormat::F32,
        }
    }

    pub fn words_per_block(self) -> usize {
        match self {
            WeightFormat::Q4 => 4,
            WeightFormat::Q8 | WeightFormat::Q8S16 => 8,
            WeightFormat::F16 => 16,
            WeightFormat::F32 => 32,
        }
    }

    /// `u32` scale words per block: one (d, m) pair of f16, two for Q8S16, none for floats.
    pub fn scale_words_per_block(self) -> usize {
        match self {
            WeightFormat::Q4 | WeightFormat::Q8 => 1,
            WeightFormat::Q8S16 => 2,
            WeightFormat::F16 | WeightFormat::F32 => 0,
        }
    }

    pub fn has_scales(self) -> bool {
        self.scale_words_per_block() > 0
    }

    /// The preprocessor flag that selects this format's quant words in the shaders (Q8S16 adds
    /// `HALF_SCALES`).
    pub fn shader_flag(self) -> &'static str {
        match self {
            WeightFormat::Q4 => "W_Q4",
            WeightFormat::Q8 | WeightFormat::Q8S16 => "W_Q8",
            WeightFormat::F16 => "W_F16",
            WeightFormat::F32 => "W_F32",
        }
    }
}

/// Whether the GPU layout rounds this type's scales (products of two of the format's numbers,
/// stored as f16): its weights read back within 2^-11 of their size rather than exactly.
pub fn rounds_scales(ty: GgmlType) -> bool {
    SUPERBLOCK_TYPES.contains(&ty)
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

fn halves(s: u32) -> (f32, f32) {
    (f16::from_bits(s as u16).to_f32(), f16::from_bits((s >> 16) as u16).to_f32())
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
        let (d, m) = match self.format.scale_words_per_block() {
            0 => (1.0, 0.0),
            1 => halves(self.scales[bi]),
            _ => halves(self.scales[2 * bi + e / 16]),
        };
        let q = match self.format {
            WeightFormat::Q4 => ((words[e / 8] >> (4 * (e % 8))) & 0xF) as f32,
            WeightFormat::Q8 | WeightFormat::Q8S16 => ((words[e / 4] >> (8 * (e % 4))) as u8 as i8) as f32,
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
    let mut format = WeightFormat::for_type(first.ty)?;
    let mut row_bytes = Vec::with_capacity(sources.len());
    for src in sources {
        format = format.common(WeightFormat::for_type(src.ty)?);
        let per_row = src.ty.bytes_for(cols as u64).filter(|_| cols.is_multiple_of(BLOCK)).ok_or_else(|| {
            Error::Unsupported(format!("row length {cols} is not a whole number of {} blocks", src.ty))
        })? as usize;
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
    let (wpb, spb) = (format.words_per_block(), format.scale_words_per_block());
    let padded_rows = total_rows.div_ceil(TILE_ROWS) * TILE_ROWS;
    let mut packed = PackedMatrix {
        format,
        rows: total_rows,
        cols,
        quants: vec![0; padded_rows * nb * wpb],
        scales: vec![0; padded_rows * nb * spb],
    };
    // Bytes of one unit `decode_blocks` takes: a quantized block, or 32 floats.
    let source_block_bytes: Vec<usize> =
        sources.iter().map(|s| (s.ty.block_bytes() * (BLOCK as u64 / s.ty.block_elements()).max(1)) as usize).collect();
    let mut blocks = Vec::with_capacity(8);
    for out_row in 0..total_rows {
        let (k, r) = source_row(out_row);
        let src = &sources[k];
        let row = &src.bytes[r * row_bytes[k]..][..row_bytes[k]];
        let mut b = 0;
        for source_block in row.chunks_exact(source_block_bytes[k]) {
            decode_blocks(src.ty, source_block, &mut blocks)?;
            for block in &blocks {
                let bi = packed.block_index(out_row, b);
                encode(block, format, &mut packed.quants[bi * wpb..][..wpb], &mut packed.scales[bi * spb..][..spb])?;
                b += 1;
            }
        }
    }
    Ok(packed)
}

/// 32 weights between their GGUF form and the GPU's: integer quants with an f16 (d, m) pair
/// (packed in a `u32`) per 16 weights, or plain values.
enum Block32 {
    Quant { q: [i8; 32], scales: [u32; 2] },
    Float([f32; 32]),
}

fn le_u16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn pair(d: u16, m: u16) -> u32 {
    d as u32 | (m as u32) << 16
}

fn f16_pair(d: f32, m: f32) -> u32 {
    pair(f16::from_f32(d).to_bits(), f16::from_f32(m).to_bits())
}

/// The 32-weight blocks of one GGUF block (one, or eight for 256-weight superblocks), or of 32
/// floats.
fn decode_blocks(ty: GgmlType, block: &[u8], out: &mut Vec<Block32>) -> Result<()> {
    out.clear();
    let floats = |f: &dyn Fn(usize) -> f32| Block32::Float(std::array::from_fn(f));
    let one_pair = |q: [i8; 32], d: u16, m: u16| Block32::Quant { q, scales: [pair(d, m); 2] };
    let nibbles =
        |qs: &[u8]| -> [i8; 32] { std::array::from_fn(|e| (if e < 16 { qs[e] & 0xF } else { qs[e - 16] >> 4 }) as i8) };
    match ty {
        GgmlType::F32 => out.push(floats(&|e| {
            f32::from_le_bytes([block[4 * e], block[4 * e + 1], block[4 * e + 2], block[4 * e + 3]])
        })),
        GgmlType::F16 => out.push(floats(&|e| f16::from_bits(le_u16(block, 2 * e)).to_f32())),
        GgmlType::BF16 => out.push(floats(&|e| half::bf16::from_bits(le_u16(block, 2 * e)).to_f32())),
        GgmlType::Q4_0 => {
            let d = le_u16(block, 0);
            let m = f16::from_f32(-8.0 * f16::from_bits(d).to_f32()).to_bits();
            out.push(one_pair(nibbles(&block[2..18]), d, m));
        }
        GgmlType::Q4_1 => out.push(one_pair(nibbles(&block[4..20]), le_u16(block, 0), le_u16(block, 2))),
        GgmlType::Q8_0 => out.push(one_pair(std::array::from_fn(|e| block[2 + e] as i8), le_u16(block, 0), 0)),
        GgmlType::Q5_0 => {
            out.push(one_pair(q5_quants(&block[2..6], &block[6..22]).map(|q| q as i8 - 16), le_u16(block, 0), 0))
        }
        GgmlType::Q5_1 => out.push(one_pair(
            q5_quants(&block[4..8], &block[8..24]).map(|q| q as i8),
            le_u16(block, 0),
            le_u16(block, 2),
        )),
        GgmlType::IQ4NL => out.push(one_pair(iq4_nl_levels(&block[2..18]), le_u16(block, 0), 0)),
        _ => {
            // 256-weight superblocks (the K-quants, IQ4_XS); anything else is refused there.
            let sb = decode_superblock(ty, block)?;
            for i in 0..8 {
                out.push(Block32::Quant {
                    q: std::array::from_fn(|e| sb.q[32 * i + e]),
                    scales: [f16_pair(sb.d[2 * i], sb.m[2 * i]), f16_pair(sb.d[2 * i + 1], sb.m[2 * i + 1])],
                });
            }
        }
    }
    Ok(())
}

/// Sets each word from `per_word` consecutive elements of `bits` bits, the first lowest.
fn fill(words: &mut [u32], per_word: usize, bits: usize, element: impl Fn(usize) -> u32) {
    for (w, word) in words.iter_mut().enumerate() {
        *word = (0..per_word).fold(0, |acc, i| acc | element(w * per_word + i) << (bits * i));
    }
}

/// Writes one block's quant and scale words in `format` (one that holds it: see `common`).
fn encode(block: &Block32, format: WeightFormat, words: &mut [u32], scales: &mut [u32]) -> Result<()> {
    match (block, format) {
        (Block32::Quant { q, scales: s }, WeightFormat::Q4) => {
            scales.copy_from_slice(&s[..1]);
            fill(words, 8, 4, |e| (q[e] as u8 & 0xF) as u32);
        }
        (Block32::Quant { q, scales: s }, WeightFormat::Q8 | WeightFormat::Q8S16) => {
            scales.copy_from_slice(&s[..scales.len()]);
            fill(words, 4, 8, |e| q[e] as u8 as u32);
        }
        (Block32::Quant { q, scales: s }, WeightFormat::F32) => fill(words, 1, 32, |e| {
            let (d, m) = halves(s[e / 16]);
            (d * q[e] as f32 + m).to_bits()
        }),
        (Block32::Float(v), WeightFormat::F32) => fill(words, 1, 32, |e| v[e].to_bits()),
        (Block32::Float(v), WeightFormat::F16) => fill(words, 2, 16, |e| f16::from_f32(v[e]).to_bits() as u32),
        _ => return Err(Error::Unsupported(format!("a block cannot be stored in the {format:?} layout"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::rng;
    use crate::quant::dequantize;
    use crate::quant::testing::random_tensor;

    /// Asserts that `get(row, c)` reads back `want` (a row of dequantized weights): exactly, or
    /// for types whose scales the layout rounds, within 2^-10 of the row's largest weight.
    fn assert_row(m: &PackedMatrix, row: usize, want: &[f32], ty: GgmlType, what: &str) {
        let tol = if rounds_scales(ty) { want.iter().fold(0f32, |a, w| a.max(w.abs())) / 1024.0 } else { 0.0 };
        for (c, &w) in want.iter().enumerate() {
            let got = m.get(row, c);
            assert!((got - w).abs() <= tol, "{ty} {what} row {row} col {c}: {got} != {w}");
        }
    }

    #[test]
    fn packed_weights_read_back_as_their_definition() {
        for (i, ty) in SUPPORTED_TYPES.into_iter().enumerate() {
            let mut rng = rng(i as u64);
            let (rows, cols) = (70, 512);
            let a = random_tensor(ty, rows, cols, &mut rng);
            let b = random_tensor(ty, rows, cols, &mut rng);
            let (da, db) = (dequantize(ty, &a).unwrap(), dequantize(ty, &b).unwrap());
            let sources = [SourceRows { ty, bytes: &a, rows }, SourceRows { ty, bytes: &b, rows }];
            let concat = pack(&sources, cols, RowOrder::Concat).unwrap();
            let inter = pack(&sources, cols, RowOrder::Interleave).unwrap();
            assert_eq!(concat.format, WeightFormat::for_type(ty).unwrap());
            assert_eq!(concat.quants.len() % (TILE_ROWS * concat.format.words_per_block()), 0);
            for r in 0..rows {
                let (wa, wb) = (&da[r * cols..][..cols], &db[r * cols..][..cols]);
                assert_row(&concat, r, wa, ty, "concat");
                assert_row(&concat, rows + r, wb, ty, "concat");
                assert_row(&inter, 2 * r, wa, ty, "interleaved");
                assert_row(&inter, 2 * r + 1, wb, ty, "interleaved");
            }
        }
    }

    #[test]
    fn fused_tensors_of_different_types_share_a_format_that_holds_both() {
        let cases = [
            (GgmlType::Q4_0, GgmlType::Q8_0, WeightFormat::Q8),
            (GgmlType::Q4K, GgmlType::Q6K, WeightFormat::Q8S16),
            (GgmlType::Q5_0, GgmlType::Q2K, WeightFormat::Q8S16),
            (GgmlType::Q4_1, GgmlType::F16, WeightFormat::F32),
            (GgmlType::F16, GgmlType::BF16, WeightFormat::F32),
        ];
        for (i, (ta, tb, format)) in cases.into_iter().enumerate() {
            let mut rng = rng(40 + i as u64);
            let (rows, cols) = (9, 256);
            let a = random_tensor(ta, rows, cols, &mut rng);
            let b = random_tensor(tb, rows, cols, &mut rng);
            let sources = [SourceRows { ty: ta, bytes: &a, rows }, SourceRows { ty: tb, bytes: &b, rows }];
            let m = pack(&sources, cols, RowOrder::Concat).unwrap();
            assert_eq!(m.format, format, "{ta} + {tb}");
            let (da, db) = (dequantize(ta, &a).unwrap(), dequantize(tb, &b).unwrap());
            for r in 0..rows {
                assert_row(&m, r, &da[r * cols..][..cols], ta, "first");
                assert_row(&m, rows + r, &db[r * cols..][..cols], tb, "second");
            }
        }
    }

    #[test]
    fn mismatched_inputs_are_refused() {
        let q4 = [0u8; 20 * 2];
        let short = [SourceRows { ty: GgmlType::Q4_1, bytes: &q4[..30], rows: 1 }];
        assert!(pack(&short, 64, RowOrder::Concat).is_err());
        let partial = [SourceRows { ty: GgmlType::Q4K, bytes: &[0; 144], rows: 1 }];
        assert!(pack(&partial, 128, RowOrder::Concat).unwrap_err().to_string().contains("Q4_K"));
        let iq2 = [SourceRows { ty: GgmlType::IQ2XXS, bytes: &[0; 66], rows: 1 }];
        assert!(pack(&iq2, 256, RowOrder::Concat).unwrap_err().to_string().contains("IQ2_XXS"));
    }
}
