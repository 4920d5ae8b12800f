// y = W x for one token (decode), W in its quantized texture layout (src/quant/layout.rs).
//
// Two shapes of the same computation, chosen per adapter class (src/ops/linear.rs):
//   rows   (CPU adapters) one invocation owns 8 neighbouring rows and walks all of K, reusing
//          each block of x it loads for all 8: SIMD lanes gather, nothing is reduced.
//   SPLIT  (GPUs) a workgroup of 64 owns 8 rows and its invocations split K between them; the
//          partial sums meet in reduce.wgsl (subgroup operations or workgroup memory).
// x (and gamma) are read through uniform bindings in the rows shape, where every lane reads the
// same address: broadcast loads on software adapters, where storage loads are per-lane loops.
// With X_STORAGE they are storage bindings: in the SPLIT shape (lanes read different addresses,
// which a GPU's constant cache would serialise) and wherever a row is wider than a uniform
// window.
// Variants:
//   NORM    x is RMS-normalised with gamma first: W (x*g) / rms(x), rms computed on the fly
//   ADD     y += W x (residual add)
//   BIAS    y = W x + b (Qwen 2's Q|K|V; not with GLU)
//   GLU     rows come in (gate, up) pairs; y[i] = silu(gate_i) * up_i, or gelu(gate_i) * up_i
//           with GELU (glu.wgsl)
//   F16     weights dequantized and multiplied in f16, sums kept in f32
//   HALF_SCALES  a (d, m) pair per 16 weights (see weights.wgsl)
// Constants: K (row length), N (rows), XV (vec4s in a uniform x window), EPS.
// The bindings of x and y start at this token's rows (dynamic offsets).

@group(0) @binding(2) var wq: texture_2d_array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#if SCALED
@group(0) @binding(4) var ws: texture_2d_array<u32>;
#endif
#if X_STORAGE
#if NORM
@group(0) @binding(5) var<storage, read> gamma: array<vec4<f32>>;
#endif
@group(0) @binding(6) var<storage, read> x: array<vec4<f32>>;
#else
#if NORM
@group(0) @binding(5) var<uniform> gamma: array<vec4<f32>, K / 4u>;
#endif
@group(0) @binding(6) var<uniform> x: array<vec4<f32>, XV>;
#endif
#if BIAS
@group(0) @binding(7) var<storage, read> bias: array<f32>;
#endif

#include "weights.wgsl"
#include "glu.wgsl"
#if SPLIT
#include "reduce.wgsl"
#endif

const NB: u32 = K / 32u;

// One block of x (32 values), normalised by gamma when NORM, with its sum and sum of squares.
struct XBlock {
    v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>,
    v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>,
    sum: f32,
    squares: f32,
    // Sum of the first 16 values (HALF_SCALES only).
    half_sum: f32,
}

#if NORM
// 1 / rms(x), from a pass of its own: the f16 path normalises x before any product, since the
// raw residual stream can exceed f16's range once multiplied.
fn rms_inverse() -> f32 {
    var ss = 0.0;
    for (var i = 0u; i < K / 4u; i++) {
        ss += dot(x[i], x[i]);
    }
    return inverseSqrt(ss / f32(K) + EPS);
}
#endif

fn load_x(b: u32, pre_scale: f32) -> XBlock {
    let i = b * 8u;
    var blk = XBlock(x[i], x[i + 1u], x[i + 2u], x[i + 3u], x[i + 4u], x[i + 5u], x[i + 6u], x[i + 7u], 0.0, 0.0, 0.0);
#if NORM
    blk.squares = dot(blk.v0, blk.v0) + dot(blk.v1, blk.v1) + dot(blk.v2, blk.v2) + dot(blk.v3, blk.v3)
                + dot(blk.v4, blk.v4) + dot(blk.v5, blk.v5) + dot(blk.v6, blk.v6) + dot(blk.v7, blk.v7);
    blk.v0 *= gamma[i] * pre_scale;
    blk.v1 *= gamma[i + 1u] * pre_scale;
    blk.v2 *= gamma[i + 2u] * pre_scale;
    blk.v3 *= gamma[i + 3u] * pre_scale;
    blk.v4 *= gamma[i + 4u] * pre_scale;
    blk.v5 *= gamma[i + 5u] * pre_scale;
    blk.v6 *= gamma[i + 6u] * pre_scale;
    blk.v7 *= gamma[i + 7u] * pre_scale;
#endif
#if HALF_SCALES
    let h4 = blk.v0 + blk.v1 + blk.v2 + blk.v3;
    blk.half_sum = h4.x + h4.y + h4.z + h4.w;
    let s4 = h4 + blk.v4 + blk.v5 + blk.v6 + blk.v7;
#else
    let s4 = blk.v0 + blk.v1 + blk.v2 + blk.v3 + blk.v4 + blk.v5 + blk.v6 + blk.v7;
#endif
    blk.sum = s4.x + s4.y + s4.z + s4.w;
    return blk;
}

fn dot8(w: W8, lo: vec4<f32>, hi: vec4<f32>) -> f32 {
    return f32(dot(w.lo, vec4<wf>(lo))) + f32(dot(w.hi, vec4<wf>(hi)));
}

// Row `bi`'s block times x: d * Σ q x + m * Σ x in f32 ((d2, m2) for its second 16 weights);
// with F16 the weights are dequantized first, so that f16 products stay small.
fn row_dot(bi: u32, d: f32, m: f32, d2: f32, m2: f32, xb: XBlock) -> f32 {
    let blk = load_block(bi);
#if F16
    let dh = wf(d);
    let mh = wf(m);
    let dh2 = wf(d2);
    let mh2 = wf(m2);
    var c = chunk(blk, 0u);
    var s = dot8(W8(dh * c.lo + mh, dh * c.hi + mh), xb.v0, xb.v1);
    c = chunk(blk, 1u);
    s += dot8(W8(dh * c.lo + mh, dh * c.hi + mh), xb.v2, xb.v3);
    c = chunk(blk, 2u);
    s += dot8(W8(dh2 * c.lo + mh2, dh2 * c.hi + mh2), xb.v4, xb.v5);
    c = chunk(blk, 3u);
    s += dot8(W8(dh2 * c.lo + mh2, dh2 * c.hi + mh2), xb.v6, xb.v7);
    return s;
#else
#if HALF_SCALES
    let s0 = dot8(chunk(blk, 0u), xb.v0, xb.v1) + dot8(chunk(blk, 1u), xb.v2, xb.v3);
    let s1 = dot8(chunk(blk, 2u), xb.v4, xb.v5) + dot8(chunk(blk, 3u), xb.v6, xb.v7);
    return d * s0 + m * xb.half_sum + d2 * s1 + m2 * (xb.sum - xb.half_sum);
#else
    let s = dot8(chunk(blk, 0u), xb.v0, xb.v1) + dot8(chunk(blk, 1u), xb.v2, xb.v3)
          + dot8(chunk(blk, 2u), xb.v4, xb.v5) + dot8(chunk(blk, 3u), xb.v6, xb.v7);
    return d * s + m * xb.sum;
#endif
#endif
}

// Adds block `b` of rows row0..row0+7 (one tile, so their block indices are consecutive).
fn accumulate(b: u32, row0: u32, pre_scale: f32, acc: ptr<function, Sums>) {
    let xb = load_x(b, pre_scale);
    let bi = block_index(row0, b, NB);
    let sa = load_scales4(bi);
    let sb = load_scales4(bi + 4u);
    (*acc).a += vec4<f32>(row_dot(bi, sa.d.x, sa.m.x, sa.d2.x, sa.m2.x, xb),
                          row_dot(bi + 1u, sa.d.y, sa.m.y, sa.d2.y, sa.m2.y, xb),
                          row_dot(bi + 2u, sa.d.z, sa.m.z, sa.d2.z, sa.m2.z, xb),
                          row_dot(bi + 3u, sa.d.w, sa.m.w, sa.d2.w, sa.m2.w, xb));
    (*acc).b += vec4<f32>(row_dot(bi + 4u, sb.d.x, sb.m.x, sb.d2.x, sb.m2.x, xb),
                          row_dot(bi + 5u, sb.d.y, sb.m.y, sb.d2.y, sb.m2.y, xb),
                          row_dot(bi + 6u, sb.d.z, sb.m.z, sb.d2.z, sb.m2.z, xb),
                          row_dot(bi + 7u, sb.d.w, sb.m.w, sb.d2.w, sb.m2.w, xb));
    (*acc).c.x += xb.squares;
}

fn store(row: u32, v: f32) {
    if row < N {
#if BIAS
        let out = v + bias[row];
#else
        let out = v;
#endif
#if ADD
        y[row] += out;
#else
        y[row] = out;
#endif
    }
}

// The scale x gets before the products (1, or 1/rms on the f16 path).
fn input_scale() -> f32 {
#if NORM
#if F16
    return rms_inverse();
#endif
#endif
    return 1.0;
}

fn finish(row0: u32, acc: Sums) {
    var a0 = acc.a;
    var a1 = acc.b;
#if NORM
#if !F16
    let inv = inverseSqrt(acc.c.x / f32(K) + EPS);
    a0 *= inv;
    a1 *= inv;
#endif
#endif
#if GLU
    // Rows (2i, 2i+1) are (gate_i, up_i).
    let g = vec4<f32>(a0.x, a0.z, a1.x, a1.z);
    let u = vec4<f32>(a0.y, a0.w, a1.y, a1.w);
    let h = glu(g, u);
    let o = row0 / 2u;
    if row0 < N {
        y[o] = h.x;
        y[o + 1u] = h.y;
        y[o + 2u] = h.z;
        y[o + 3u] = h.w;
    }
#else
    store(row0, a0.x);
    store(row0 + 1u, a0.y);
    store(row0 + 2u, a0.z);
    store(row0 + 3u, a0.w);
    store(row0 + 4u, a1.x);
    store(row0 + 5u, a1.y);
    store(row0 + 6u, a1.z);
    store(row0 + 7u, a1.w);
#endif
}

#if SPLIT
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let row0 = wg.x * 8u;
    var acc = Sums(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let scale = input_scale();
    for (var b = lane; b < NB; b += 64u) {
        accumulate(b, row0, scale, &acc);
    }
    let total = workgroup_sum(lane, acc);
    if lane == 0u {
        finish(row0, total);
    }
}
#else
struct Sums { a: vec4<f32>, b: vec4<f32>, c: vec4<f32> }

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let row0 = wg.x * 64u + lane * 8u;
    var acc = Sums(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let scale = input_scale();
    for (var b = 0u; b < NB; b++) {
        accumulate(b, row0, scale, &acc);
    }
    finish(row0, acc);
}
#endif
