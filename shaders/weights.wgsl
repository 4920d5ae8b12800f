// Reading weight blocks in the GPU layout of src/quant/layout.rs, stored in textures as
// src/gpu/texture.rs describes. The including shader declares `wq: texture_2d_array<u32>` (quant
// words) with constant WQ_H (its rows per layer) and, for the quantized formats,
// `ws: texture_2d_array<u32>` (f16 pairs (d, m): four blocks' per texel, two with HALF_SCALES)
// with WS_H.
// A weight is d * q + m. Exactly one of W_Q4, W_Q8, W_F16, W_F32 is set.

#include "texels.wgsl"

fn quant_texel(i: u32) -> vec4<u32> {
    let c = texel_coords(i, WQ_H);
    return textureLoad(wq, c.xy, c.z, 0);
}

// The raw texels of one block: 1 for 4-bit, 2 for 8-bit, 4 for f16, 8 for f32.
#if W_Q4
const BLOCK_TEXELS: u32 = 1u;
struct Block { t0: vec4<u32> }
fn load_block(bi: u32) -> Block {
    return Block(quant_texel(bi));
}
#endif
#if W_Q8
const BLOCK_TEXELS: u32 = 2u;
struct Block { t0: vec4<u32>, t1: vec4<u32> }
fn load_block(bi: u32) -> Block {
    return Block(quant_texel(2u * bi), quant_texel(2u * bi + 1u));
}
#endif
#if W_F16
const BLOCK_TEXELS: u32 = 4u;
struct Block { t0: vec4<u32>, t1: vec4<u32>, t2: vec4<u32>, t3: vec4<u32> }
fn load_block(bi: u32) -> Block {
    let i = 4u * bi;
    return Block(quant_texel(i), quant_texel(i + 1u), quant_texel(i + 2u), quant_texel(i + 3u));
}
#endif
#if W_F32
const BLOCK_TEXELS: u32 = 8u;
struct Block { t0: vec4<u32>, t1: vec4<u32>, t2: vec4<u32>, t3: vec4<u32>, t4: vec4<u32>, t5: vec4<u32>, t6: vec4<u32>, t7: vec4<u32> }
fn load_block(bi: u32) -> Block {
    let i = 8u * bi;
    return Block(quant_texel(i), quant_texel(i + 1u), quant_texel(i + 2u), quant_texel(i + 3u),
                 quant_texel(i + 4u), quant_texel(i + 5u), quant_texel(i + 6u), quant_texel(i + 7u));
}
#endif

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

fn signed_bytes(u: u32) -> vec4<wf> {
    return vec4<wf>(bitcast<vec4<i32>>(vec4<u32>(u) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

// (naga cannot yet bitcast a u32 to vec2<f16>, so f16 data goes through unpack2x16float.)
fn halves(w: vec4<u32>) -> W8 {
    return W8(vec4<wf>(vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y))),
              vec4<wf>(vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w))));
}

fn floats(a: vec4<u32>, b: vec4<u32>) -> W8 {
    return W8(vec4<wf>(bitcast<vec4<f32>>(a)), vec4<wf>(bitcast<vec4<f32>>(b)));
}

// Weights 8c..8c+7 of a block; `c` is a literal at every call, so this folds to one case.
fn chunk(b: Block, c: u32) -> W8 {
#if W_Q4
    return nibbles(b.t0[c]);
#endif
#if W_Q8
    let t = select(b.t1, b.t0, c < 2u);
    return W8(signed_bytes(t[(2u * c) % 4u]), signed_bytes(t[(2u * c + 1u) % 4u]));
#endif
#if W_F16
    switch c {
        case 0u: { return halves(b.t0); }
        case 1u: { return halves(b.t1); }
        case 2u: { return halves(b.t2); }
        default: { return halves(b.t3); }
    }
#endif
#if W_F32
    switch c {
        case 0u: { return floats(b.t0, b.t1); }
        case 1u: { return floats(b.t2, b.t3); }
        case 2u: { return floats(b.t4, b.t5); }
        default: { return floats(b.t6, b.t7); }
    }
#endif
}

// Scales of the four blocks bi..bi+3 (bi a multiple of 4: four neighbouring rows): (d, m) for
// weights 0..15 of each block and (d2, m2) for weights 16..31, the same pair unless HALF_SCALES
// (one pair per 16 weights, stored after each other: four texel words hold two blocks).
struct Scales4 { d: vec4<f32>, m: vec4<f32>, d2: vec4<f32>, m2: vec4<f32> }

#if SCALED
fn scale_texel(i: u32) -> vec4<u32> {
    let c = texel_coords(i, WS_H);
    return textureLoad(ws, c.xy, c.z, 0);
}
#endif

fn load_scales4(bi: u32) -> Scales4 {
#if SCALED
#if HALF_SCALES
    let s0 = scale_texel(bi / 2u);
    let s1 = scale_texel(bi / 2u + 1u);
    let a = unpack2x16float(s0.x);
    let a2 = unpack2x16float(s0.y);
    let b = unpack2x16float(s0.z);
    let b2 = unpack2x16float(s0.w);
    let e = unpack2x16float(s1.x);
    let e2 = unpack2x16float(s1.y);
    let f = unpack2x16float(s1.z);
    let f2 = unpack2x16float(s1.w);
    return Scales4(vec4<f32>(a.x, b.x, e.x, f.x), vec4<f32>(a.y, b.y, e.y, f.y),
                   vec4<f32>(a2.x, b2.x, e2.x, f2.x), vec4<f32>(a2.y, b2.y, e2.y, f2.y));
#else
    let s = scale_texel(bi / 4u);
    let a = unpack2x16float(s.x);
    let b = unpack2x16float(s.y);
    let e = unpack2x16float(s.z);
    let f = unpack2x16float(s.w);
    let d = vec4<f32>(a.x, b.x, e.x, f.x);
    let m = vec4<f32>(a.y, b.y, e.y, f.y);
    return Scales4(d, m, d, m);
#endif
#else
    return Scales4(vec4<f32>(1.0), vec4<f32>(0.0), vec4<f32>(1.0), vec4<f32>(0.0));
#endif
}

// Index of block `b` of row `row` (see src/quant/layout.rs), for a matrix with `nb` blocks per row.
fn block_index(row: u32, b: u32, nb: u32) -> u32 {
    return ((row / 64u) * nb + b) * 64u + row % 64u;
}
