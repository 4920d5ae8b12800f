// RMSNorm of row 0 of each token (D values) times gamma, added to `dst`: a post-norm before
// the residual add; with SCALE, the sum then times scale[0]; with STORE it replaces `dst`
// instead. One workgroup of 64 per token.
// Constants: D, SS (floats per src row), DS (floats per dst row), EPS.

#include "step.wgsl"

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
#if SCALE
@group(0) @binding(3) var<storage, read> scale: array<f32>;
#endif
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

#include "total.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = wg.y;
    if t >= step.n_tokens {
        return;
    }
    let base = t * SS;
    var ss = 0.0;
    for (var i = lane; i < D; i += 64u) {
        let v = src[base + i];
        ss += v * v;
    }
    let inv = inverseSqrt(workgroup_total(lane, ss) / f32(D) + EPS);
    for (var i = lane; i < D; i += 64u) {
#if STORE
        let sum = src[base + i] * inv * gamma[i];
#else
        let sum = dst[t * DS + i] + src[base + i] * inv * gamma[i];
#endif
#if SCALE
        dst[t * DS + i] = sum * scale[0];
#else
        dst[t * DS + i] = sum;
#endif
    }
}
