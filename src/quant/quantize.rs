//! Quantizing f32 values into GGUF blocks (round to nearest, as each format defines its
//! blocks), for `hearth quantize`: Q8_0, Q4_0, Q4_K and F16.

use super::GgmlType;
use crate::{Error, Result};
use half::f16;

/// The types `hearth quantize` writes.
pub const QUANTIZE_TYPES: [GgmlType; 4] = [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4K, GgmlType::F16];

/// `values` (a whole number of `ty` blocks) as `ty`'s bytes.
pub fn quantize(ty: GgmlType, values: &[f32]) -> Result<Vec<u8>> {
    let per_block = ty.block_elements() as usize;
    if !values.len().is_multiple_of(per_block) {
        return Err(Error::Input(format!("{} values are not a whole number of {ty} blocks", values.len())));
    }
    let mut out = Vec::with_capacity(values.len() / per_block * ty.block_bytes() as usize);
    for block in values.chunks_exact(per_block) {
        match ty {
            GgmlType::F16 => out.extend(f16::from_f32(block[0]).to_le_bytes()),
            GgmlType::F32 => out.extend(block[0].to_le_bytes()),
            GgmlType::Q8_0 => q8_0(block, &mut out),
            GgmlType::Q4_0 => q4_0(block, &mut out),
            GgmlType::Q4K => q4_k(block, &mut out),
            other => {
                let names: Vec<&str> = QUANTIZE_TYPES.iter().map(|t| t.name()).collect();
                return Err(Error::Unsupported(format!(
                    "quantizing to {other} is not supported (supported: {})",
                    names.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

fn amax(block: &[f32]) -> f32 {
    block.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// d = max|x| / 127, q = round(x / d).
fn q8_0(block: &[f32], out: &mut Vec<u8>) {
    let d = amax(block) / 127.0;
    let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
    out.extend(f16::from_f32(d).to_le_bytes());
    out.extend(block.iter().map(|&x| (x * inv).round().clamp(-127.0, 127.0) as i8 as u8));
}

/// d = (the value of largest magnitude) / -8, q = round(x / d) + 8 in 0..15.
fn q4_0(block: &[f32], out: &mut Vec<u8>) {
    let extreme = block.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = extreme / -8.0;
    let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend(f16::from_f32(d).to_le_bytes());
    let q = |x: f32| ((x * inv + 8.5).floor() as i32).clamp(0, 15) as u8;
    out.extend((0..16).map(|j| q(block[j]) | q(block[j + 16]) << 4));
}

/// Eight sub-blocks of 32, each with a 6-bit scale and min of the superblock's (d, dmin):
/// weight = d * sc * q - dmin * m. Scales and mins from each sub-block's range.
fn q4_k(block: &[f32], out: &mut Vec<u8>) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    for (j, sub) in block.chunks_exact(32).enumerate() {
        let lo = sub.iter().fold(0.0f32, |m, &v| m.min(v));
        let hi = sub.iter().fold(f32::MIN, |m, &v| m.max(v));
        scales[j] = (hi - lo) / 15.0;
        mins[j] = -lo;
    }
    let max_scale = scales.iter().fold(0.0f32, |m, &v| m.max(v));
    let max_min = mins.iter().fold(0.0f32, |m, &v| m.max(v));
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    let six_bits = |v: f32, unit: f32| if unit > 0.0 { (v / unit).round().clamp(0.0, 63.0) as u8 } else { 0 };
    let sc: [u8; 8] = std::array::from_fn(|j| six_bits(scales[j], d.to_f32()));
    let m: [u8; 8] = std::array::from_fn(|j| six_bits(mins[j], dmin.to_f32()));
    out.extend(d.to_le_bytes());
    out.extend(dmin.to_le_bytes());
    // The 12 scale bytes: sub-blocks 0..3 in the low 6 bits of bytes 0..3 (scales) and 4..7
    // (mins); 4..7 in the nibbles of bytes 8..11 with their top 2 bits in bytes 0..7's top bits.
    let mut packed = [0u8; 12];
    for j in 0..4 {
        packed[j] = sc[j] | (sc[j + 4] >> 4) << 6;
        packed[j + 4] = m[j] | (m[j + 4] >> 4) << 6;
        packed[j + 8] = (sc[j + 4] & 0xF) | (m[j + 4] & 0xF) << 4;
    }
    out.extend(packed);
    let q = |x: f32, j: usize| {
        let step = d.to_f32() * sc[j] as f32;
        if step > 0.0 { ((x + dmin.to_f32() * m[j] as f32) / step).round().clamp(0.0, 15.0) as u8 } else { 0 }
    };
    // Four groups of 64: low nibbles are sub-block 2g, high nibbles 2g + 1.
    for g in 0..4 {
        out.extend((0..32).map(|l| q(block[64 * g + l], 2 * g) | q(block[64 * g + 32 + l], 2 * g + 1) << 4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::rng;
    use crate::quant::dequantize;
    use crate::quant::testing::random_vec;

    /// Round trip error of each value against its block's range.
    fn worst_error(ty: GgmlType, values: &[f32]) -> f32 {
        let back = dequantize(ty, &quantize(ty, values).unwrap()).unwrap();
        values.iter().zip(&back).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn round_trips_stay_within_half_a_step() {
        let mut rng = rng(70);
        let values: Vec<f32> = random_vec(1024, &mut rng).iter().map(|v| v * 0.5).collect();
        // |x| <= 0.5. Q8_0: half a step of max/127, plus d's f16 rounding times 127. Q4_0: its
        // 16 levels run from -8d to 7d, so the side opposite the extreme loses up to a whole
        // step of max/8. Q4_K: half of 1/15 of a sub-block's span (at most 1), plus the 6-bit
        // rounding of its scale and min. F16: half an ulp at 0.5.
        let f16_d = |max: f32| max * 2f32.powi(-11);
        assert!(worst_error(GgmlType::Q8_0, &values) <= 0.5 / 254.0 + f16_d(0.5) + 1e-6);
        assert!(worst_error(GgmlType::Q4_0, &values) <= 0.5 / 8.0 + f16_d(0.5) + 1e-6);
        assert!(worst_error(GgmlType::Q4K, &values) <= 1.0 / 30.0 + 1.0 / 63.0);
        assert!(worst_error(GgmlType::F16, &values) <= 0.5 * 2f32.powi(-11));
    }

    #[test]
    fn q4_k_keeps_a_blocks_shape() {
        // A ramp per sub-block: each sub-block's 16 levels should follow it closely.
        let values: Vec<f32> = (0..256).map(|i| (i % 32) as f32 / 31.0 - 0.3 * (i / 32) as f32).collect();
        assert!(worst_error(GgmlType::Q4K, &values) < 0.08);
    }

    #[test]
    fn partial_blocks_and_other_types_are_refused() {
        assert!(quantize(GgmlType::Q4K, &[0.0; 100]).is_err());
        let err = quantize(GgmlType::Q2K, &[0.0; 256]).unwrap_err().to_string();
        assert!(err.contains("Q2_K") && err.contains("Q4_K"), "{err}");
    }
}
