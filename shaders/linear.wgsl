// y = W x for one token (decode), W in its quantized texture layout (src/quant/layout.rs).
//
// Two shapes of the same computation, chosen per adapter class (src/ops/linear.rs):
//   rows   (CPU adapters) one invocation owns an octet of 8 neighbouring rows and walks all of
//          K, reusing each block of x it loads for all 8 and each scale record for its SB
//          blocks: SIMD lanes gather, nothing is reduced. (The blocks of a scale unit are
//          unrolled: a nested loop made lavapipe's code 1.4-1.7x slower.)
//   SPLIT  (GPUs) a workgroup of 64 owns an octet and its invocations split K between them; the
//          partial sums meet in reduce.wgsl (subgroup operations or workgroup memory).
// x (and gamma) are read through uniform bindings in the rows shape, where every lane reads the
// same address: broadcast loads on software adapters, where storage loads are per-lane loops.
// With X_STORAGE they are storage bindings: in the SPLIT shape (lanes read different addresses,
// which a GPU's constant cache would serialise) and wherever a row is wider than a uniform
// window.
// Variants:
//   NORM    x is RMS-normalised with gamma first: W (x*g) / rms(x), rms computed on the fly
//   ADD     y += W x (residual add)
//   BIAS    y = W x + b (Qwen 2's Q|K|V; with GLU, before the activation: gpt-oss's experts)
//   GLU     rows come in (gate, up) pairs; y[i] = silu(gate_i) * up_i, or gelu(gate_i) * up_i
//           with GELU, or gpt-oss's clamped form with OAI (glu.wgsl)
//   F16     weights dequantized and multiplied in f16, sums kept in f32
//   CACHE   the Q|K|V kernel also writes K (rotated) and V into the layer's cache
//           (cache_write.wgsl)
//   EXPERTS a mixture-of-experts matrix: W holds the experts' matrices one after the other
//           (EXPERT_OCTETS octets each, N rows), and workgroup row `pair` of the grid computes
//           the expert `route[pair]` picked for that (token, slot) pair (src/ops/experts.rs);
//           x is row pair / X_PAIRS of a whole storage binding, y row `pair`
// and the weight format's flags (weights.wgsl).
// Constants: K (row length), N (rows), ROW0 (the first row of this part of the matrix: fused
// tensors of different types are parts of their own, src/ops/linear.rs), XV (vec4s in a
// uniform x window), EPS.
// The bindings of x and y start at this token's rows (dynamic offsets).

@group(0) @binding(3) var<storage, read_write> y: array<f32>;
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
#if EXPERTS
@group(0) @binding(11) var<storage, read> route: array<u32>;
// Where this pair's row of x (in vec4s), of y and of the bias (in floats) start.
var<private> x_base: u32;
var<private> y_base: u32;
var<private> b_base: u32;

// The first octet of the pair's expert, after pointing x, y and the bias at the pair's rows.
fn route_pair(pair: u32) -> u32 {
    let expert = min(route[pair], N_EXPERT - 1u);
    x_base = (pair / X_PAIRS) * XS;
    y_base = pair * YS;
    b_base = expert * N;
    return expert * EXPERT_OCTETS;
}
#else
const x_base = 0u;
const y_base = 0u;
const b_base = 0u;

fn route_pair(pair: u32) -> u32 {
    return 0u;
}
#endif

#include "weights.wgsl"
#include "glu.wgsl"
#if CACHE
#include "cache_write.wgsl"
#endif
#if SPLIT
#include "reduce.wgsl"
#endif

// One block of x (32 values), normalised by gamma when NORM, with its sum and sum of squares.
struct XBlock {
    v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>,
    v4: vec4<f32>, v5: vec4<f32>, v6: vec4<f32>, v7: vec4<f32>,
    sum: f32,
    squares: f32,
    // Sum of the first 16 values.
    half_sum: f32,
}

#if NORM
// 1 / rms(x), from a pass of its own: the f16 path normalises x before any product, since the
// raw residual stream can exceed f16's range once multiplied.
fn rms_inverse() -> f32 {
    var ss = vec4<f32>(0.0);
    for (var i = 0u; i < K / 4u; i += 4u) {
        let a = x[x_base + i];
        let b = x[x_base + i + 1u];
        let c = x[x_base + i + 2u];
        let d = x[x_base + i + 3u];
        ss += vec4<f32>(dot(a, a), dot(b, b), dot(c, c), dot(d, d));
    }
    return inverseSqrt((ss.x + ss.y + ss.z + ss.w) / f32(K) + EPS);
}
#endif

fn load_x(b: u32, pre_scale: f32) -> XBlock {
    let i = b * 8u;
    let xi = x_base + i;
    var blk = XBlock(x[xi], x[xi + 1u], x[xi + 2u], x[xi + 3u], x[xi + 4u], x[xi + 5u], x[xi + 6u], x[xi + 7u], 0.0, 0.0, 0.0);
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
    let h4 = blk.v0 + blk.v1 + blk.v2 + blk.v3;
    blk.half_sum = h4.x + h4.y + h4.z + h4.w;
    let s4 = h4 + blk.v4 + blk.v5 + blk.v6 + blk.v7;
    blk.sum = s4.x + s4.y + s4.z + s4.w;
    return blk;
}

// Eight row results.
struct Out8 { a: vec4<f32>, b: vec4<f32> }

fn dot8(w: W8, lo: vec4<wf>, hi: vec4<wf>) -> f32 {
    return f32(dot(w.lo, lo)) + f32(dot(w.hi, hi));
}

#if F16
fn deq(w: W8, d: f32, m: f32) -> W8 {
    let dh = wf(d);
    let mh = wf(m);
    return W8(dh * w.lo + mh, dh * w.hi + mh);
}
#endif

// Each row's chunk c times eight values of x, one row decoded at a time (so that few registers
// are live: on CPU adapters, spilled registers cost more than the arithmetic). With F16 the
// weights are dequantized first (with the scales of the block's first or second half), so
// that f16 products stay small.
fn sums8(cw: ChunkWords, c: u32, xlo: vec4<f32>, xhi: vec4<f32>, s: Scales8) -> Out8 {
    let lo = vec4<wf>(xlo);
    let hi = vec4<wf>(xhi);
#if F16
    let upper = c >= 2u;
    let da = select(s.a.d, s.a.d2, upper);
    let ma = select(s.a.m, s.a.m2, upper);
    let db = select(s.b.d, s.b.d2, upper);
    let mb = select(s.b.m, s.b.m2, upper);
    return Out8(vec4<f32>(dot8(deq(row_of(cw, c, 0u), da.x, ma.x), lo, hi), dot8(deq(row_of(cw, c, 1u), da.y, ma.y), lo, hi),
                          dot8(deq(row_of(cw, c, 2u), da.z, ma.z), lo, hi), dot8(deq(row_of(cw, c, 3u), da.w, ma.w), lo, hi)),
                vec4<f32>(dot8(deq(row_of(cw, c, 4u), db.x, mb.x), lo, hi), dot8(deq(row_of(cw, c, 5u), db.y, mb.y), lo, hi),
                          dot8(deq(row_of(cw, c, 6u), db.z, mb.z), lo, hi), dot8(deq(row_of(cw, c, 7u), db.w, mb.w), lo, hi)));
#else
    return Out8(vec4<f32>(dot8(row_of(cw, c, 0u), lo, hi), dot8(row_of(cw, c, 1u), lo, hi),
                          dot8(row_of(cw, c, 2u), lo, hi), dot8(row_of(cw, c, 3u), lo, hi)),
                vec4<f32>(dot8(row_of(cw, c, 4u), lo, hi), dot8(row_of(cw, c, 5u), lo, hi),
                          dot8(row_of(cw, c, 6u), lo, hi), dot8(row_of(cw, c, 7u), lo, hi)));
#endif
}

// Adds block b (quant unit u, scales sc) of the eight rows times x: d Σ q x + m Σ x in f32 per
// half block (with F16, Σ (d q + m) x).
fn accumulate(b: u32, u: u32, sc: Scales8, pre_scale: f32, acc: ptr<function, Sums>) {
    let xb = load_x(b, pre_scale);
    let o0 = sums8(chunk_words(u, 0u), 0u, xb.v0, xb.v1, sc);
    let o1 = sums8(chunk_words(u, 1u), 1u, xb.v2, xb.v3, sc);
    let o2 = sums8(chunk_words(u, 2u), 2u, xb.v4, xb.v5, sc);
    let o3 = sums8(chunk_words(u, 3u), 3u, xb.v6, xb.v7, sc);
#if F16
    (*acc).a += (o0.a + o1.a) + (o2.a + o3.a);
    (*acc).b += (o0.b + o1.b) + (o2.b + o3.b);
#else
    let upper_sum = xb.sum - xb.half_sum;
    (*acc).a += sc.a.d * (o0.a + o1.a) + sc.a.m * xb.half_sum + sc.a.d2 * (o2.a + o3.a) + sc.a.m2 * upper_sum;
    (*acc).b += sc.b.d * (o0.b + o1.b) + sc.b.m * xb.half_sum + sc.b.d2 * (o2.b + o3.b) + sc.b.m2 * upper_sum;
#endif
    (*acc).c.x += xb.squares;
}

fn store(row: u32, v: f32) {
    if row < N {
#if BIAS
        var out = v + bias[b_base + ROW0 + row];
#else
        var out = v;
#endif
#if SOFTCAP
        out = CAP * tanh(out / CAP);
#endif
#if ADD
        y[y_base + ROW0 + row] += out;
#else
        y[y_base + ROW0 + row] = out;
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
    let h = glu_octet(a0, a1, b_base + ROW0 + row0);
    let o = y_base + row0 / 2u;
    if row0 < N {
        y[o] = h.x;
        y[o + 1u] = h.y;
        y[o + 2u] = h.z;
        y[o + 3u] = h.w;
    }
#else
#if CACHE
    if row0 < N {
        cache_store(ROW0 + row0, 0u, a0, a1);
    }
#endif
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
    let octet = wg.x;
    let w_octet = route_pair(wg.y) + octet;
    var acc = Sums(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let scale = input_scale();
    // Lanes take blocks; each reads its block's scale unit (superblocks: shared by 8 lanes).
    for (var b = lane; b < NB; b += 64u) {
        let sc = block_scales(load_record8(unit_of(w_octet, b / SB, NS)), b % SB);
        accumulate(b, unit_of(w_octet, b, NB), sc, scale, &acc);
    }
    let total = workgroup_sum(lane, acc);
    if lane == 0u {
        finish(octet * 8u, total);
    }
}
#else
struct Sums { a: vec4<f32>, b: vec4<f32>, c: vec4<f32> }

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let octet = wg.x * 8u + lane;
    let w_octet = route_pair(wg.y) + octet;
    var acc = Sums(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let scale = input_scale();
    for (var s = 0u; s < NS; s++) {
        let record = load_record8(unit_of(w_octet, s, NS));
#for j in 0..SB
        accumulate(s * SB + {j}u, unit_of(w_octet, s * SB + {j}u, NB), block_scales(record, {j}u), scale, &acc);
#endfor
    }
    finish(octet * 8u, acc);
}
#endif
