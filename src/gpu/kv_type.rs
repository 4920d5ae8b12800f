//! How the KV cache stores its keys and values (`--kv-type`). Every type keeps one texture row
//! per position (src/gpu/texture.rs, `KvTexture`):
//! - `f32`: `rgba32float`, texel x holding elements 4x..4x+3;
//! - `f16`: `rgba32uint`, texel x holding elements 8x..8x+7 as f16 pairs, word w elements
//!   8x+2w (low half) and 8x+2w+1, so a row's bytes are its f16 values in order: a software
//!   adapter fetches a texel at a time, and half the fetches of `rgba16float` made attention
//!   over a long context 1.5x faster on lavapipe (benches/kernels.rs attention);
//! - `q8_0`, `q4_0`: blocks of 32 elements with one scale each, as in GGUF: the quants in an
//!   `rgba32uint` texture (q8_0: texel x holds elements 16x..16x+15, a byte each, 4 per word
//!   from the low byte up; q4_0: texel x holds block x, word w elements 8w..8w+7, a nibble each
//!   from the low nibble up, stored as q + 8), the scales as f16 pairs in an `r32uint` texture
//!   beside it: word `head * ceil(head_dim / 64) + b / 2` of a row holds the scales of blocks
//!   b (low half) and b + 1 of that head, so each head's blocks are written by its own
//!   workgroup. Element = q * scale. A block never spans two heads (head sizes are multiples
//!   of 32 for these types).
//!
//! shaders/kv_read.wgsl reads each type, shaders/kv_write.wgsl writes it; `round_trip` is the
//! same rounding on the CPU, for references.

use super::Defines;
use crate::{Error, Result};
use half::f16;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KvType {
    F32,
    #[default]
    F16,
    Q8_0,
    Q4_0,
}

/// Elements per quantized block.
pub const KV_BLOCK: usize = 32;

impl KvType {
    pub const ALL: [KvType; 4] = [KvType::F32, KvType::F16, KvType::Q8_0, KvType::Q4_0];

    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Q8_0 => "q8_0",
            KvType::Q4_0 => "q4_0",
        }
    }

    /// The type a `--kv-type` value names.
    pub fn parse(s: &str) -> Result<KvType> {
        KvType::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let names: Vec<&str> = KvType::ALL.iter().map(|t| t.name()).collect();
            Error::Input(format!("unknown KV cache type {s:?}: one of {}", names.join(", ")))
        })
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, KvType::Q8_0 | KvType::Q4_0)
    }

    /// Refuses heads this type cannot store (a quantized block must not span two heads).
    pub fn check_head(self, head_dim: usize) -> Result<()> {
        if self.is_quantized() && !head_dim.is_multiple_of(KV_BLOCK) {
            return Err(Error::Unsupported(format!(
                "a {} KV cache needs heads of a multiple of {KV_BLOCK} elements, this model's have {head_dim}; \
                 use --kv-type f16",
                self.name()
            )));
        }
        Ok(())
    }

    /// The format of the texture holding the values (the quants, for quantized types).
    pub fn format(self) -> wgpu::TextureFormat {
        match self {
            KvType::F32 => wgpu::TextureFormat::Rgba32Float,
            KvType::F16 | KvType::Q8_0 | KvType::Q4_0 => wgpu::TextureFormat::Rgba32Uint,
        }
    }

    /// Texels of one row of `width` elements.
    pub fn texels(self, width: usize) -> u32 {
        (match self {
            KvType::F32 => width / 4,
            KvType::F16 => width / 8,
            KvType::Q8_0 => width / 16,
            KvType::Q4_0 => width / 32,
        }) as u32
    }

    /// Scale words of a row of `n_heads` heads of `head_dim` (0 for float types).
    pub fn scale_words(self, n_heads: usize, head_dim: usize) -> u32 {
        if self.is_quantized() { (n_heads * head_dim.div_ceil(2 * KV_BLOCK)) as u32 } else { 0 }
    }

    /// Bytes of one row of `n_heads` heads of `head_dim`, scales included.
    pub fn row_bytes(self, n_heads: usize, head_dim: usize) -> u64 {
        self.texels(n_heads * head_dim) as u64 * 16 + self.scale_words(n_heads, head_dim) as u64 * 4
    }

    /// The flags shaders/kv_read.wgsl and shaders/kv_write.wgsl select the type by.
    pub fn defines(self, d: Defines) -> Defines {
        d.flag("KV_F16", self == KvType::F16)
            .flag("KV_Q8", self == KvType::Q8_0)
            .flag("KV_Q4", self == KvType::Q4_0)
            .flag("KV_QUANT", self.is_quantized())
            .flag("KV_UINT", self.in_words())
    }

    /// Whether the value texture holds u32 words (every type but f32).
    pub fn in_words(self) -> bool {
        self != KvType::F32
    }

    /// `row` (heads of `head_dim`) as this type stores it and reads it back.
    pub fn round_trip(self, row: &mut [f32], head_dim: usize) {
        match self {
            KvType::F32 => {}
            KvType::F16 => row.iter_mut().for_each(|x| *x = f16::from_f32(*x).to_f32()),
            KvType::Q8_0 | KvType::Q4_0 => {
                for head in row.chunks_mut(head_dim) {
                    for block in head.chunks_mut(KV_BLOCK) {
                        let (quants, scale) = self.quantize_block(block);
                        block.iter_mut().zip(quants).for_each(|(x, q)| *x = q as f32 * scale);
                    }
                }
            }
        }
    }

    /// A block's quants (signed) and its scale, rounded to f16 as stored; as kv_write.wgsl
    /// computes them: q8_0 scales the largest magnitude to 127, q4_0 the element of largest
    /// magnitude to -8 (GGUF's rules).
    pub fn quantize_block(self, block: &[f32]) -> (Vec<i32>, f32) {
        let (d, lo, hi) = if self == KvType::Q4_0 {
            let extreme = block.iter().fold(0.0f32, |m, &x| if x.abs() > m.abs() { x } else { m });
            (extreme / -8.0, -8, 7)
        } else {
            (block.iter().fold(0.0f32, |m, &x| m.max(x.abs())) / 127.0, -127, 127)
        };
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        let quants = block.iter().map(|&x| ((x * inverse).round() as i32).clamp(lo, hi)).collect();
        (quants, f16::from_f32(d).to_f32())
    }

    /// A row of heads of `head_dim` in this type's layout: the value texture's bytes and the
    /// scale texture's (empty for float types); for tests, which fill caches from the CPU.
    pub fn encode_row(self, row: &[f32], head_dim: usize) -> (Vec<u8>, Vec<u8>) {
        match self {
            KvType::F32 => (bytemuck::cast_slice(row).to_vec(), Vec::new()),
            KvType::F16 => (row.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect(), Vec::new()),
            KvType::Q8_0 | KvType::Q4_0 => {
                let (mut values, mut scales) = (Vec::new(), Vec::new());
                for head in row.chunks(head_dim) {
                    let blocks: Vec<(Vec<i32>, f32)> = head.chunks(KV_BLOCK).map(|b| self.quantize_block(b)).collect();
                    for (quants, _) in &blocks {
                        if self == KvType::Q8_0 {
                            values.extend(quants.iter().map(|&q| q as i8 as u8));
                        } else {
                            values.extend(quants.chunks(2).map(|p| ((p[0] + 8) | ((p[1] + 8) << 4)) as u8));
                        }
                    }
                    for pair in blocks.chunks(2) {
                        let half = |i: usize| pair.get(i).map_or(0, |(_, d)| f16::from_f32(*d).to_bits() as u32);
                        scales.extend((half(0) | (half(1) << 16)).to_le_bytes());
                    }
                }
                (values, scales)
            }
        }
    }

    /// A row as the GPU stores it (`values`, and `scales` for quantized types) decoded to
    /// floats (for tests).
    pub fn decode_row(self, values: &[u8], scales: &[u8], head_dim: usize) -> Vec<f32> {
        match self {
            KvType::F32 => bytemuck::pod_collect_to_vec(values),
            KvType::F16 => values.chunks(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            KvType::Q8_0 | KvType::Q4_0 => {
                let quants: Vec<i32> = if self == KvType::Q8_0 {
                    values.iter().map(|&b| b as i8 as i32).collect()
                } else {
                    values.iter().flat_map(|&b| [(b & 15) as i32 - 8, (b >> 4) as i32 - 8]).collect()
                };
                let words: Vec<u32> = bytemuck::pod_collect_to_vec(scales);
                let per_head = head_dim.div_ceil(2 * KV_BLOCK);
                quants
                    .chunks(KV_BLOCK)
                    .enumerate()
                    .flat_map(|(b, block)| {
                        let (head, in_head) = (b / (head_dim / KV_BLOCK), b % (head_dim / KV_BLOCK));
                        let word = words.get(head * per_head + in_head / 2).copied().unwrap_or(0);
                        let scale = f16::from_bits((word >> (16 * (in_head % 2))) as u16).to_f32();
                        block.iter().map(move |&q| q as f32 * scale)
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_ones_are_refused() {
        for t in KvType::ALL {
            assert_eq!(KvType::parse(t.name()).unwrap(), t);
        }
        assert_eq!(KvType::parse("Q8_0").unwrap(), KvType::Q8_0);
        let e = KvType::parse("q5_1").unwrap_err().to_string();
        assert!(e.contains("q5_1") && e.contains("q4_0"), "{e}");
    }

    #[test]
    fn quantized_rows_keep_each_block_within_a_step() {
        let row: Vec<f32> =
            (0..128).map(|i| ((i * 37 % 101) as f32 - 50.0) * if i < 64 { 0.01 } else { 3.0 }).collect();
        // q4_0 maps the extreme to -8, so its opposite (+8) is clamped to 7: a whole step.
        for (t, steps, within) in [(KvType::Q8_0, 127.0, 0.5), (KvType::Q4_0, 8.0, 1.0)] {
            let mut got = row.clone();
            t.round_trip(&mut got, 64);
            for (block, want) in got.chunks(32).zip(row.chunks(32)) {
                let amax = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let step = amax / steps;
                for (g, w) in block.iter().zip(want) {
                    // The scale is stored in f16: up to 2^-11 of it off, for each of the steps.
                    let bound = within * step + amax / 1024.0;
                    assert!((g - w).abs() <= bound, "{t:?}: {g} for {w} (step {step})");
                }
            }
        }
        assert_eq!(KvType::Q8_0.row_bytes(2, 64), 2 * 64 + 2 * 4);
        assert_eq!(KvType::Q4_0.row_bytes(1, 96), 48 + 2 * 4);
        assert_eq!(KvType::F16.row_bytes(2, 64), 256);
        assert!(KvType::Q4_0.check_head(80).is_err() && KvType::F16.check_head(80).is_ok());
    }
}
