// y = W x for a batch of tokens (prompt processing), W in its quantized texture layout.
//
// One workgroup per tile of 64 rows and TOKENS tokens (2, 4 or 8: src/ops/linear.rs takes the
// smallest that holds a window's tokens; mixture-of-experts chunks take 8); each invocation owns
// an octet of 8 rows x TOKENS tokens, so every weight it dequantizes is used TOKENS times (the
// accumulators of 8 tokens cost on CPU adapters what 8 tokens do, however few are present).
// x is read through a uniform binding that
// starts at this dispatch's first token (dynamic offset); `window` says how many tokens are in
// it and where their rows of y start.
// Variants (F16 included) and constants as in linear.wgsl, plus XS (vec4s per x row) and YS
// (floats per y row).
// With EXPERTS (prefill of a mixture-of-experts matrix, src/ops/experts.rs), a workgroup row is
// a chunk of up to 8 (token, slot) pairs routed to one expert (expert_groups.wgsl): its
// "tokens" are those pairs, x row pair / X_PAIRS of a whole storage binding and y row `pair`,
// and its weights the expert's EXPERT_OCTETS octets; no window.

struct Window {
    // Tokens in this dispatch's x window.
    count: u32,
    // Row of y that the window's first token writes.
    out_row: u32,
    pad0: u32,
    pad1: u32,
}

#if !EXPERTS
@group(0) @binding(1) var<uniform> window: Window;
#endif
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
@group(0) @binding(11) var<storage, read> order: array<u32>;
@group(0) @binding(12) var<storage, read> chunks: array<vec4<u32>>;
// This workgroup's chunk: (expert, first index into order, pairs, 0).
var<private> chunk: vec4<u32>;

// Where token t of this workgroup (a pair) reads x (in vec4s) and writes y (in floats).
fn x_row(t: u32) -> u32 {
    return order[chunk.y + t] / X_PAIRS * XS;
}

fn y_row(t: u32) -> u32 {
    return order[chunk.y + t] * YS;
}

fn bias_row() -> u32 {
    return chunk.x * N;
}
#else
fn x_row(t: u32) -> u32 {
    return t * XS;
}

fn y_row(t: u32) -> u32 {
    return (window.out_row + t) * YS;
}

fn bias_row() -> u32 {
    return 0u;
}
#endif

#include "weights.wgsl"
#include "glu.wgsl"
#if CACHE
#include "cache_write.wgsl"
#endif

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
// 1 / rms of the x row at `row` (a vec4 index). (Four rows of x a step: with one a step, lavapipe
// computed wrong products after this loop in rows of 32,768 values on the f16 path.)
fn rms_inverse(row: u32) -> f32 {
    var ss = vec4<f32>(0.0);
    for (var i = row; i < row + K / 4u; i += 4u) {
        ss += vec4<f32>(dot(x[i], x[i]), dot(x[i + 1u], x[i + 1u]), dot(x[i + 2u], x[i + 2u]), dot(x[i + 3u], x[i + 3u]));
    }
    return inverseSqrt((ss.x + ss.y + ss.z + ss.w) / f32(K) + EPS);
}
#endif

fn store_token(t: u32, row0: u32, a: vec4<f32>, b: vec4<f32>) {
    let base = y_row(t);
#if GLU
    let h = glu_octet(a, b, bias_row() + ROW0 + row0);
    let o = base + row0 / 2u;
    if row0 < N {
        y[o] = h.x;
        y[o + 1u] = h.y;
        y[o + 2u] = h.z;
        y[o + 3u] = h.w;
    }
#else
#if CACHE
    // (The step's tokens are y's rows: the Q|K|V kernel never has `logits`.)
    if row0 < N {
        cache_store(ROW0 + row0, window.out_row + t, a, b);
    }
#endif
    let v = array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
    for (var j = 0u; j < 8u; j++) {
        if row0 + j < N {
#if BIAS
            var out = v[j] + bias[bias_row() + ROW0 + row0 + j];
#else
            var out = v[j];
#endif
#if SOFTCAP
            out = CAP * tanh(out / CAP);
#endif
#if ADD
            y[base + ROW0 + row0 + j] += out;
#else
            y[base + ROW0 + row0 + j] = out;
#endif
        }
    }
#endif
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
#if EXPERTS
    chunk = chunks[wg.y];
    if chunk.z == 0u {
        return;
    }
    let t0 = 0u;
    let last = chunk.z - 1u;
    let first_octet = chunk.x * EXPERT_OCTETS;
#else
    let t0 = wg.y * TOKENS;
    if t0 >= window.count {
        return;
    }
    let last = window.count - 1u;
    let first_octet = 0u;
#endif
    // This invocation's octet of the output rows, and where its weights are.
    let octet = wg.x * 8u + lane;
    let row0 = octet * 8u;
    let w_octet = first_octet + octet;

#for t in 0..TOKENS
    let x{t} = x_row(min(t0 + {t}u, last));
#endfor
#if NORM
#if F16
    // The f16 path normalises x before any product: the raw residual stream can exceed f16's
    // range once multiplied.
#for t in 0..TOKENS
    let p{t} = rms_inverse(x{t});
#endfor
#endif
#endif
#for t in 0..TOKENS
    var a{t} = vec4<f32>(0.0);
    var b{t} = vec4<f32>(0.0);
    var ss{t} = 0.0;
#endfor
    for (var b = 0u; b < NB; b++) {
        let sc = block_scales(load_record8(unit_of(w_octet, b / SB, NS)), b % SB);
        let u = unit_of(w_octet, b, NB);
        for (var c = 0u; c < 4u; c++) {
            let xo = b * 8u + 2u * c;
#if NORM
            let g = W8(vec4<wf>(gamma[xo]), vec4<wf>(gamma[xo + 1u]));
#else
            let g = W8(vec4<wf>(1.0), vec4<wf>(1.0));
#endif
            // Chunks 2 and 3 are the block's second 16 weights.
            let upper = c >= 2u;
            let da = select(sc.a.d, sc.a.d2, upper);
            let ma = select(sc.a.m, sc.a.m2, upper);
            let db = select(sc.b.d, sc.b.d2, upper);
            let mb = select(sc.b.m, sc.b.m2, upper);
            let q = chunk8(u, c);
            let w = Rows8(deq(q.r0, da.x, ma.x, g), deq(q.r1, da.y, ma.y, g),
                          deq(q.r2, da.z, ma.z, g), deq(q.r3, da.w, ma.w, g),
                          deq(q.r4, db.x, mb.x, g), deq(q.r5, db.y, mb.y, g),
                          deq(q.r6, db.z, mb.z, g), deq(q.r7, db.w, mb.w, g));
#for t in 0..TOKENS
            {
                let lo = x[x{t} + xo];
                let hi = x[x{t} + xo + 1u];
#if NORM
#if F16
                let o = rows_dot(w, vec4<wf>(lo * p{t}), vec4<wf>(hi * p{t}));
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
#else
                let o = rows_dot(w, vec4<wf>(lo), vec4<wf>(hi));
#endif
                a{t} += o.a;
                b{t} += o.b;
#if NORM
                ss{t} += dot(lo, lo) + dot(hi, hi);
#endif
            }
#endfor
        }
    }
#for t in 0..TOKENS
    if t0 + {t}u <= last {
#if NORM
#if F16
        store_token(t0 + {t}u, row0, a{t}, b{t});
#else
        let inv{t} = inverseSqrt(ss{t} / f32(K) + EPS);
        store_token(t0 + {t}u, row0, a{t} * inv{t}, b{t} * inv{t});
#endif
#else
        store_token(t0 + {t}u, row0, a{t}, b{t});
#endif
    }
#endfor
}
