//! The GPU layout of weight matrices, and the one repack from GGUF blocks into it.
//!
//! Every GGUF type keeps (about) its own size on the GPU: its quants are stored at their own
//! bit width and its scales as the file has them, and the shaders (`shaders/weights.wgsl`)
//! unpack both. Only the arrangement changes, so that 4-byte words line up and the rows a
//! kernel works on together are read together:
//!
//! * rows are grouped in *octets* of [`OCTET`] rows, octets in tiles of [`TILE_ROWS`] rows
//!   (the row count is padded with zero rows);
//! * a *unit* is one octet's block `b` (32 weights of each of its 8 rows), numbered
//!   `(tile * blocks_per_row + b) * 8 + octet_in_tile`, so the octets of a tile, which the
//!   invocations of a workgroup take, are neighbours at every block;
//! * a unit's quant words are stored word-major: word `k` of row `j` at
//!   `(unit * quant_words + k) * 8 + j`, so one `vec4<u32>` texel holds word `k` of four rows;
//! * scales likewise, per *scale unit*: a block for the 32-weight formats, a 256-weight
//!   superblock for the K-quants and IQ4_XS, whose scale bytes are copied from the file as
//!   they are (a record of [`Scales::record_words`] words per row).
//!
//! Quant widths ([`Quants`]): 2, 3, 4, 5, 6 or 8 bits, a 4-bit index into IQ4_NL's levels, or
//! f16, bf16, f32. Element `e` of a block: 4-bit words hold 8 elements (`e` at bits
//! `4 (e % 8)` of word `e / 8`); 2-bit planes 16 (`2 (e % 16)` of word `e / 16`); 1-bit planes
//! 32 (bit `e`). Q5 is a 4-bit plane (words 0..4) plus a 1-bit plane (word 4); Q6 a 4-bit
//! plane plus a 2-bit plane (words 4, 5); Q3 a 2-bit plane (words 0, 1) plus a 1-bit plane
//! (word 2); Q8 holds 4 bytes a word. Quants are stored unsigned where the format's are, the
//! offset going into the scales: a weight is `d * q + m`.
//!
//! Tensors fused into one matrix (Q|K|V, gate|up) of different types meet in one widened
//! format, signed bytes with the narrowest scales that hold every part's (or f32 where floats
//! are involved): the one case where the GPU holds more than the file.

use super::GgmlType;
use crate::quant::dequant::{IQ4_NL_LEVELS, MXFP4_LEVELS};
use crate::{Error, Result};
use half::f16;

pub const TILE_ROWS: usize = 64;
pub const BLOCK: usize = 32;
pub const OCTET: usize = 8;
/// Blocks in the scale unit of the superblock formats.
pub const SUPERBLOCK_BLOCKS: usize = 8;

/// The tensor types hearth runs on the GPU.
pub const SUPPORTED_TYPES: [GgmlType; 16] = [
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
    GgmlType::MXFP4,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F32,
];

/// How a block's 32 quants are stored (see the module comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quants {
    Q2,
    Q3,
    Q4,
    Q5,
    Q6,
    /// Signed bytes.
    Q8,
    /// 4-bit indices into IQ4_NL's levels.
    Iq4,
    /// 4-bit indices into MXFP4's FP4 levels (doubled to integers).
    Mxfp4,
    F16,
    Bf16,
    F32,
}

impl Quants {
    /// `u32` words per block of one row.
    pub fn words(self) -> usize {
        match self {
            Quants::Q2 => 2,
            Quants::Q3 => 3,
            Quants::Q4 | Quants::Iq4 | Quants::Mxfp4 => 4,
            Quants::Q5 => 5,
            Quants::Q6 => 6,
            Quants::Q8 => 8,
            Quants::F16 | Quants::Bf16 => 16,
            Quants::F32 => 32,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Quants::F16 | Quants::Bf16 | Quants::F32)
    }

    /// Element `e`'s stored value (before scaling) from a row's words of one block.
    fn value(self, w: &[u32], e: usize) -> f32 {
        let nibble = |e: usize| (w[e / 8] >> (4 * (e % 8))) & 0xF;
        let crumb = |e: usize| (w[e / 16] >> (2 * (e % 16))) & 3;
        match self {
            Quants::Q2 => crumb(e) as f32,
            Quants::Q3 => (crumb(e) | ((w[2] >> e) & 1) << 2) as f32,
            Quants::Q4 => nibble(e) as f32,
            Quants::Q5 => (nibble(e) | ((w[4] >> e) & 1) << 4) as f32,
            Quants::Q6 => (nibble(e) | ((w[4 + e / 16] >> (2 * (e % 16))) & 3) << 4) as f32,
            Quants::Q8 => (w[e / 4] >> (8 * (e % 4))) as u8 as i8 as f32,
            Quants::Iq4 => IQ4_NL_LEVELS[nibble(e) as usize] as f32,
            Quants::Mxfp4 => MXFP4_LEVELS[nibble(e) as usize] as f32,
            Quants::F16 => f16::from_bits((w[e / 2] >> (16 * (e % 2))) as u16).to_f32(),
            Quants::Bf16 => f32::from_bits((w[e / 2] >> (16 * (e % 2))) << 16),
            Quants::F32 => f32::from_bits(w[e]),
        }
    }

    /// A block's words from its 32 stored values (bit patterns for floats).
    pub(super) fn encode(self, q: &[u32; 32], words: &mut [u32]) {
        let fill = |words: &mut [u32], per_word: usize, bits: usize, value: &dyn Fn(usize) -> u32| {
            for (w, word) in words.iter_mut().enumerate() {
                *word = (0..per_word).fold(0, |acc, i| acc | value(w * per_word + i) << (bits * i));
            }
        };
        match self {
            Quants::Q2 => fill(words, 16, 2, &|e| q[e] & 3),
            Quants::Q3 => {
                fill(&mut words[..2], 16, 2, &|e| q[e] & 3);
                fill(&mut words[2..], 32, 1, &|e| (q[e] >> 2) & 1);
            }
            Quants::Q4 | Quants::Iq4 | Quants::Mxfp4 => fill(words, 8, 4, &|e| q[e] & 0xF),
            Quants::Q5 => {
                fill(&mut words[..4], 8, 4, &|e| q[e] & 0xF);
                fill(&mut words[4..], 32, 1, &|e| (q[e] >> 4) & 1);
            }
            Quants::Q6 => {
                fill(&mut words[..4], 8, 4, &|e| q[e] & 0xF);
                fill(&mut words[4..], 16, 2, &|e| (q[e] >> 4) & 3);
            }
            Quants::Q8 => fill(words, 4, 8, &|e| q[e] & 0xFF),
            Quants::F16 | Quants::Bf16 => fill(words, 2, 16, &|e| q[e] & 0xFFFF),
            Quants::F32 => fill(words, 1, 32, &|e| q[e]),
        }
    }
}

/// How a block's scales are stored: `d` and `m` of `d * q + m` for each 16 weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scales {
    /// Floats: no scales.
    None,
    /// One f16 `d` per block; `m = offset * d` (Q4_0: -8, Q5_0: -16, Q8_0 and IQ4_NL: 0).
    D { offset: i8 },
    /// An f16 (d, m) pair per block (Q4_1, Q5_1).
    Dm,
    /// An f16 (d, m) pair per 16 weights (fused tensors of different types).
    Dm16,
    /// Per superblock, the file's own 16 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales
    /// and mins (Q4_K, Q5_K).
    K4,
    /// Per superblock: 16 signed 8-bit scales, then f16 d (Q6_K, quants biased by 32).
    K6,
    /// Per superblock: 12 bytes of 6-bit scales, then f16 d (Q3_K, quants biased by 4).
    K3,
    /// Per superblock: 16 bytes of 4-bit scale | 4-bit min << 4, then f16 d, f16 dmin (Q2_K).
    K2,
    /// Per superblock: f16 d, 16 bits of high scale bits, 4 bytes of low scale nibbles (IQ4_XS).
    Xs,
}

impl Scales {
    /// Words per row in one scale unit, as halves: the record formats' per superblock, the
    /// others' per block (`D` takes half a word).
    pub fn half_words(self) -> usize {
        match self {
            Scales::None => 0,
            Scales::D { .. } => 1,
            Scales::Dm => 2,
            Scales::Dm16 | Scales::Xs => 4,
            Scales::K4 | Scales::K3 => 8,
            Scales::K6 | Scales::K2 => 10,
        }
    }

    /// Words of the file's superblock copied into a record, padded to whole words.
    pub fn record_words(self) -> usize {
        self.half_words() / 2
    }

    /// Whether the scale unit is a superblock of [`SUPERBLOCK_BLOCKS`] blocks.
    pub fn per_superblock(self) -> bool {
        matches!(self, Scales::K4 | Scales::K6 | Scales::K3 | Scales::K2 | Scales::Xs)
    }

    /// Blocks per scale unit.
    pub fn unit_blocks(self) -> usize {
        if self.per_superblock() { SUPERBLOCK_BLOCKS } else { 1 }
    }

    /// (d, m) of the two halves of block `j` of a scale unit, from one row's scale words.
    fn of_block(self, w: &[u32], j: usize) -> [(f32, f32); 2] {
        let half = |x: u32, hi: bool| f16::from_bits((if hi { x >> 16 } else { x }) as u16).to_f32();
        let byte = |i: usize| (w[i / 4] >> (8 * (i % 4))) & 0xFF;
        let same = |d: f32, m: f32| [(d, m); 2];
        match self {
            Scales::None => same(1.0, 0.0),
            Scales::D { offset } => {
                let d = half(w[0], false);
                same(d, offset as f32 * d)
            }
            Scales::Dm => same(half(w[0], false), half(w[0], true)),
            Scales::Dm16 => [(half(w[0], false), half(w[0], true)), (half(w[1], false), half(w[1], true))],
            Scales::K4 => {
                let s = |i: usize| byte(4 + i) as u8;
                let (sc, mn) = if j < 4 {
                    (s(j) & 63, s(j + 4) & 63)
                } else {
                    ((s(j + 4) & 0xF) | ((s(j - 4) >> 6) << 4), (s(j + 4) >> 4) | ((s(j) >> 6) << 4))
                };
                same(half(w[0], false) * sc as f32, -(half(w[0], true) * mn as f32))
            }
            Scales::K6 => {
                let d = half(w[4], false);
                std::array::from_fn(|h| {
                    let sc = d * byte(2 * j + h) as u8 as i8 as f32;
                    (sc, -32.0 * sc)
                })
            }
            Scales::K3 => {
                let d = half(w[3], false);
                std::array::from_fn(|h| {
                    let s = 2 * j + h;
                    let low = (byte(s % 8) >> (4 * (s / 8))) & 0xF;
                    let high = (byte(8 + s % 4) >> (2 * (s / 4))) & 3;
                    let sc = d * ((low | high << 4) as f32 - 32.0);
                    (sc, -4.0 * sc)
                })
            }
            Scales::K2 => {
                let (d, dmin) = (half(w[4], false), half(w[4], true));
                std::array::from_fn(|h| {
                    let b = byte(2 * j + h);
                    (d * (b & 0xF) as f32, -(dmin * (b >> 4) as f32))
                })
            }
            Scales::Xs => {
                let low = (w[1] >> (4 * j)) & 0xF;
                let high = (w[0] >> (16 + 2 * j)) & 3;
                same(half(w[0], false) * ((low | high << 4) as f32 - 32.0), 0.0)
            }
        }
    }
}

/// A GPU weight format: how quants and scales are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WeightFormat {
    pub quants: Quants,
    pub scales: Scales,
}

/// The widened formats fused tensors of different types meet in: signed bytes with the
/// narrowest scales that hold every part's (a d per block where no part has an m, a (d, m)
/// pair per block, or per 16 weights where a part is a K-quant), or f32 where one is a float.
const COMMON_D: WeightFormat = WeightFormat { quants: Quants::Q8, scales: Scales::D { offset: 0 } };
const COMMON_DM: WeightFormat = WeightFormat { quants: Quants::Q8, scales: Scales::Dm };
const COMMON_DM16: WeightFormat = WeightFormat { quants: Quants::Q8, scales: Scales::Dm16 };
const COMMON_FLOAT: WeightFormat = WeightFormat { quants: Quants::F32, scales: Scales::None };

impl WeightFormat {
    pub fn for_type(ty: GgmlType) -> Result<WeightFormat> {
        let f = |quants, scales| Ok(WeightFormat { quants, scales });
        match ty {
            GgmlType::Q4_0 => f(Quants::Q4, Scales::D { offset: -8 }),
            GgmlType::Q4_1 => f(Quants::Q4, Scales::Dm),
            GgmlType::Q5_0 => f(Quants::Q5, Scales::D { offset: -16 }),
            GgmlType::Q5_1 => f(Quants::Q5, Scales::Dm),
            GgmlType::Q8_0 => f(Quants::Q8, Scales::D { offset: 0 }),
            GgmlType::IQ4NL => f(Quants::Iq4, Scales::D { offset: 0 }),
            GgmlType::Q2K => f(Quants::Q2, Scales::K2),
            GgmlType::Q3K => f(Quants::Q3, Scales::K3),
            GgmlType::Q4K => f(Quants::Q4, Scales::K4),
            GgmlType::Q5K => f(Quants::Q5, Scales::K4),
            GgmlType::Q6K => f(Quants::Q6, Scales::K6),
            GgmlType::IQ4XS => f(Quants::Iq4, Scales::Xs),
            // The E8M0 scale becomes an f16 power of two (exact from 2^-24 to 2^15).
            GgmlType::MXFP4 => f(Quants::Mxfp4, Scales::D { offset: 0 }),
            GgmlType::F16 => f(Quants::F16, Scales::None),
            GgmlType::BF16 => f(Quants::Bf16, Scales::None),
            GgmlType::F32 => f(Quants::F32, Scales::None),
            other => {
                let supported: Vec<&str> = SUPPORTED_TYPES.iter().map(|t| t.name()).collect();
                Err(Error::Unsupported(format!(
                    "tensor type {other} is not supported yet (supported: {})",
                    supported.join(", ")
                )))
            }
        }
    }

    /// The format tensors of these types share when fused into one matrix: their own where
    /// all are of one type, else the widened common one.
    pub fn for_types(types: &[GgmlType]) -> Result<WeightFormat> {
        let first = types.first().ok_or_else(|| Error::Unsupported("no tensors to pack".into()))?;
        let formats = types.iter().map(|&t| WeightFormat::for_type(t)).collect::<Result<Vec<_>>>()?;
        let any = |f: &dyn Fn(&WeightFormat) -> bool| formats.iter().any(f);
        Ok(if types.iter().all(|t| t == first) {
            formats[0]
        } else if any(&|f| f.quants.is_float()) {
            COMMON_FLOAT
        } else if any(&|f| f.scales.per_superblock()) {
            COMMON_DM16
        } else if any(&|f| f.scales == Scales::Dm) {
            COMMON_DM
        } else {
            COMMON_D
        })
    }

    /// Bytes per row of `cols` weights, padding aside: quants plus scales.
    pub fn row_bytes(self, cols: usize) -> u64 {
        let [quants, scales] = self.row_bytes_apart(cols as u64);
        quants + scales
    }

    /// Words of quants and of scales that `rows` rows of `cols` weights take packed, their
    /// rows padded to whole tiles.
    pub fn packed_words(self, rows: usize, cols: usize) -> [usize; 2] {
        let padded_rows = rows.div_ceil(TILE_ROWS) * TILE_ROWS;
        let blocks = cols / BLOCK;
        let units = blocks.div_ceil(self.scales.unit_blocks());
        [padded_rows * blocks * self.quants.words(), (padded_rows * units * self.scales.half_words()).div_ceil(2)]
    }

    /// A row's bytes of quant words and of scale words, apart (they live in separate textures
    /// or buffers); saturating, for sizes taken from a file's header before they are checked.
    pub fn row_bytes_apart(self, cols: u64) -> [u64; 2] {
        let blocks = cols / BLOCK as u64;
        let units = blocks.div_ceil(self.scales.unit_blocks() as u64);
        [
            blocks.saturating_mul(self.quants.words() as u64 * 4),
            units.saturating_mul(self.scales.half_words() as u64 * 2),
        ]
    }

    /// The preprocessor flags that select this format in `shaders/weights.wgsl`.
    /// The level table of a 4-bit index format as four words of signed bytes (levels 4k..4k+3
    /// in word k), for `weights.wgsl`'s `LV0`..`LV3`.
    pub fn level_words(self) -> Option<[u32; 4]> {
        let table = match self.quants {
            Quants::Iq4 => IQ4_NL_LEVELS,
            Quants::Mxfp4 => MXFP4_LEVELS,
            _ => return None,
        };
        Some(std::array::from_fn(|k| u32::from_le_bytes(std::array::from_fn(|b| table[4 * k + b] as u8))))
    }

    pub fn shader_flags(self) -> [&'static str; 2] {
        let q = match self.quants {
            Quants::Q2 => "Q_Q2",
            Quants::Q3 => "Q_Q3",
            Quants::Q4 => "Q_Q4",
            Quants::Q5 => "Q_Q5",
            Quants::Q6 => "Q_Q6",
            Quants::Q8 => "Q_Q8",
            Quants::Iq4 | Quants::Mxfp4 => "Q_LEVELS",
            Quants::F16 => "Q_F16",
            Quants::Bf16 => "Q_BF16",
            Quants::F32 => "Q_F32",
        };
        let s = match self.scales {
            Scales::None => "S_NONE",
            Scales::D { .. } => "S_D",
            Scales::Dm => "S_DM",
            Scales::Dm16 => "S_DM16",
            Scales::K4 => "S_K4",
            Scales::K6 => "S_K6",
            Scales::K3 => "S_K3",
            Scales::K2 => "S_K2",
            Scales::Xs => "S_XS",
        };
        [q, s]
    }

    /// `m / d` of the `D` scales (the shaders' `S_OFFSET`).
    pub fn offset(self) -> f32 {
        match self.scales {
            Scales::D { offset } => offset as f32,
            _ => 0.0,
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

/// Where row `row` sits: its octet's number among all octets, and its place in the octet.
pub(super) fn octet_of(row: usize) -> (usize, usize) {
    (row / OCTET, row % OCTET)
}

/// The unit number of an octet's `index`-th block (or scale unit) in a matrix of `per_row` of
/// them per row.
pub(super) fn unit(octet: usize, index: usize, per_row: usize) -> usize {
    let per_tile = TILE_ROWS / OCTET;
    ((octet / per_tile) * per_row + index) * per_tile + octet % per_tile
}

impl PackedMatrix {
    pub fn blocks_per_row(&self) -> usize {
        self.cols / BLOCK
    }

    pub fn scale_units_per_row(&self) -> usize {
        self.blocks_per_row().div_ceil(self.format.scales.unit_blocks())
    }

    pub fn tiles(&self) -> usize {
        self.rows.div_ceil(TILE_ROWS)
    }

    /// Row `row`'s words of block `b`.
    fn quant_words(&self, row: usize, b: usize) -> Vec<u32> {
        let (octet, j) = octet_of(row);
        let n = self.format.quants.words();
        let u = unit(octet, b, self.blocks_per_row());
        (0..n).map(|k| self.quants[(u * n + k) * OCTET + j]).collect()
    }

    /// Row `row`'s scale words of scale unit `s` (`D` scales: its half in the low bits).
    fn scale_words(&self, row: usize, s: usize) -> Vec<u32> {
        let (octet, j) = octet_of(row);
        let u = unit(octet, s, self.scale_units_per_row());
        match self.format.scales {
            Scales::None => vec![],
            Scales::D { .. } => vec![self.scales[(u * OCTET + j) / 2] >> (16 * (j % 2))],
            other => {
                let n = other.record_words();
                (0..n).map(|k| self.scales[(u * n + k) * OCTET + j]).collect()
            }
        }
    }

    /// One weight read back from the packed arrays: what a shader sees.
    pub fn get(&self, row: usize, col: usize) -> f32 {
        let (b, e) = (col / BLOCK, col % BLOCK);
        let per_unit = self.format.scales.unit_blocks();
        let scales = self.format.scales.of_block(&self.scale_words(row, b / per_unit), b % per_unit);
        let (d, m) = scales[e / 16];
        d * self.format.quants.value(&self.quant_words(row, b), e) + m
    }

    /// Bytes this matrix occupies on the GPU.
    pub fn gpu_bytes(&self) -> u64 {
        ((self.quants.len() + self.scales.len()) * 4) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::rng;
    use crate::quant::dequantize;
    use crate::quant::pack::{RowOrder, SourceRows, pack};
    use crate::quant::testing::random_tensor;

    /// Asserts that `get(row, c)` reads back `want` (a row of dequantized weights) within
    /// `tol` times the row's largest weight.
    fn assert_row(m: &PackedMatrix, row: usize, want: &[f32], tol: f32, what: &str) {
        let tol = want.iter().fold(0f32, |a, w| a.max(w.abs())) * tol;
        for (c, &w) in want.iter().enumerate() {
            let got = m.get(row, c);
            assert!((got - w).abs() <= tol, "{what} row {row} col {c}: {got} != {w}");
        }
    }

    #[test]
    fn every_type_is_stored_at_its_own_size() {
        for ty in SUPPORTED_TYPES {
            let cols = 4096;
            let format = WeightFormat::for_type(ty).unwrap();
            let file = ty.bytes_for(cols as u64).unwrap() as f64;
            let gpu = format.row_bytes(cols) as f64;
            // MXFP4's one-byte scale takes a half word (an f16), the smallest scale slot: 18
            // bytes per block for the file's 17.
            let over = if ty == GgmlType::MXFP4 { 18.0 / 17.0 } else { 1.05 };
            assert!(
                gpu <= file * over && gpu >= file * 0.95,
                "{ty}: {gpu} bytes per row on the GPU, {file} in the file"
            );
            // What pack allocates agrees with row_bytes (one full tile, so no padding).
            let mut rng = rng(7);
            let bytes = random_tensor(ty, TILE_ROWS, cols, &mut rng);
            let m = pack(&[SourceRows { ty, bytes: &bytes, rows: TILE_ROWS }], cols, RowOrder::Concat).unwrap();
            assert_eq!(m.gpu_bytes(), format.row_bytes(cols) * TILE_ROWS as u64, "{ty}");
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
            // The K-quants' offsets move into the scales (d q + m for d (q - 32)): f32 rounding.
            let tol = if Scales::per_superblock(concat.format.scales) { 1e-6 } else { 0.0 };
            for r in 0..rows {
                let (wa, wb) = (&da[r * cols..][..cols], &db[r * cols..][..cols]);
                assert_row(&concat, r, wa, tol, &format!("{ty} concat"));
                assert_row(&concat, rows + r, wb, tol, &format!("{ty} concat"));
                assert_row(&inter, 2 * r, wa, tol, &format!("{ty} interleaved"));
                assert_row(&inter, 2 * r + 1, wb, tol, &format!("{ty} interleaved"));
            }
        }
    }

    #[test]
    fn fused_tensors_of_different_types_share_a_format_that_holds_both() {
        let cases = [
            (GgmlType::Q4_0, GgmlType::Q8_0, COMMON_D),
            (GgmlType::Q5_0, GgmlType::IQ4NL, COMMON_D),
            (GgmlType::IQ4NL, GgmlType::Q5_1, COMMON_DM),
            (GgmlType::Q4K, GgmlType::Q6K, COMMON_DM16),
            (GgmlType::Q5_0, GgmlType::Q2K, COMMON_DM16),
            (GgmlType::Q4_1, GgmlType::F16, COMMON_FLOAT),
            (GgmlType::F16, GgmlType::BF16, COMMON_FLOAT),
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
            // Widened K-quant scales are products rounded to f16: within 2^-10 of the row's size.
            let tol = |ty: GgmlType| {
                if format == COMMON_DM16 && crate::quant::dequant::SUPERBLOCK_TYPES.contains(&ty) {
                    1.0 / 1024.0
                } else {
                    0.0
                }
            };
            for r in 0..rows {
                assert_row(&m, r, &da[r * cols..][..cols], tol(ta), &format!("{ta} first"));
                assert_row(&m, rows + r, &db[r * cols..][..cols], tol(tb), &format!("{tb} second"));
            }
        }
    }

    #[test]
    fn concatenated_tensors_of_different_types_keep_their_own_sizes_as_parts() {
        use crate::quant::pack_parts;
        let mut rng = rng(60);
        let cols = 512;
        // Gemma 3's Q|K|V (Q5_0, Q5_0, Q8_0) and Q4_K_M's (Q4_K, Q4_K, Q6_K).
        for (qk, v) in [(GgmlType::Q5_0, GgmlType::Q8_0), (GgmlType::Q4K, GgmlType::Q6K)] {
            let (q, k, vv) = (
                random_tensor(qk, 64, cols, &mut rng),
                random_tensor(qk, 16, cols, &mut rng),
                random_tensor(v, 16, cols, &mut rng),
            );
            let sources = [
                SourceRows { ty: qk, bytes: &q, rows: 64 },
                SourceRows { ty: qk, bytes: &k, rows: 16 },
                SourceRows { ty: v, bytes: &vv, rows: 16 },
            ];
            let parts = pack_parts(&sources, cols, RowOrder::Concat).unwrap();
            let formats: Vec<WeightFormat> = parts.iter().map(|p| p.format).collect();
            assert_eq!(
                formats,
                [WeightFormat::for_type(qk).unwrap(), WeightFormat::for_type(v).unwrap()],
                "{qk} + {v}"
            );
            assert_eq!(parts.iter().map(|p| p.rows).collect::<Vec<_>>(), [80, 16]);
            let file: usize = [&q, &k, &vv].iter().map(|b| b.len()).sum();
            let gpu = parts.iter().map(|p| p.format.row_bytes(cols) * p.rows as u64).sum::<u64>() as f64;
            assert!(gpu <= file as f64 * 1.05, "{qk} + {v}: {gpu} bytes on the GPU for {file} in the file");
            let dv = dequantize(v, &vv).unwrap();
            assert_row(&parts[1], 3, &dv[3 * cols..][..cols], 0.0, "the second part's rows");
        }
        // Rows that would not start the second part at an octet, and interleaved rows, stay one
        // widened part.
        let (a, b) =
            (random_tensor(GgmlType::Q4_0, 12, cols, &mut rng), random_tensor(GgmlType::Q8_0, 12, cols, &mut rng));
        let odd = [
            SourceRows { ty: GgmlType::Q4_0, bytes: &a, rows: 12 },
            SourceRows { ty: GgmlType::Q8_0, bytes: &b, rows: 12 },
        ];
        for order in [RowOrder::Concat, RowOrder::Interleave] {
            let parts = pack_parts(&odd, cols, order).unwrap();
            assert_eq!(parts.iter().map(|p| p.format).collect::<Vec<_>>(), [COMMON_D], "{order:?}");
        }
    }

    #[test]
    fn mxfp4_scales_beyond_f16_are_refused_and_tiny_ones_round_to_zero() {
        // One row of one block: exponent byte, 16 bytes of levels (index 7: 12, the largest).
        let block = |e: u8| [&[e][..], &[0x77; 16][..]].concat();
        let pack_one =
            |e: u8| pack(&[SourceRows { ty: GgmlType::MXFP4, bytes: &block(e), rows: 1 }], 32, RowOrder::Concat);
        // 2^15, the largest f16 power of two, holds exactly; 2^16 is refused.
        assert_eq!(pack_one(143).unwrap().get(0, 0), 12.0 * 32768.0);
        let err = pack_one(144).unwrap_err().to_string();
        assert!(err.contains("MXFP4 block scale of 2^16"), "{err}");
        // 2^-24 is f16's smallest subnormal; below it the block's weights are 0.
        assert_eq!(pack_one(104).unwrap().get(0, 0), 12.0 * (-24f32).exp2());
        assert_eq!(pack_one(103).unwrap().get(0, 0), 0.0);
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
