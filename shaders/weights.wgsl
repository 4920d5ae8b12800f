// Reading weight matrices in the GPU layout of src/quant/layout.rs, stored in textures or
// buffers as src/gpu/texture.rs describes: texels.wgsl declares them (quants at binding 2,
// scales at 4 where SCALED) and fetches texel i (`quant_texel`, `scale_texel`).
//
// Rows are read eight at a time (an octet): one texel holds word k of four rows. A weight is
// d * q + m, with q unpacked here from its own bit width and (d, m) from the format's scales.
// Flags: one Q_* (quants: Q2, Q3, Q4, Q5, Q6, Q8, LEVELS (4-bit indices into a table of 16
// levels: IQ4_NL's, MXFP4's), F16, BF16, F32) and one S_* (scales: NONE, D, DM, DM16, K4, K6,
// K3, K2, XS). Constants: WQ (quant words per row and block), ST (texels per octet and scale
// unit), SB (blocks per scale unit: 8 for superblocks, else 1), S_OFFSET (m / d of S_D), K
// (row length), LV0..LV3 (the levels, with Q_LEVELS).

#include "texels.wgsl"

const NB: u32 = K / 32u;
// Scale units per row.
const NS: u32 = NB / SB;

// The unit number of an octet's `index`-th block (or scale unit), `per_row` of them per row.
fn unit_of(octet: u32, index: u32, per_row: u32) -> u32 {
    return ((octet / 8u) * per_row + index) * 8u + octet % 8u;
}

// Word k of the eight rows of quant unit u: rows 0..3 in lo, 4..7 in hi.
struct Word8 { lo: vec4<u32>, hi: vec4<u32> }

fn word8(u: u32, k: u32) -> Word8 {
    let i = (u * WQ + k) * 2u;
    return Word8(quant_texel(i), quant_texel(i + 1u));
}

// Row j's word (j a literal at every call, so this folds).
fn pick(w: Word8, j: u32) -> u32 {
    if j < 4u {
        return w.lo[j];
    }
    return w.hi[j - 4u];
}

// The arithmetic type of weights: f16 on the F16 path, f32 otherwise.
#if F16
alias wf = f16;
#else
alias wf = f32;
#endif

// Eight consecutive weights (before scaling).
struct W8 { lo: vec4<wf>, hi: vec4<wf> }

fn nibbles(u: u32) -> W8 {
    let v = vec4<u32>(u);
    return W8(vec4<wf>((v >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)),
              vec4<wf>((v >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u)));
}

// Eight 2-bit values from the low 16 bits.
fn crumbs(u: u32) -> W8 {
    let v = vec4<u32>(u);
    return W8(vec4<wf>((v >> vec4<u32>(0u, 2u, 4u, 6u)) & vec4<u32>(3u)),
              vec4<wf>((v >> vec4<u32>(8u, 10u, 12u, 14u)) & vec4<u32>(3u)));
}

// Eight 1-bit values from the low 8 bits.
fn bits8(u: u32) -> W8 {
    let v = vec4<u32>(u);
    return W8(vec4<wf>((v >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)),
              vec4<wf>((v >> vec4<u32>(4u, 5u, 6u, 7u)) & vec4<u32>(1u)));
}

fn plus(a: W8, b: W8, k: wf) -> W8 {
    return W8(a.lo + k * b.lo, a.hi + k * b.hi);
}

fn signed_bytes(u: u32) -> vec4<wf> {
    return vec4<wf>(bitcast<vec4<i32>>(vec4<u32>(u) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

#if Q_LEVELS
// The format's 16 levels (IQ4_NL's or MXFP4's, src/quant/layout.rs: level_words) as signed
// bytes, four to a word LV0..LV3: looked up with selects in registers (a dynamically indexed
// array would live in memory on CPU adapters).
fn level4(idx: vec4<u32>) -> vec4<wf> {
    let lo = (idx & vec4<u32>(4u)) != vec4<u32>(0u);
    let hi = idx >= vec4<u32>(8u);
    let w = select(select(vec4<u32>(LV0), vec4<u32>(LV1), lo),
                   select(vec4<u32>(LV2), vec4<u32>(LV3), lo), hi);
    let byte = w << (vec4<u32>(24u) - 8u * (idx & vec4<u32>(3u)));
    return vec4<wf>(bitcast<vec4<i32>>(byte) >> vec4<u32>(24u));
}

fn levels(u: u32) -> W8 {
    let v = vec4<u32>(u);
    return W8(level4((v >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)),
              level4((v >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u)));
}
#endif

// (naga cannot yet bitcast a u32 to vec2<f16>, so f16 data goes through unpack2x16float.)
fn halves(a: u32, b: u32, c: u32, d: u32) -> W8 {
    return W8(vec4<wf>(vec4<f32>(unpack2x16float(a), unpack2x16float(b))),
              vec4<wf>(vec4<f32>(unpack2x16float(c), unpack2x16float(d))));
}

fn bf16s(a: u32, b: u32, c: u32, d: u32) -> W8 {
    let lo = vec4<u32>(a, a, b, b) << vec4<u32>(16u, 0u, 16u, 0u);
    let hi = vec4<u32>(c, c, d, d) << vec4<u32>(16u, 0u, 16u, 0u);
    let mask = vec4<u32>(0xFFFF0000u);
    return W8(vec4<wf>(bitcast<vec4<f32>>(lo & mask)), vec4<wf>(bitcast<vec4<f32>>(hi & mask)));
}

// The words of chunk c (weights 8c..8c+7 of a block) for the eight rows: CW of them, w0 the
// first (see src/quant/layout.rs for where each width keeps its bits).
#if Q_Q2
const CW: u32 = 1u;
fn chunk_word(c: u32, i: u32) -> u32 { return c / 2u; }
#endif
#if Q_Q3
const CW: u32 = 2u;
fn chunk_word(c: u32, i: u32) -> u32 { return select(c / 2u, 2u, i == 1u); }
#endif
#if Q_Q4
const CW: u32 = 1u;
fn chunk_word(c: u32, i: u32) -> u32 { return c; }
#endif
#if Q_LEVELS
const CW: u32 = 1u;
fn chunk_word(c: u32, i: u32) -> u32 { return c; }
#endif
#if Q_Q5
const CW: u32 = 2u;
fn chunk_word(c: u32, i: u32) -> u32 { return select(c, 4u, i == 1u); }
#endif
#if Q_Q6
const CW: u32 = 2u;
fn chunk_word(c: u32, i: u32) -> u32 { return select(c, 4u + c / 2u, i == 1u); }
#endif
#if Q_Q8
const CW: u32 = 2u;
fn chunk_word(c: u32, i: u32) -> u32 { return 2u * c + i; }
#endif
#if Q_F16
const CW: u32 = 4u;
fn chunk_word(c: u32, i: u32) -> u32 { return 4u * c + i; }
#endif
#if Q_BF16
const CW: u32 = 4u;
fn chunk_word(c: u32, i: u32) -> u32 { return 4u * c + i; }
#endif
#if Q_F32
const CW: u32 = 8u;
fn chunk_word(c: u32, i: u32) -> u32 { return 8u * c + i; }
#endif

struct ChunkWords { w0: Word8, w1: Word8, w2: Word8, w3: Word8, w4: Word8, w5: Word8, w6: Word8, w7: Word8 }

// (One expression per width, as load_record8 below.)
fn chunk_words(u: u32, c: u32) -> ChunkWords {
    let z = Word8(vec4<u32>(0u), vec4<u32>(0u));
#if Q_Q2
    return ChunkWords(word8(u, chunk_word(c, 0u)), z, z, z, z, z, z, z);
#endif
#if Q_Q4
    return ChunkWords(word8(u, chunk_word(c, 0u)), z, z, z, z, z, z, z);
#endif
#if Q_LEVELS
    return ChunkWords(word8(u, chunk_word(c, 0u)), z, z, z, z, z, z, z);
#endif
#if Q_Q3
    return ChunkWords(word8(u, chunk_word(c, 0u)), word8(u, chunk_word(c, 1u)), z, z, z, z, z, z);
#endif
#if Q_Q5
    return ChunkWords(word8(u, chunk_word(c, 0u)), word8(u, chunk_word(c, 1u)), z, z, z, z, z, z);
#endif
#if Q_Q6
    return ChunkWords(word8(u, chunk_word(c, 0u)), word8(u, chunk_word(c, 1u)), z, z, z, z, z, z);
#endif
#if Q_Q8
    return ChunkWords(word8(u, chunk_word(c, 0u)), word8(u, chunk_word(c, 1u)), z, z, z, z, z, z);
#endif
#if Q_F16
    return ChunkWords(word8(u, chunk_word(c, 0u)), word8(u, chunk_word(c, 1u)), word8(u, chunk_word(c, 2u)),
                      word8(u, chunk_word(c, 3u)), z, z, z, z);
#endif
#if Q_BF16
    return ChunkWords(word8(u, chunk_word(c, 0u)), word8(u, chunk_word(c, 1u)), word8(u, chunk_word(c, 2u)),
                      word8(u, chunk_word(c, 3u)), z, z, z, z);
#endif
#if Q_F32
    return ChunkWords(word8(u, chunk_word(c, 0u)), word8(u, chunk_word(c, 1u)), word8(u, chunk_word(c, 2u)),
                      word8(u, chunk_word(c, 3u)), word8(u, chunk_word(c, 4u)), word8(u, chunk_word(c, 5u)),
                      word8(u, chunk_word(c, 6u)), word8(u, chunk_word(c, 7u)));
#endif
}

// Row j's eight weights of chunk c from its words a..h.
fn row_chunk(c: u32, a: u32, b: u32, e: u32, f: u32, g: u32, h: u32, k: u32, l: u32) -> W8 {
#if Q_Q2
    return crumbs(a >> (16u * (c % 2u)));
#endif
#if Q_Q3
    return plus(crumbs(a >> (16u * (c % 2u))), bits8(b >> (8u * c)), wf(4.0));
#endif
#if Q_Q4
    return nibbles(a);
#endif
#if Q_LEVELS
    return levels(a);
#endif
#if Q_Q5
    return plus(nibbles(a), bits8(b >> (8u * c)), wf(16.0));
#endif
#if Q_Q6
    return plus(nibbles(a), crumbs(b >> (16u * (c % 2u))), wf(16.0));
#endif
#if Q_Q8
    return W8(signed_bytes(a), signed_bytes(b));
#endif
#if Q_F16
    return halves(a, b, e, f);
#endif
#if Q_BF16
    return bf16s(a, b, e, f);
#endif
#if Q_F32
    return W8(vec4<wf>(bitcast<vec4<f32>>(vec4<u32>(a, b, e, f))), vec4<wf>(bitcast<vec4<f32>>(vec4<u32>(g, h, k, l))));
#endif
}

// One row's chunk c out of the loaded words (j may vary).
fn row_of(cw: ChunkWords, c: u32, j: u32) -> W8 {
    return row_chunk(c, pick(cw.w0, j), pick(cw.w1, j), pick(cw.w2, j), pick(cw.w3, j),
                     pick(cw.w4, j), pick(cw.w5, j), pick(cw.w6, j), pick(cw.w7, j));
}

// Chunk c of the eight rows of quant unit u, before scaling.
struct Rows8 { r0: W8, r1: W8, r2: W8, r3: W8, r4: W8, r5: W8, r6: W8, r7: W8 }

fn chunk8(u: u32, c: u32) -> Rows8 {
    let cw = chunk_words(u, c);
    return Rows8(row_of(cw, c, 0u), row_of(cw, c, 1u), row_of(cw, c, 2u), row_of(cw, c, 3u),
                 row_of(cw, c, 4u), row_of(cw, c, 5u), row_of(cw, c, 6u), row_of(cw, c, 7u));
}

// ---- Scales ----

// (d, m) of four rows for weights 0..15 of a block, (d2, m2) for 16..31.
struct Scales4 { d: vec4<f32>, m: vec4<f32>, d2: vec4<f32>, m2: vec4<f32> }

// The scale texels of one octet's scale unit: ST of them (texel 2k + h holds word k of rows
// 4h..4h+3; for S_D, t0 holds the eight rows' f16 d in row order).
struct Record8 { t0: vec4<u32>, t1: vec4<u32>, t2: vec4<u32>, t3: vec4<u32>, t4: vec4<u32>,
                 t5: vec4<u32>, t6: vec4<u32>, t7: vec4<u32>, t8: vec4<u32>, t9: vec4<u32> }

// (Each format builds its record in one expression: a `var` filled field by field lived in
// memory on lavapipe and cost more than the fetches.)
fn load_record8(su: u32) -> Record8 {
    let z = vec4<u32>(0u);
#if SCALED
    let i = su * ST;
#endif
#if S_NONE
    return Record8(z, z, z, z, z, z, z, z, z, z);
#endif
#if S_D
    return Record8(scale_texel(i), z, z, z, z, z, z, z, z, z);
#endif
#if S_DM
    return Record8(scale_texel(i), scale_texel(i + 1u), z, z, z, z, z, z, z, z);
#endif
#if S_DM16
    return Record8(scale_texel(i), scale_texel(i + 1u), scale_texel(i + 2u), scale_texel(i + 3u), z, z, z, z, z, z);
#endif
#if S_XS
    return Record8(scale_texel(i), scale_texel(i + 1u), scale_texel(i + 2u), scale_texel(i + 3u), z, z, z, z, z, z);
#endif
#if S_K4
    return Record8(scale_texel(i), scale_texel(i + 1u), scale_texel(i + 2u), scale_texel(i + 3u),
                   scale_texel(i + 4u), scale_texel(i + 5u), scale_texel(i + 6u), scale_texel(i + 7u), z, z);
#endif
#if S_K3
    return Record8(scale_texel(i), scale_texel(i + 1u), scale_texel(i + 2u), scale_texel(i + 3u),
                   scale_texel(i + 4u), scale_texel(i + 5u), scale_texel(i + 6u), scale_texel(i + 7u), z, z);
#endif
#if S_K6
    return Record8(scale_texel(i), scale_texel(i + 1u), scale_texel(i + 2u), scale_texel(i + 3u), scale_texel(i + 4u),
                   scale_texel(i + 5u), scale_texel(i + 6u), scale_texel(i + 7u), scale_texel(i + 8u), scale_texel(i + 9u));
#endif
#if S_K2
    return Record8(scale_texel(i), scale_texel(i + 1u), scale_texel(i + 2u), scale_texel(i + 3u), scale_texel(i + 4u),
                   scale_texel(i + 5u), scale_texel(i + 6u), scale_texel(i + 7u), scale_texel(i + 8u), scale_texel(i + 9u));
#endif
}

fn lo16(w: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x).x, unpack2x16float(w.y).x, unpack2x16float(w.z).x, unpack2x16float(w.w).x);
}

fn hi16(w: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x).y, unpack2x16float(w.y).y, unpack2x16float(w.z).y, unpack2x16float(w.w).y);
}

// Byte i (dynamic) of a record whose words are w0..w4, for four rows.
fn rec_byte(w0: vec4<u32>, w1: vec4<u32>, w2: vec4<u32>, w3: vec4<u32>, w4: vec4<u32>, i: u32) -> vec4<u32> {
    let k = i / 4u;
    var w = w0;
    if k == 1u { w = w1; }
    if k == 2u { w = w2; }
    if k == 3u { w = w3; }
    if k == 4u { w = w4; }
    return (w >> vec4<u32>(8u * (i % 4u))) & vec4<u32>(255u);
}

fn same(d: vec4<f32>, m: vec4<f32>) -> Scales4 {
    return Scales4(d, m, d, m);
}

// Block j's scales for rows 4h..4h+3 of a record (its words k at texels 2k + h).
fn half_scales(r: Record8, h: u32, j: u32) -> Scales4 {
#if S_NONE
    return same(vec4<f32>(1.0), vec4<f32>(0.0));
#endif
#if S_D
    let w = select(r.t0.xy, r.t0.zw, h == 1u);
    let a = unpack2x16float(w.x);
    let b = unpack2x16float(w.y);
    let d = vec4<f32>(a.x, a.y, b.x, b.y);
    return same(d, S_OFFSET * d);
#endif
#if S_DM
    let w = select(r.t0, r.t1, h == 1u);
    return same(lo16(w), hi16(w));
#endif
#if S_DM16
    let w = select(r.t0, r.t1, h == 1u);
    let w2 = select(r.t2, r.t3, h == 1u);
    return Scales4(lo16(w), hi16(w), lo16(w2), hi16(w2));
#endif
#if S_K4
    let w0 = select(r.t0, r.t1, h == 1u);
    let w1 = select(r.t2, r.t3, h == 1u);
    let w2 = select(r.t4, r.t5, h == 1u);
    let w3 = select(r.t6, r.t7, h == 1u);
    // The 12 scale bytes start at word 1 (byte 4).
    var sc: vec4<u32>;
    var mn: vec4<u32>;
    if j < 4u {
        sc = rec_byte(w0, w1, w2, w3, w3, 4u + j) & vec4<u32>(63u);
        mn = rec_byte(w0, w1, w2, w3, w3, 8u + j) & vec4<u32>(63u);
    } else {
        let b = rec_byte(w0, w1, w2, w3, w3, 8u + j);
        sc = (b & vec4<u32>(15u)) | ((rec_byte(w0, w1, w2, w3, w3, j) >> vec4<u32>(6u)) << vec4<u32>(4u));
        mn = (b >> vec4<u32>(4u)) | ((rec_byte(w0, w1, w2, w3, w3, 4u + j) >> vec4<u32>(6u)) << vec4<u32>(4u));
    }
    return same(lo16(w0) * vec4<f32>(sc), -hi16(w0) * vec4<f32>(mn));
#endif
#if S_K6
    let w0 = select(r.t0, r.t1, h == 1u);
    let w1 = select(r.t2, r.t3, h == 1u);
    let w2 = select(r.t4, r.t5, h == 1u);
    let w3 = select(r.t6, r.t7, h == 1u);
    let d = lo16(select(r.t8, r.t9, h == 1u));
    let s0 = d * vec4<f32>(bitcast<vec4<i32>>(rec_byte(w0, w1, w2, w3, w3, 2u * j) << vec4<u32>(24u)) >> vec4<u32>(24u));
    let s1 = d * vec4<f32>(bitcast<vec4<i32>>(rec_byte(w0, w1, w2, w3, w3, 2u * j + 1u) << vec4<u32>(24u)) >> vec4<u32>(24u));
    return Scales4(s0, -32.0 * s0, s1, -32.0 * s1);
#endif
#if S_K3
    let w0 = select(r.t0, r.t1, h == 1u);
    let w1 = select(r.t2, r.t3, h == 1u);
    let w2 = select(r.t4, r.t5, h == 1u);
    let d = lo16(select(r.t6, r.t7, h == 1u));
    let s = 2u * j;
    let t = s + 1u;
    let low0 = (rec_byte(w0, w1, w2, w2, w2, s % 8u) >> vec4<u32>(4u * (s / 8u))) & vec4<u32>(15u);
    let high0 = (rec_byte(w0, w1, w2, w2, w2, 8u + s % 4u) >> vec4<u32>(2u * (s / 4u))) & vec4<u32>(3u);
    let low1 = (rec_byte(w0, w1, w2, w2, w2, t % 8u) >> vec4<u32>(4u * (t / 8u))) & vec4<u32>(15u);
    let high1 = (rec_byte(w0, w1, w2, w2, w2, 8u + t % 4u) >> vec4<u32>(2u * (t / 4u))) & vec4<u32>(3u);
    let s0 = d * (vec4<f32>(low0 | (high0 << vec4<u32>(4u))) - 32.0);
    let s1 = d * (vec4<f32>(low1 | (high1 << vec4<u32>(4u))) - 32.0);
    return Scales4(s0, -4.0 * s0, s1, -4.0 * s1);
#endif
#if S_K2
    let w0 = select(r.t0, r.t1, h == 1u);
    let w1 = select(r.t2, r.t3, h == 1u);
    let w2 = select(r.t4, r.t5, h == 1u);
    let w3 = select(r.t6, r.t7, h == 1u);
    let w4 = select(r.t8, r.t9, h == 1u);
    let b0 = rec_byte(w0, w1, w2, w3, w3, 2u * j);
    let b1 = rec_byte(w0, w1, w2, w3, w3, 2u * j + 1u);
    let d = lo16(w4);
    let dmin = hi16(w4);
    return Scales4(d * vec4<f32>(b0 & vec4<u32>(15u)), -dmin * vec4<f32>(b0 >> vec4<u32>(4u)),
                   d * vec4<f32>(b1 & vec4<u32>(15u)), -dmin * vec4<f32>(b1 >> vec4<u32>(4u)));
#endif
#if S_XS
    let w0 = select(r.t0, r.t1, h == 1u);
    let w1 = select(r.t2, r.t3, h == 1u);
    let low = (w1 >> vec4<u32>(4u * j)) & vec4<u32>(15u);
    let high = (w0 >> vec4<u32>(16u + 2u * j)) & vec4<u32>(3u);
    return same(lo16(w0) * (vec4<f32>(low | (high << vec4<u32>(4u))) - 32.0), vec4<f32>(0.0));
#endif
}

// Block j's scales of the eight rows: a for rows 0..3, b for 4..7.
struct Scales8 { a: Scales4, b: Scales4 }

fn block_scales(r: Record8, j: u32) -> Scales8 {
    return Scales8(half_scales(r, 0u, j), half_scales(r, 1u, j));
}
