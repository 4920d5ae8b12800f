// y = W x for a batch of tokens (prompt processing), W in its quantized texture layout.
//
// One workgroup per tile of 64 rows and 8 tokens; each invocation owns 8 rows x 8 tokens, so
// every weight it dequantizes is used 8 times. x is read through a uniform binding that
// starts at this dispatch's first token (dynamic offset); `window` says how many tokens are in
// it and where their rows of y start.
// Variants (F16 included) and constants as in linear.wgsl, plus XS (vec4s per x row) and YS
// (floats per y row).

struct Window {
    // Tokens in this dispatch's x window.
    count: u32,
    // Row of y that the window's first token writes.
    out_row: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(1) var<uniform> window: Window;
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

// One chunk (8 consecutive weights) of 8 rows, dequantized.
struct Rows8 { r0: W8, r1: W8, r2: W8, r3: W8, r4: W8, r5: W8, r6: W8, r7: W8 }
// Eight row results for one token.
struct Out8 { a: vec4<f32>, b: vec4<f32> }

fn deq(w: W8, d: f32, m: f32, g: W8) -> W8 {
    let dh = wf(d);
    let mh = wf(m);
    return W8((dh * w.lo + mh) * g.lo, (dh * w.hi + mh) * g.hi);
}

fn dot8(w: W8, lo: vec4<wf>, hi: vec4<wf>) -> f32 {
    return f32(dot(w.lo, lo)) + f32(dot(w.hi, hi));
}

fn rows_dot(w: Rows8, lo: vec4<wf>, hi: vec4<wf>) -> Out8 {
    return Out8(vec4<f32>(dot8(w.r0, lo, hi), dot8(w.r1, lo, hi), dot8(w.r2, lo, hi), dot8(w.r3, lo, hi)),
                vec4<f32>(dot8(w.r4, lo, hi), dot8(w.r5, lo, hi), dot8(w.r6, lo, hi), dot8(w.r7, lo, hi)));
}

#if NORM
// 1 / rms of the x row at `row` (a vec4 index).
fn rms_inverse(row: u32) -> f32 {
    var ss = 0.0;
    for (var i = 0u; i < K / 4u; i++) {
        ss += dot(x[row + i], x[row + i]);
    }
    return inverseSqrt(ss / f32(K) + EPS);
}
#endif

fn store_token(t: u32, row0: u32, a: vec4<f32>, b: vec4<f32>) {
    let base = (window.out_row + t) * YS;
#if SWIGLU
    // Rows (2i, 2i+1) are (gate_i, up_i).
    let g = vec4<f32>(a.x, a.z, b.x, b.z);
    let u = vec4<f32>(a.y, a.w, b.y, b.w);
    let h = g / (1.0 + exp(-g)) * u;
    let o = base + row0 / 2u;
    if row0 < N {
        y[o] = h.x;
        y[o + 1u] = h.y;
        y[o + 2u] = h.z;
        y[o + 3u] = h.w;
    }
#else
    let v = array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
    for (var j = 0u; j < 8u; j++) {
        if row0 + j < N {
#if ADD
            y[base + row0 + j] += v[j];
#else
            y[base + row0 + j] = v[j];
#endif
        }
    }
#endif
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t0 = wg.y * 8u;
    if t0 >= window.count {
        return;
    }
    let row0 = wg.x * 64u + lane * 8u;
    let last = window.count - 1u;

    let x0 = min(t0 + 0u, last) * XS;
    let x1 = min(t0 + 1u, last) * XS;
    let x2 = min(t0 + 2u, last) * XS;
    let x3 = min(t0 + 3u, last) * XS;
    let x4 = min(t0 + 4u, last) * XS;
    let x5 = min(t0 + 5u, last) * XS;
    let x6 = min(t0 + 6u, last) * XS;
    let x7 = min(t0 + 7u, last) * XS;
#if NORM
#if F16
    // The f16 path normalises x before any product: the raw residual stream can exceed f16's
    // range once multiplied.
    let p0 = rms_inverse(x0);
    let p1 = rms_inverse(x1);
    let p2 = rms_inverse(x2);
    let p3 = rms_inverse(x3);
    let p4 = rms_inverse(x4);
    let p5 = rms_inverse(x5);
    let p6 = rms_inverse(x6);
    let p7 = rms_inverse(x7);
#endif
#endif
    var a0 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var ss0 = 0.0;
    var a1 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var ss1 = 0.0;
    var a2 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var ss2 = 0.0;
    var a3 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var ss3 = 0.0;
    var a4 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0);
    var ss4 = 0.0;
    var a5 = vec4<f32>(0.0);
    var b5 = vec4<f32>(0.0);
    var ss5 = 0.0;
    var a6 = vec4<f32>(0.0);
    var b6 = vec4<f32>(0.0);
    var ss6 = 0.0;
    var a7 = vec4<f32>(0.0);
    var b7 = vec4<f32>(0.0);
    var ss7 = 0.0;
    for (var b = 0u; b < NB; b++) {
        let bi = block_index(row0, b, NB);
        let sa = load_scales4(bi);
        let sb = load_scales4(bi + 4u);
        let k0 = load_block(bi);
        let k1 = load_block(bi + 1u);
        let k2 = load_block(bi + 2u);
        let k3 = load_block(bi + 3u);
        let k4 = load_block(bi + 4u);
        let k5 = load_block(bi + 5u);
        let k6 = load_block(bi + 6u);
        let k7 = load_block(bi + 7u);
        for (var c = 0u; c < 4u; c++) {
            let xo = b * 8u + 2u * c;
#if NORM
            let g = W8(vec4<wf>(gamma[xo]), vec4<wf>(gamma[xo + 1u]));
#else
            let g = W8(vec4<wf>(1.0), vec4<wf>(1.0));
#endif
            let w = Rows8(deq(chunk(k0, c), sa.d.x, sa.m.x, g), deq(chunk(k1, c), sa.d.y, sa.m.y, g),
                          deq(chunk(k2, c), sa.d.z, sa.m.z, g), deq(chunk(k3, c), sa.d.w, sa.m.w, g),
                          deq(chunk(k4, c), sb.d.x, sb.m.x, g), deq(chunk(k5, c), sb.d.y, sb.m.y, g),
                          deq(chunk(k6, c), sb.d.z, sb.m.z, g), deq(chunk(k7, c), sb.d.w, sb.m.w, g));
            {
                let lo = x[x0 + xo];
                let hi = x[x0 + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p0), vec4<wf>(hi * p0));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a0 += o.a;
                b0 += o.b;
#if NORM
                ss0 += dot(lo, lo) + dot(hi, hi);
#endif
            }
            {
                let lo = x[x1 + xo];
                let hi = x[x1 + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p1), vec4<wf>(hi * p1));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a1 += o.a;
                b1 += o.b;
#if NORM
                ss1 += dot(lo, lo) + dot(hi, hi);
#endif
            }
            {
                let lo = x[x2 + xo];
                let hi = x[x2 + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p2), vec4<wf>(hi * p2));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a2 += o.a;
                b2 += o.b;
#if NORM
                ss2 += dot(lo, lo) + dot(hi, hi);
#endif
            }
            {
                let lo = x[x3 + xo];
                let hi = x[x3 + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p3), vec4<wf>(hi * p3));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a3 += o.a;
                b3 += o.b;
#if NORM
                ss3 += dot(lo, lo) + dot(hi, hi);
#endif
            }
            {
                let lo = x[x4 + xo];
                let hi = x[x4 + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p4), vec4<wf>(hi * p4));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a4 += o.a;
                b4 += o.b;
#if NORM
                ss4 += dot(lo, lo) + dot(hi, hi);
#endif
            }
            {
                let lo = x[x5 + xo];
                let hi = x[x5 + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p5), vec4<wf>(hi * p5));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a5 += o.a;
                b5 += o.b;
#if NORM
                ss5 += dot(lo, lo) + dot(hi, hi);
#endif
            }
            {
                let lo = x[x6 + xo];
                let hi = x[x6 + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p6), vec4<wf>(hi * p6));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a6 += o.a;
                b6 += o.b;
#if NORM
                ss6 += dot(lo, lo) + dot(hi, hi);
#endif
            }
            {
                let lo = x[x7 + xo];
                let hi = x[x7 + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p7), vec4<wf>(hi * p7));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a7 += o.a;
                b7 += o.b;
#if NORM
                ss7 += dot(lo, lo) + dot(hi, hi);
#endif
            }
        }
    }
    if t0 + 0u <= last {
#if NORM
#if F16
        store_token(t0 + 0u, row0, a0, b0);
#else
        let inv0 = inverseSqrt(ss0 / f32(K) + EPS);
        store_token(t0 + 0u, row0, a0 * inv0, b0 * inv0);
#endif
#else
        store_token(t0 + 0u, row0, a0, b0);
#endif
    }
    if t0 + 1u <= last {
#if NORM
#if F16
        store_token(t0 + 1u, row0, a1, b1);
#else
        let inv1 = inverseSqrt(ss1 / f32(K) + EPS);
        store_token(t0 + 1u, row0, a1 * inv1, b1 * inv1);
#endif
#else
        store_token(t0 + 1u, row0, a1, b1);
#endif
    }
    if t0 + 2u <= last {
#if NORM
#if F16
        store_token(t0 + 2u, row0, a2, b2);
#else
        let inv2 = inverseSqrt(ss2 / f32(K) + EPS);
        store_token(t0 + 2u, row0, a2 * inv2, b2 * inv2);
#endif
#else
        store_token(t0 + 2u, row0, a2, b2);
#endif
    }
    if t0 + 3u <= last {
#if NORM
#if F16
        store_token(t0 + 3u, row0, a3, b3);
#else
        let inv3 = inverseSqrt(ss3 / f32(K) + EPS);
        store_token(t0 + 3u, row0, a3 * inv3, b3 * inv3);
#endif
#else
        store_token(t0 + 3u, row0, a3, b3);
#endif
    }
    if t0 + 4u <= last {
#if NORM
#if F16
        store_token(t0 + 4u, row0, a4, b4);
#else
        let inv4 = inverseSqrt(ss4 / f32(K) + EPS);
        store_token(t0 + 4u, row0, a4 * inv4, b4 * inv4);
#endif
#else
        store_token(t0 + 4u, row0, a4, b4);
#endif
    }
    if t0 + 5u <= last {
#if NORM
#if F16
        store_token(t0 + 5u, row0, a5, b5);
#else
        let inv5 = inverseSqrt(ss5 / f32(K) + EPS);
        store_token(t0 + 5u, row0, a5 * inv5, b5 * inv5);
#endif
#else
        store_token(t0 + 5u, row0, a5, b5);
#endif
    }
    if t0 + 6u <= last {
#if NORM
#if F16
        store_token(t0 + 6u, row0, a6, b6);
#else
        let inv6 = inverseSqrt(ss6 / f32(K) + EPS);
        store_token(t0 + 6u, row0, a6 * inv6, b6 * inv6);
#endif
#else
        store_token(t0 + 6u, row0, a6, b6);
#endif
    }
    if t0 + 7u <= last {
#if NORM
#if F16
        store_token(t0 + 7u, row0, a7, b7);
#else
        let inv7 = inverseSqrt(ss7 / f32(K) + EPS);
        store_token(t0 + 7u, row0, a7 * inv7, b7 * inv7);
#endif
#else
        store_token(t0 + 7u, row0, a7, b7);
#endif
    }
}
