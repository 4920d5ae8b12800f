//! The one repack from GGUF blocks into the GPU layout of `layout.rs`.

use super::GgmlType;
use super::dequant::{IQ4_NL_LEVELS, MXFP4_LEVELS, SUPERBLOCK_TYPES, decode_superblock, q5_quants};
use super::layout::{BLOCK, OCTET, PackedMatrix, Quants, SUPERBLOCK_BLOCKS, Scales, WeightFormat, octet_of, unit};
use crate::{Error, Result};
use half::f16;
use std::ops::Range;

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

/// Source tensors stacked into one matrix, as the parts it is stored in (see `plan_parts`).
pub fn pack_parts(sources: &[SourceRows], cols: usize, order: RowOrder) -> Result<Vec<PackedMatrix>> {
    let shapes: Vec<(GgmlType, usize)> = sources.iter().map(|s| (s.ty, s.rows)).collect();
    plan_parts(&shapes, order)?.into_iter().map(|(run, format)| pack_as(format, &sources[run], cols, order)).collect()
}

/// Which sources (their types and row counts) make each part of a matrix, and each part's
/// format: where concatenated tensors differ in type, each run of one type is a part of its
/// own packed at its own size (when every part but the last is whole octets of rows, so each
/// starts at an octet: the kernels dispatch once per part); otherwise one part (interleaved
/// rows of different types meet in a widened format, `WeightFormat::for_types`).
pub fn plan_parts(sources: &[(GgmlType, usize)], order: RowOrder) -> Result<Vec<(Range<usize>, WeightFormat)>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if sources[run.start].0 == source.0 => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    let octet_aligned =
        runs.iter().rev().skip(1).all(|r| sources[r.clone()].iter().map(|s| s.1).sum::<usize>().is_multiple_of(OCTET));
    if order == RowOrder::Concat && runs.len() > 1 && octet_aligned {
        runs.into_iter().map(|run| Ok((run.clone(), WeightFormat::for_type(sources[run.start].0)?))).collect()
    } else {
        let types: Vec<GgmlType> = sources.iter().map(|s| s.0).collect();
        Ok(vec![(0..sources.len(), WeightFormat::for_types(&types)?)])
    }
}

/// Bytes of one GGUF row of `cols` weights of type `ty`; refused where the row is not whole
/// 32-weight blocks of that type.
pub fn source_row_bytes(ty: GgmlType, cols: usize) -> Result<usize> {
    ty.bytes_for(cols as u64)
        .filter(|_| cols.is_multiple_of(BLOCK))
        .map(|b| b as usize)
        .ok_or_else(|| Error::Unsupported(format!("row length {cols} is not a whole number of {ty} blocks")))
}

/// Source tensors as one part, in the format their types share.
pub fn pack(sources: &[SourceRows], cols: usize, order: RowOrder) -> Result<PackedMatrix> {
    let types: Vec<GgmlType> = sources.iter().map(|s| s.ty).collect();
    pack_as(WeightFormat::for_types(&types)?, sources, cols, order)
}

/// Source rows packed in `format`. Packing whole tiles of a matrix's rows on their own gives
/// exactly the words those tiles take in the whole matrix (the layout is tile-major), which is
/// how the weight loader packs a large matrix a range of rows at a time.
pub fn pack_as(format: WeightFormat, sources: &[SourceRows], cols: usize, order: RowOrder) -> Result<PackedMatrix> {
    let mut row_bytes = Vec::with_capacity(sources.len());
    for src in sources {
        let per_row = source_row_bytes(src.ty, cols)?;
        if src.bytes.len() != per_row * src.rows {
            return Err(Error::Gguf(format!(
                "tensor holds {} bytes, expected {} rows of {per_row}",
                src.bytes.len(),
                src.rows
            )));
        }
        row_bytes.push(per_row);
    }
    let total_rows: usize = sources.iter().map(|s| s.rows).sum();
    if order == RowOrder::Interleave && sources.iter().any(|s| s.rows != sources[0].rows) {
        return Err(Error::Unsupported("interleaved tensors must have the same row count".into()));
    }
    let source_row = |out_row: usize| -> (usize, usize) {
        match order {
            RowOrder::Interleave => (out_row % sources.len(), out_row / sources.len()),
            RowOrder::Concat => {
                let (mut r, mut k) = (out_row, 0);
                while r >= sources[k].rows {
                    r -= sources[k].rows;
                    k += 1;
                }
                (k, r)
            }
        }
    };

    let nb = cols / BLOCK;
    let units_per_row = nb.div_ceil(format.scales.unit_blocks());
    let [quant_words, scale_words] = format.packed_words(total_rows, cols);
    let mut packed =
        PackedMatrix { format, rows: total_rows, cols, quants: vec![0; quant_words], scales: vec![0; scale_words] };
    let mut blocks = Vec::with_capacity(SUPERBLOCK_BLOCKS);
    for out_row in 0..total_rows {
        let (k, r) = source_row(out_row);
        let src = &sources[k];
        let row = &src.bytes[r * row_bytes[k]..][..row_bytes[k]];
        let (octet, j) = octet_of(out_row);
        // Bytes of one unit `decode_blocks` takes: a quantized block, or 32 floats.
        let unit_bytes = (src.ty.block_bytes() * (BLOCK as u64 / src.ty.block_elements()).max(1)) as usize;
        let (mut b, mut s) = (0, 0);
        for source_block in row.chunks_exact(unit_bytes) {
            let record = decode_blocks(src.ty, format, source_block, &mut blocks)?;
            for block in &blocks {
                let u = unit(octet, b, nb);
                let n = format.quants.words();
                let mut buffer = [0u32; 32];
                let words = &mut buffer[..n];
                format.quants.encode(&block.q, words);
                for (kw, &word) in words.iter().enumerate() {
                    packed.quants[(u * n + kw) * OCTET + j] = word;
                }
                if !format.scales.per_superblock() {
                    store_scales(&mut packed.scales, format.scales, unit(octet, b, units_per_row), j, &block.scales);
                }
                b += 1;
            }
            if format.scales.per_superblock() {
                store_scales(&mut packed.scales, format.scales, unit(octet, s, units_per_row), j, &record);
                s += 1;
            }
        }
    }
    Ok(packed)
}

/// Writes one row's scale words of scale unit `u` at their word-major places.
fn store_scales(scales: &mut [u32], format: Scales, u: usize, j: usize, words: &[u32]) {
    match format {
        Scales::None => {}
        Scales::D { .. } => scales[(u * OCTET + j) / 2] |= (words[0] & 0xFFFF) << (16 * (j % 2)),
        other => {
            let n = other.record_words();
            for (k, &w) in words.iter().take(n).enumerate() {
                scales[(u * n + k) * OCTET + j] = w;
            }
        }
    }
}

/// 32 weights as stored: their unsigned quants (or float bits), and the block's scale words
/// for the per-block scale formats.
struct Block32 {
    q: [u32; 32],
    scales: [u32; 2],
}

fn le_u16(b: &[u8], i: usize) -> u32 {
    u16::from_le_bytes([b[i], b[i + 1]]) as u32
}

fn le_words(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(4).map(|c| c.iter().rev().fold(0, |acc, &b| acc << 8 | b as u32)).collect()
}

fn f16_pair(d: f32, m: f32) -> u32 {
    f16::from_f32(d).to_bits() as u32 | (f16::from_f32(m).to_bits() as u32) << 16
}

/// The 32-weight blocks of one GGUF block (one, or eight for 256-weight superblocks) in
/// `format`, and for superblock scale formats the superblock's scale record.
fn decode_blocks(ty: GgmlType, format: WeightFormat, block: &[u8], out: &mut Vec<Block32>) -> Result<Vec<u32>> {
    out.clear();
    if format != WeightFormat::for_type(ty)? {
        widened(ty, format, block, out)?;
        return Ok(vec![]);
    }
    let nibbles = |qs: &[u8]| -> [u32; 32] {
        std::array::from_fn(|e| (if e < 16 { qs[e] & 0xF } else { qs[e - 16] >> 4 }) as u32)
    };
    let one = |q: [u32; 32], scales: u32| Block32 { q, scales: [scales, 0] };
    match ty {
        GgmlType::F32 => out.push(one(
            std::array::from_fn(|e| {
                u32::from_le_bytes([block[4 * e], block[4 * e + 1], block[4 * e + 2], block[4 * e + 3]])
            }),
            0,
        )),
        GgmlType::F16 | GgmlType::BF16 => out.push(one(std::array::from_fn(|e| le_u16(block, 2 * e)), 0)),
        GgmlType::Q4_0 | GgmlType::IQ4NL => out.push(one(nibbles(&block[2..18]), le_u16(block, 0))),
        GgmlType::MXFP4 => out.push(one(nibbles(&block[1..17]), mxfp4_scale_f16(block[0])?)),
        GgmlType::Q4_1 => out.push(one(nibbles(&block[4..20]), le_words(&block[0..4])[0])),
        GgmlType::Q8_0 => out.push(one(std::array::from_fn(|e| block[2 + e] as u32), le_u16(block, 0))),
        GgmlType::Q5_0 => out.push(one(q5_quants(&block[2..6], &block[6..22]).map(u32::from), le_u16(block, 0))),
        GgmlType::Q5_1 => {
            out.push(one(q5_quants(&block[4..8], &block[8..24]).map(u32::from), le_words(&block[0..4])[0]))
        }
        _ => {
            let sb = decode_superblock(ty, block)?;
            // Back to the unsigned quants the file stores (the bias goes into the scales).
            let (bias, record): (i32, Vec<u8>) = match ty {
                GgmlType::Q2K => (0, [&block[0..16], &block[80..84]].concat()),
                GgmlType::Q3K => (4, [&block[96..110], &[0, 0][..]].concat()),
                GgmlType::Q4K | GgmlType::Q5K => (0, block[0..16].to_vec()),
                GgmlType::Q6K => (32, [&block[192..210], &[0, 0][..]].concat()),
                GgmlType::IQ4XS => (0, block[0..8].to_vec()),
                _ => return Err(Error::Unsupported(format!("{ty} has no GPU layout"))),
            };
            for i in 0..SUPERBLOCK_BLOCKS {
                let q = if ty == GgmlType::IQ4XS {
                    nibbles(&block[8 + 16 * i..8 + 16 * i + 16])
                } else {
                    std::array::from_fn(|e| (sb.q[32 * i + e] as i32 + bias) as u32)
                };
                out.push(Block32 { q, scales: [0, 0] });
            }
            return Ok(le_words(&record));
        }
    }
    Ok(vec![])
}

/// A block in the widened common formats: signed 8-bit quants with (d, m) pairs (one per 16
/// weights, or f32 values.
fn widened(ty: GgmlType, format: WeightFormat, block: &[u8], out: &mut Vec<Block32>) -> Result<()> {
    if format.quants == Quants::F32 {
        let values = super::dequantize(ty, block)?;
        for chunk in values.chunks(BLOCK) {
            out.push(Block32 { q: std::array::from_fn(|e| chunk[e].to_bits()), scales: [0, 0] });
        }
        return Ok(());
    }
    if SUPERBLOCK_TYPES.contains(&ty) {
        let sb = decode_superblock(ty, block)?;
        for i in 0..SUPERBLOCK_BLOCKS {
            out.push(Block32 {
                q: std::array::from_fn(|e| sb.q[32 * i + e] as u8 as u32),
                scales: [f16_pair(sb.d[2 * i], sb.m[2 * i]), f16_pair(sb.d[2 * i + 1], sb.m[2 * i + 1])],
            });
        }
        return Ok(());
    }
    {
        // 32-weight blocks: their own quants with one (d, m) pair, as signed bytes.
        let (q, d, m): ([i32; 32], u32, u32) = match ty {
            GgmlType::Q4_0 => (std::array::from_fn(|e| nibble(&block[2..18], e) - 8), le_u16(block, 0), 0),
            GgmlType::Q4_1 => (std::array::from_fn(|e| nibble(&block[4..20], e)), le_u16(block, 0), le_u16(block, 2)),
            GgmlType::Q8_0 => (std::array::from_fn(|e| block[2 + e] as i8 as i32), le_u16(block, 0), 0),
            GgmlType::Q5_0 => (q5_quants(&block[2..6], &block[6..22]).map(|q| q as i32 - 16), le_u16(block, 0), 0),
            GgmlType::Q5_1 => {
                (q5_quants(&block[4..8], &block[8..24]).map(i32::from), le_u16(block, 0), le_u16(block, 2))
            }
            GgmlType::IQ4NL => {
                (std::array::from_fn(|e| IQ4_NL_LEVELS[nibble(&block[2..18], e) as usize] as i32), le_u16(block, 0), 0)
            }
            GgmlType::MXFP4 => (
                std::array::from_fn(|e| MXFP4_LEVELS[nibble(&block[1..17], e) as usize] as i32),
                mxfp4_scale_f16(block[0])?,
                0,
            ),
            other => return Err(Error::Unsupported(format!("{other} cannot be widened to 8 bits"))),
        };
        let pair = d | m << 16;
        out.push(Block32 { q: q.map(|v| v as u8 as u32), scales: [pair, pair] });
    }
    Ok(())
}

/// An MXFP4 block's scale 2^(e - 128) as f16 bits: exact from 2^-24 (subnormal) to 2^15,
/// zero below (a block of weights under 2^-21); above, no f16 holds it and the block is refused.
fn mxfp4_scale_f16(e: u8) -> Result<u32> {
    match e as i32 - 128 {
        k if k > 15 => Err(Error::Unsupported(format!("an MXFP4 block scale of 2^{k} (beyond f16)"))),
        k if k >= -14 => Ok(((k + 15) as u32) << 10),
        k if k >= -24 => Ok(1 << (k + 24)),
        _ => Ok(0),
    }
}

fn nibble(qs: &[u8], e: usize) -> i32 {
    (if e < 16 { qs[e] & 0xF } else { qs[e - 16] >> 4 }) as i32
}
