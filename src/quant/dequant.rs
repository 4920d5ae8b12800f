//! CPU dequantization straight from each format's definition: the reference the GPU kernels
//! are tested against.

use crate::model::ggml_type::GgmlType;
use crate::{Error, Result};
use half::f16;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// IQ4_NL's 16 non-uniform levels (a 4-bit index picks one, times the block's d).
pub const IQ4_NL_LEVELS: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// The 5-bit quants of a Q5_0 / Q5_1 block from its 4 bytes of high bits and 16 bytes of low
/// nibbles: element `j < 16` takes the low nibble of byte `j`, element `j + 16` its high nibble,
/// and bit `e` of the little-endian high-bit word is element `e`'s fifth bit.
pub fn q5_quants(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let high = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    std::array::from_fn(|e| {
        let low = if e < 16 { qs[e] & 0xF } else { qs[e - 16] >> 4 };
        low | (((high >> e) & 1) as u8) << 4
    })
}

/// IQ4_NL's level indices of a block, in element order.
pub fn iq4_nl_levels(qs: &[u8]) -> [i8; 32] {
    std::array::from_fn(|e| IQ4_NL_LEVELS[usize::from(if e < 16 { qs[e] & 0xF } else { qs[e - 16] >> 4 })])
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
            GgmlType::Q5_0 => {
                let d = f16_at(block, 0);
                out.extend(q5_quants(&block[2..6], &block[6..22]).iter().map(|&q| d * (q as f32 - 16.0)));
            }
            GgmlType::Q5_1 => {
                let (d, m) = (f16_at(block, 0), f16_at(block, 2));
                out.extend(q5_quants(&block[4..8], &block[8..24]).iter().map(|&q| d * q as f32 + m));
            }
            GgmlType::IQ4NL => {
                let d = f16_at(block, 0);
                out.extend(iq4_nl_levels(&block[2..18]).iter().map(|&q| d * q as f32));
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
    fn q5_takes_its_fifth_bit_from_the_high_word() {
        // Element 0: low nibble 3, high bit set → 19; element 17: high nibble 5 of byte 1, no
        // high bit → 5; element 31: high nibble 15 of byte 15, high bit 31 set → 31.
        let mut qs = [0u8; 16];
        qs[0] = 0x03;
        qs[1] = 0x50;
        qs[15] = 0xF0;
        let qh = (1u32 | 1 << 31).to_le_bytes();
        let mut b0 = f16::from_f32(0.5).to_le_bytes().to_vec();
        b0.extend(qh);
        b0.extend(qs);
        let w = dequantize(GgmlType::Q5_0, &b0).unwrap();
        assert_eq!((w[0], w[17], w[31], w[1]), (0.5 * 3.0, 0.5 * -11.0, 0.5 * 15.0, 0.5 * -16.0));
        let mut b1 = f16::from_f32(0.5).to_le_bytes().to_vec();
        b1.extend(f16::from_f32(-2.0).to_le_bytes());
        b1.extend(qh);
        b1.extend(qs);
        let w = dequantize(GgmlType::Q5_1, &b1).unwrap();
        assert_eq!((w[0], w[17], w[31], w[1]), (0.5 * 19.0 - 2.0, 0.5 * 5.0 - 2.0, 0.5 * 31.0 - 2.0, -2.0));
    }

    #[test]
    fn iq4_nl_indexes_its_level_table() {
        let mut b = f16::from_f32(0.25).to_le_bytes().to_vec();
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let w = dequantize(GgmlType::IQ4NL, &b).unwrap();
        assert_eq!((w[0], w[8], w[16], w[31]), (0.25 * -127.0, 0.25 * 1.0, 0.25 * 113.0, 0.25 * -127.0));
    }

    #[test]
    fn partial_blocks_and_unknown_types_are_errors() {
        assert!(dequantize(GgmlType::Q4_1, &[0; 21]).is_err());
        let err = dequantize(GgmlType::IQ2XXS, &[0; 66]).unwrap_err().to_string();
        assert!(err.contains("IQ2_XXS"), "{err}");
    }
}
