// y = W x for one token (decode), W in its quantized texture layout (src/quant/layout.rs).
//
// One workgroup per tile of 64 rows; each invocation owns 8 neighbouring rows and reuses each
// block of x it loads for all 8. x is read through a uniform binding: on software adapters
// those loads are broadcasts, where storage loads are per-lane loops.
// Variants:
//   NORM    x is RMS-normalised with gamma first: W (x*g) / rms(x), rms computed on the fly
//   ADD     y += W x (residual add)
//   SWIGLU  rows come in (gate, up) pairs; y[i] = silu(gate_i) * up_i
// Constants: K (row length), N (rows), XV (vec4s in the x window), EPS.
// The bindings of x and y start at this token's rows (dynamic offsets).

@group(0) @binding(2) var wq: texture_2d_array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#if SCALED
@group(0) @binding(4) var ws: texture_2d_array<u32>;
#endif
#if NORM
@group(0) @binding(5) var<uniform> gamma: array<vec4<f32>, K / 4u>;
#endif
@group(0) @binding(6) var<uniform> x: array<vec4<f32>, XV>;

#include "weights.wgsl"

const NB: u32 = K / 32u;

fn dot8(w: W8, lo: vec4<f32>, hi: vec4<f32>) -> f32 {
    return dot(w.lo, lo) + dot(w.hi, hi);
}

fn row_dot(bi: u32, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>,
           x4: vec4<f32>, x5: vec4<f32>, x6: vec4<f32>, x7: vec4<f32>) -> f32 {
    let blk = load_block(bi);
    return dot8(chunk(blk, 0u), x0, x1) + dot8(chunk(blk, 1u), x2, x3)
         + dot8(chunk(blk, 2u), x4, x5) + dot8(chunk(blk, 3u), x6, x7);
}

fn store(row: u32, v: f32) {
    if row < N {
#if ADD
        y[row] += v;
#else
        y[row] = v;
#endif
    }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let row0 = wg.x * 64u + lane * 8u;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var ss = 0.0;
    for (var b = 0u; b < NB; b++) {
        let xb = b * 8u;
        var x0 = x[xb];
        var x1 = x[xb + 1u];
        var x2 = x[xb + 2u];
        var x3 = x[xb + 3u];
        var x4 = x[xb + 4u];
        var x5 = x[xb + 5u];
        var x6 = x[xb + 6u];
        var x7 = x[xb + 7u];
#if NORM
        ss += dot(x0, x0) + dot(x1, x1) + dot(x2, x2) + dot(x3, x3) + dot(x4, x4) + dot(x5, x5) + dot(x6, x6) + dot(x7, x7);
        x0 *= gamma[xb];
        x1 *= gamma[xb + 1u];
        x2 *= gamma[xb + 2u];
        x3 *= gamma[xb + 3u];
        x4 *= gamma[xb + 4u];
        x5 *= gamma[xb + 5u];
        x6 *= gamma[xb + 6u];
        x7 *= gamma[xb + 7u];
#endif
        let s4 = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
        let xs = s4.x + s4.y + s4.z + s4.w;
        let bi = block_index(row0, b, NB);
        let sa = load_scales4(bi);
        let sb = load_scales4(bi + 4u);
        let pa = vec4<f32>(row_dot(bi, x0, x1, x2, x3, x4, x5, x6, x7), row_dot(bi + 1u, x0, x1, x2, x3, x4, x5, x6, x7),
                           row_dot(bi + 2u, x0, x1, x2, x3, x4, x5, x6, x7), row_dot(bi + 3u, x0, x1, x2, x3, x4, x5, x6, x7));
        let pb = vec4<f32>(row_dot(bi + 4u, x0, x1, x2, x3, x4, x5, x6, x7), row_dot(bi + 5u, x0, x1, x2, x3, x4, x5, x6, x7),
                           row_dot(bi + 6u, x0, x1, x2, x3, x4, x5, x6, x7), row_dot(bi + 7u, x0, x1, x2, x3, x4, x5, x6, x7));
        a0 += sa.d * pa + sa.m * xs;
        a1 += sb.d * pb + sb.m * xs;
    }
#if NORM
    let inv = inverseSqrt(ss / f32(K) + EPS);
    a0 *= inv;
    a1 *= inv;
#endif
#if SWIGLU
    // Rows (2i, 2i+1) are (gate_i, up_i).
    let g = vec4<f32>(a0.x, a0.z, a1.x, a1.z);
    let u = vec4<f32>(a0.y, a0.w, a1.y, a1.w);
    let h = g / (1.0 + exp(-g)) * u;
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
