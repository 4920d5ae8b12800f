//! CPU dequantization straight from each format's definition: the reference the GPU kernels
//! are tested against.

use super::GgmlType;
use crate::{Error, Result};
use half::f16;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// IQ4_NL's 16 non-uniform levels (a 4-bit index picks one, times the block's d).
pub const IQ4_NL_LEVELS: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// MXFP4's FP4 (E2M1) values, doubled to integers; its E8M0 block scale is then halved
/// (`mxfp4_scale`).
pub const MXFP4_LEVELS: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// The scale of an MXFP4 block with exponent byte `e`, for `MXFP4_LEVELS`: 2^(e - 128).
pub fn mxfp4_scale(e: u8) -> f32 {
    (e as f32 - 128.0).exp2()
}

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

/// The types whose 256-element superblocks [`decode_superblock`] understands.
pub const SUPERBLOCK_TYPES: [GgmlType; 6] =
    [GgmlType::Q2K, GgmlType::Q3K, GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K, GgmlType::IQ4XS];

/// One 256-element superblock decoded to integers and per-16-element scales: element e is
/// `d[e / 16] * q[e] as f32 + m[e / 16]` (for types with 32-element sub-blocks, the two halves
/// carry the same d and m). d and m are computed in f32 exactly as the format defines them.
#[derive(Clone, Debug, PartialEq)]
pub struct SuperBlock {
    pub q: [i8; 256],
    pub d: [f32; 16],
    pub m: [f32; 16],
}

impl SuperBlock {
    /// Element `e`'s value, `d * q + m` in f32.
    pub fn value(&self, e: usize) -> f32 {
        self.d[e / 16] * self.q[e] as f32 + self.m[e / 16]
    }

    /// Sets the scale and offset of 32-element sub-block `j` (both of its 16-element halves).
    fn set_sub32(&mut self, j: usize, d: f32, m: f32) {
        self.d[2 * j..2 * j + 2].fill(d);
        self.m[2 * j..2 * j + 2].fill(m);
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) packed in the 12 scale bytes of Q4_K / Q5_K:
/// sub-blocks 0..4 keep theirs in the low six bits of bytes `j` and `j + 4`; sub-blocks 4..8
/// put their low four bits in the nibbles of byte `j + 4` and their top two bits in the top
/// bits of bytes `j - 4` (scale) and `j` (min).
fn k4_scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Q3_K's 16 signed 6-bit scales from its 12 scale bytes: the low four bits are the nibbles of
/// bytes 0..8 (low nibbles for scales 0..8, high nibbles for 8..16), the top two bits come from
/// bytes 8..12, two bits per scale, byte `8 + i % 4` at shift `2 * (i / 4)`; stored biased by 32.
fn q3k_scales(s: &[u8]) -> [i32; 16] {
    std::array::from_fn(|i| {
        let low = if i < 8 { s[i] & 0xF } else { s[i - 8] >> 4 };
        let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        i32::from(low | (high << 4)) - 32
    })
}

/// Decodes one superblock of a K-quant or IQ4_XS (`block` is exactly one block of `ty`).
pub fn decode_superblock(ty: GgmlType, block: &[u8]) -> Result<SuperBlock> {
    let unsupported = || Error::Unsupported(format!("{ty} is not a 256-element superblock type"));
    if !SUPERBLOCK_TYPES.contains(&ty) {
        return Err(unsupported());
    }
    if block.len() as u64 != ty.block_bytes() {
        return Err(Error::Gguf(format!("a {ty} block is {} bytes, not {}", ty.block_bytes(), block.len())));
    }
    let mut sb = SuperBlock { q: [0; 256], d: [0.0; 16], m: [0.0; 16] };
    match ty {
        GgmlType::Q2K => {
            let (scales, qs) = (&block[0..16], &block[16..80]);
            let (d, dmin) = (f16_at(block, 80), f16_at(block, 82));
            for (sub, &s) in scales.iter().enumerate() {
                sb.d[sub] = d * f32::from(s & 0xF);
                sb.m[sub] = -(dmin * f32::from(s >> 4));
            }
            // Sub-block `sub` = 8n + 2j + h: half n, shift 2j, bytes 16h..16h+16 of the half's 32.
            for (e, q) in sb.q.iter_mut().enumerate() {
                let (n, j, r) = (e / 128, (e / 32) % 4, e % 32);
                *q = ((qs[32 * n + r] >> (2 * j)) & 3) as i8;
            }
        }
        GgmlType::Q3K => {
            let (hmask, qs) = (&block[0..32], &block[32..96]);
            let scales = q3k_scales(&block[96..108]);
            let d = f16_at(block, 108);
            for (sub, &sc) in scales.iter().enumerate() {
                sb.d[sub] = d * sc as f32;
            }
            for (e, q) in sb.q.iter_mut().enumerate() {
                let (n, j, r) = (e / 128, (e / 32) % 4, e % 32);
                let low = ((qs[32 * n + r] >> (2 * j)) & 3) as i8;
                let high_set = (hmask[r] >> (4 * n + j)) & 1 != 0;
                *q = if high_set { low } else { low - 4 };
            }
        }
        GgmlType::Q4K | GgmlType::Q5K => {
            let (d, dmin) = (f16_at(block, 0), f16_at(block, 2));
            let scales = &block[4..16];
            for j in 0..8 {
                let (sc, mn) = k4_scale_min(scales, j);
                sb.set_sub32(j, d * f32::from(sc), -(dmin * f32::from(mn)));
            }
            let (qh, qs) =
                if ty == GgmlType::Q4K { (None, &block[16..144]) } else { (Some(&block[16..48]), &block[48..176]) };
            // Group g (64 elements) reads bytes 32g..32g+32: low nibbles first, then high ones;
            // Q5_K's fifth bit of element 32s + l (sub-block s) is bit s of qh[l].
            for (e, q) in sb.q.iter_mut().enumerate() {
                let (g, hi, l) = (e / 64, (e / 32) % 2, e % 32);
                let byte = qs[32 * g + l];
                let low = if hi == 0 { byte & 0xF } else { byte >> 4 };
                let fifth = qh.map_or(0, |qh| ((qh[l] >> (e / 32)) & 1) << 4);
                *q = (low | fifth) as i8;
            }
        }
        GgmlType::Q6K => {
            let (ql, qh, scales) = (&block[0..128], &block[128..192], &block[192..208]);
            let d = f16_at(block, 208);
            for (sub, &s) in scales.iter().enumerate() {
                sb.d[sub] = d * f32::from(s as i8);
            }
            // Half n (128 elements), quarter k: low four bits from ql[64n + l (+32 for k odd)]
            // (low nibble for k < 2, high for k >= 2), top two bits from qh[32n + l] at shift 2k.
            for (e, q) in sb.q.iter_mut().enumerate() {
                let (n, k, l) = (e / 128, (e / 32) % 4, e % 32);
                let byte = ql[64 * n + l + 32 * (k % 2)];
                let low = if k < 2 { byte & 0xF } else { byte >> 4 };
                let high = (qh[32 * n + l] >> (2 * k)) & 3;
                *q = (low | (high << 4)) as i8 - 32;
            }
        }
        GgmlType::IQ4XS => {
            let d = f16_at(block, 0);
            let scales_h = u16::from_le_bytes([block[2], block[3]]);
            let (scales_l, qs) = (&block[4..8], &block[8..136]);
            for ib in 0..8 {
                let low = (scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF;
                let high = ((scales_h >> (2 * ib)) & 3) as u8;
                sb.set_sub32(ib, d * (f32::from(low | (high << 4)) - 32.0), 0.0);
                let levels = iq4_nl_levels(&qs[16 * ib..16 * ib + 16]);
                sb.q[32 * ib..32 * ib + 32].copy_from_slice(&levels);
            }
        }
        _ => return Err(unsupported()),
    }
    Ok(sb)
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
            GgmlType::MXFP4 => {
                let d = mxfp4_scale(block[0]);
                let qs = &block[1..17];
                out.extend(qs.iter().map(|&q| d * MXFP4_LEVELS[(q & 0xF) as usize] as f32));
                out.extend(qs.iter().map(|&q| d * MXFP4_LEVELS[(q >> 4) as usize] as f32));
            }
            _ if SUPERBLOCK_TYPES.contains(&ty) => {
                let sb = decode_superblock(ty, block)?;
                out.extend((0..256).map(|e| sb.value(e)));
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
    fn mxfp4_block_follows_its_definition() {
        // Exponent 126: a scale of 2^-2 on the doubled levels, 2^-1 on the FP4 values.
        let mut block = vec![126u8];
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let w = dequantize(GgmlType::MXFP4, &block).unwrap();
        assert_eq!(w.len(), 32);
        // Element 7 is FP4 0b0111 = 6.0, element 16 + 7 is 0b1000 = -0.0, element 16 + 2 is
        // 0b1101 = -3.0: times 2^-1.
        assert_eq!((w[7], w[16 + 7], w[16 + 2]), (3.0, 0.0, -1.5));
    }

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

    /// A zeroed block of `ty` with the given f16 fields and bytes set.
    fn block(ty: GgmlType, f16s: &[(usize, f32)], bytes: &[(usize, u8)]) -> Vec<u8> {
        let mut b = vec![0u8; ty.block_bytes() as usize];
        for &(at, v) in f16s {
            b[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
        }
        for &(at, v) in bytes {
            b[at] = v;
        }
        b
    }

    #[test]
    fn q4_k_and_q5_k_unpack_their_six_bit_scales_and_mins() {
        // Scales at byte 4: sub-block 0 has scale 3, min 2 (bytes 0 and 4); sub-block 5 has
        // scale 33 = 1 | 2 << 4 and min 20 = 4 | 1 << 4 (byte 9's nibbles, the top bits of
        // bytes 1 and 5). Element 0 is the low nibble of qs[0]; element 167 (group 2, high
        // half, l = 7) the high nibble of qs[64 + 7], which also holds element 135's low nibble.
        let scales = [(4, 3), (8, 2), (4 + 1, 0x80), (4 + 5, 0x40), (4 + 9, 0x41)];
        let q4k: Vec<_> = scales.iter().copied().chain([(16, 0x05), (16 + 71, 0xA3)]).collect();
        let b = block(GgmlType::Q4K, &[(0, 0.5), (2, 0.25)], &q4k);
        let w = dequantize(GgmlType::Q4K, &b).unwrap();
        assert_eq!(w.len(), 256);
        assert_eq!(
            (w[0], w[32], w[135], w[167]),
            (0.5 * 3.0 * 5.0 - 0.25 * 2.0, 0.0, 0.0, 0.5 * 33.0 * 10.0 - 0.25 * 20.0)
        );
        let sb = decode_superblock(GgmlType::Q4K, &b).unwrap();
        assert_eq!((sb.q[167], sb.d[10], sb.d[11], sb.m[10], sb.m[11]), (10, 16.5, 16.5, -5.0, -5.0));

        // Q5_K: qh at 16, qs at 48. Bit 0 of qh[0] is element 0's fifth bit, bit 5 of qh[7]
        // element 167's (sub-block 5); bit 4 of qh[7] (element 135) stays clear.
        let q5k: Vec<_> =
            scales.iter().copied().chain([(16, 0x01), (16 + 7, 0x20), (48, 0x05), (48 + 71, 0xA3)]).collect();
        let b = block(GgmlType::Q5K, &[(0, 0.5), (2, 0.25)], &q5k);
        let w = dequantize(GgmlType::Q5K, &b).unwrap();
        assert_eq!((w[0], w[135], w[167]), (0.5 * 3.0 * 21.0 - 0.25 * 2.0, 0.0, 0.5 * 33.0 * 26.0 - 0.25 * 20.0));
        assert_eq!(decode_superblock(GgmlType::Q5K, &b).unwrap().q[135], 3);
    }

    #[test]
    fn q6_k_combines_low_nibbles_with_two_high_bits() {
        // Element 180 = 128 + 32 + 20 (half 1, quarter 1): low nibble of ql[64 + 32 + 20], bits
        // 2..4 of qh[32 + 20], scale 11. Element 212 (quarter 2): high nibble of ql[64 + 20],
        // bits 4..6 of qh[52], scale 13. Element 0: all zero bits, so -32, scale 0.
        let bytes = [(116, 0x07), (84, 0xF0), (128 + 52, 0b1000), (192, 2), (192 + 11, -3i8 as u8), (192 + 13, 1)];
        let b = block(GgmlType::Q6K, &[(208, 0.5)], &bytes);
        let w = dequantize(GgmlType::Q6K, &b).unwrap();
        assert_eq!((w[0], w[180], w[212]), (0.5 * 2.0 * -32.0, 0.5 * -3.0 * 7.0, 0.5 * 1.0 * -17.0));
        let sb = decode_superblock(GgmlType::Q6K, &b).unwrap();
        assert_eq!((sb.q[180], sb.d[11], sb.m[11]), (7, -1.5, 0.0));
    }

    #[test]
    fn q2_k_takes_scale_and_min_from_one_byte() {
        // Element 211 = 128 + 2 * 32 + 16 + 3: half 1, shift 4, byte qs[32 + 19], sub-block 13
        // whose byte 0x35 means scale 5, min 3. Element 3: bits 0..2 of qs[3], sub-block 0.
        let bytes = [(0, 0x12), (13, 0x35), (16 + 3, 3), (16 + 51, 0b10_0000)];
        let b = block(GgmlType::Q2K, &[(80, 0.5), (82, 0.25)], &bytes);
        let w = dequantize(GgmlType::Q2K, &b).unwrap();
        assert_eq!((w[3], w[35], w[211]), (0.5 * 2.0 * 3.0 - 0.25 * 1.0, 0.0, 0.5 * 5.0 * 2.0 - 0.25 * 3.0));
        let sb = decode_superblock(GgmlType::Q2K, &b).unwrap();
        assert_eq!((sb.q[211], sb.d[13], sb.m[13]), (2, 2.5, -0.75));
    }

    #[test]
    fn q3_k_subtracts_four_unless_the_mask_bit_is_set() {
        // Scale 0 is 34 - 32 = 2 (low nibble of byte 0, bits 0..2 of byte 8); scale 13 is
        // 29 - 32 = -3 (high nibble of byte 5, bits 6..8 of byte 9). Element 211 (half 1,
        // shift 4, second 16, l = 3) reads qs[32 + 19] and hmask[19] bit 6.
        let bytes = [
            (3, 0x01),
            (19, 0x80),
            (32 + 3, 3),
            (32 + 51, 0b01_0000),
            (96, 0x02),
            (96 + 5, 0xD0),
            (96 + 8, 0x02),
            (96 + 9, 0x40),
        ];
        let b = block(GgmlType::Q3K, &[(108, 0.5)], &bytes);
        let w = dequantize(GgmlType::Q3K, &b).unwrap();
        assert_eq!((w[3], w[4], w[211], w[243]), (0.5 * 2.0 * 3.0, 0.5 * 2.0 * -4.0, 0.5 * -3.0 * -3.0, 0.0));
        let sb = decode_superblock(GgmlType::Q3K, &b).unwrap();
        assert_eq!((sb.q[211], sb.q[243], sb.d[13]), (-3, 0, -1.5));
    }

    #[test]
    fn iq4_xs_splits_its_scales_across_two_fields() {
        // Sub-block 5: low four bits in the high nibble of scales_l[2], top two at bits 10..12
        // of scales_h; 34 - 32 = 2. Sub-block 0's scale is all zero bits: -32.
        let bytes = [(3, 2 << 2), (4 + 2, 0x20), (8, 8), (8 + 84, 0xF0)];
        let b = block(GgmlType::IQ4XS, &[(0, 0.5)], &bytes);
        let w = dequantize(GgmlType::IQ4XS, &b).unwrap();
        assert_eq!((w[0], w[164], w[180]), (0.5 * -32.0 * 1.0, 0.5 * 2.0 * -127.0, 0.5 * 2.0 * 113.0));
        let sb = decode_superblock(GgmlType::IQ4XS, &b).unwrap();
        assert_eq!((sb.q[180], sb.d[10], sb.d[11]), (113, 1.0, 1.0));
    }

    #[test]
    fn superblock_types_refuse_partial_blocks_and_other_types() {
        for ty in SUPERBLOCK_TYPES {
            let bb = ty.block_bytes() as usize;
            assert_eq!(ty.block_elements(), 256);
            assert!(dequantize(ty, &vec![0; bb + 1]).is_err(), "{ty}");
            assert!(decode_superblock(ty, &vec![0; bb - 1]).is_err(), "{ty}");
            assert_eq!(dequantize(ty, &vec![0; 2 * bb]).unwrap().len(), 512);
        }
        assert!(matches!(decode_superblock(GgmlType::Q4_0, &[0; 18]), Err(Error::Unsupported(_))));
        assert!(matches!(decode_superblock(GgmlType::Q8K, &[0; 292]), Err(Error::Unsupported(_))));
    }

    /// Blocks of random bytes dequantized by llama.cpp's gguf-py (scripts/make_kquant_fixture.py).
    #[test]
    fn dequantize_matches_gguf_py() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/kquants.json")).unwrap();
        let mut seen = Vec::new();
        for entry in fixture.as_array().unwrap() {
            let name = entry["type"].as_str().unwrap();
            let ty = (0..64).filter_map(GgmlType::from_id).find(|t| t.name() == name).unwrap();
            let hex = entry["bytes_hex"].as_str().unwrap().as_bytes();
            let bytes: Vec<u8> =
                hex.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect();
            let expected: Vec<f32> =
                entry["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let got = dequantize(ty, &bytes).unwrap();
            assert_eq!(got.len(), expected.len(), "{name}");
            for (e, (g, x)) in got.iter().zip(&expected).enumerate() {
                // Bit-exact, except that gguf-py's `d * q` keeps the -0.0 of a negative scale
                // times a zero quant where our `d * q + 0.0` gives +0.0.
                assert!(
                    g.to_bits() == x.to_bits() || (*g == 0.0 && *x == 0.0),
                    "{name} element {e}: {g} vs gguf-py {x}"
                );
            }
            seen.push(ty);
        }
        for ty in SUPERBLOCK_TYPES.iter().chain(&[GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::IQ4NL]) {
            assert!(seen.contains(ty), "fixture lacks {ty}");
        }
    }

    #[test]
    fn partial_blocks_and_unknown_types_are_errors() {
        assert!(dequantize(GgmlType::Q4_1, &[0; 21]).is_err());
        let err = dequantize(GgmlType::IQ2XXS, &[0; 66]).unwrap_err().to_string();
        assert!(err.contains("IQ2_XXS"), "{err}");
    }
}
