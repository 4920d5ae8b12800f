//! Random, valid tensors of any supported type, for tests and benchmarks.

use super::GgmlType;
use half::f16;
use rand::RngExt;

/// Bytes of a `rows x cols` tensor of type `ty` with random but realistic contents.
pub fn random_tensor(ty: GgmlType, rows: usize, cols: usize, rng: &mut impl rand::Rng) -> Vec<u8> {
    let n = rows * cols;
    let mut out = Vec::new();
    let push_f16 = |out: &mut Vec<u8>, v: f32| out.extend_from_slice(&f16::from_f32(v).to_le_bytes());
    match ty {
        GgmlType::F32 => (0..n).for_each(|_| out.extend_from_slice(&rng.random_range(-1.0f32..1.0).to_le_bytes())),
        GgmlType::F16 => (0..n).for_each(|_| push_f16(&mut out, rng.random_range(-1.0..1.0))),
        GgmlType::BF16 => {
            (0..n).for_each(|_| out.extend_from_slice(&half::bf16::from_f32(rng.random_range(-1.0..1.0)).to_le_bytes()))
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 | GgmlType::IQ4NL => {
            // Scales of the size real models have: weights within about ±1.
            let max_d = match ty {
                GgmlType::Q8_0 | GgmlType::IQ4NL => 0.008,
                GgmlType::Q5_0 | GgmlType::Q5_1 => 0.03,
                _ => 0.06,
            };
            for _ in 0..n / 32 {
                push_f16(&mut out, rng.random_range(0.001..max_d));
                if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                    push_f16(&mut out, rng.random_range(-0.5..0.0));
                }
                let quant_bytes = match ty {
                    GgmlType::Q8_0 => 32,
                    GgmlType::Q5_0 | GgmlType::Q5_1 => 20,
                    _ => 16,
                };
                (0..quant_bytes).for_each(|_| out.push(rng.random()));
            }
        }
        GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K | GgmlType::IQ4XS => {
            // Random quant and scale bytes; f16 super-scales (d, and dmin where the type has one)
            // sized so that weights land within about ±1.
            let (d_range, dmin_range) = match ty {
                GgmlType::Q2K => (0.005..0.05, Some(0.005..0.05)),
                // Q3_K's scales reach ±32 and its quants ±4.
                GgmlType::Q3K => (0.001..0.008, None),
                GgmlType::Q4K => (0.0005..0.002, Some(0.0005..0.002)),
                GgmlType::Q5K => (0.0002..0.001, Some(0.0005..0.002)),
                // Q6_K's scales are kept within ±64 below.
                GgmlType::Q6K => (0.0002..0.0005, None),
                // IQ4_XS: sub-block scales reach ±32, levels ±127.
                _ => (0.0001..0.0003, None),
            };
            let bb = ty.block_bytes() as usize;
            for _ in 0..n / 256 {
                let mut block: Vec<u8> = (0..bb).map(|_| rng.random()).collect();
                let mut set_f16 =
                    |at: usize, v: f32| block[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
                let (d_at, dmin_at) = match ty {
                    GgmlType::Q2K => (80, 82),
                    GgmlType::Q3K => (108, 0),
                    GgmlType::Q6K => (208, 0),
                    _ => (0, 2),
                };
                set_f16(d_at, rng.random_range(d_range.clone()));
                if let Some(range) = dmin_range.clone() {
                    set_f16(dmin_at, rng.random_range(range));
                }
                if ty == GgmlType::Q6K {
                    block[192..208].iter_mut().for_each(|s| *s = rng.random_range(-64i8..64) as u8);
                }
                out.extend(block);
            }
        }
        GgmlType::MXFP4 => {
            // Exponents 2^-7..2^-4 (scale 2^(e - 128)) on levels up to 12: weights within about ±0.75.
            for _ in 0..n / 32 {
                out.push(rng.random_range(121..=124));
                out.extend((0..16).map(|_| rng.random::<u8>()));
            }
        }
        // Other types: random bytes of the right size (enough to test how they are refused).
        other => {
            let bytes = other.bytes_for(n as u64).unwrap_or(0);
            out.extend((0..bytes).map(|_| rng.random::<u8>()));
        }
    }
    out
}

/// `n` random activations.
pub fn random_vec(n: usize, rng: &mut impl rand::Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::dequant::{SUPERBLOCK_TYPES, dequantize};
    use rand::SeedableRng;

    #[test]
    fn random_superblock_tensors_have_realistic_weights() {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(7);
        for ty in SUPERBLOCK_TYPES {
            let bytes = random_tensor(ty, 4, 512, &mut rng);
            assert_eq!(bytes.len() as u64, ty.bytes_for(4 * 512).unwrap());
            let w = dequantize(ty, &bytes).unwrap();
            let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(w.iter().all(|v| v.is_finite()) && max < 2.5 && max > 0.1, "{ty}: max |w| {max}");
        }
    }
}
