//! CPU dequantization straight from each format's definition: the reference the GPU kernels
//! are tested against.

use crate::model::ggml_type::GgmlType;
use crate::{Error, Result};
use half::f16;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantizes `bytes` holding whole blocks of `ty` into f32 values.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>> {
    let bb = ty.block_bytes() as usize;
    if !bytes.len().is_multiple_of(bb) {
        return Err(Error::Gguf(format!("{} bytes is not a whole number of {ty} blocks", bytes.len())));
    }
    let mut out = Vec::with_capacity(bytes.len() / bb * ty.block_elements() as usize);
    for block in bytes.chunks_exact(bb) {
        match ty {
            GgmlType::F32 => out.push(f32::from_le_bytes([block[0], block[1], block[2], block[3]])),
            GgmlType::F16 => out.push(f16_at(block, 0)),
            GgmlType::BF16 => out.push(half::bf16::from_le_bytes([block[0], block[1]]).to_f32()),
            GgmlType::Q4_0 => {
                let d = f16_at(block, 0);
                let qs = &block[2..18];
                out.extend(qs.iter().map(|&q| d * ((q & 0xF) as f32 - 8.0)));
                out.extend(qs.iter().map(|&q| d * ((q >> 4) as f32 - 8.0)));
            }
            GgmlType::Q4_1 => {
                let (d, m) = (f16_at(block, 0), f16_at(block, 2));
                let qs = &block[4..20];
                out.extend(qs.iter().map(|&q| d * (q & 0xF) as f32 + m));
                out.extend(qs.iter().map(|&q| d * (q >> 4) as f32 + m));
            }
            GgmlType::Q8_0 => {
                let d = f16_at(block, 0);
                out.extend(block[2..34].iter().map(|&q| d * (q as i8) as f32));
            }
            other => return Err(Error::Unsupported(format!("tensor type {other} cannot be dequantized yet"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_block_follows_its_definition() {
        let mut block = Vec::new();
        block.extend_from_slice(&f16::from_f32(0.5).to_le_bytes());
        block.extend_from_slice(&f16::from_f32(-1.0).to_le_bytes());
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let w = dequantize(GgmlType::Q4_1, &block).unwrap();
        assert_eq!(w.len(), 32);
        assert_eq!(w[3], 0.5 * 3.0 - 1.0);
        assert_eq!(w[16 + 3], 0.5 * 12.0 - 1.0);
    }

    #[test]
    fn q4_0_and_q8_0_are_signed() {
        let mut b4 = f16::from_f32(2.0).to_le_bytes().to_vec();
        b4.extend([0x0Fu8; 16]);
        let w = dequantize(GgmlType::Q4_0, &b4).unwrap();
        assert_eq!((w[0], w[16]), (14.0, -16.0));
        let mut b8 = f16::from_f32(0.25).to_le_bytes().to_vec();
        b8.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let w = dequantize(GgmlType::Q8_0, &b8).unwrap();
        assert_eq!((w[0], w[31]), (-4.0, 3.75));
    }

    #[test]
    fn partial_blocks_and_unknown_types_are_errors() {
        assert!(dequantize(GgmlType::Q4_1, &[0; 21]).is_err());
        let err = dequantize(GgmlType::IQ2XXS, &[0; 66]).unwrap_err().to_string();
        assert!(err.contains("IQ2_XXS"), "{err}");
    }
}
