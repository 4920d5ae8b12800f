//! Random, valid tensors of any supported type, for tests and benchmarks.

use crate::model::ggml_type::GgmlType;
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
