// Gemma 4's per-layer inputs (E2B, E4B): for each token, L slices of P values, one per layer.
// COMBINE (once per step, one workgroup of 64 per slice and token): `inputs` holds the
// per-layer token embedding; each slice becomes (slice + rmsnorm(proj's slice * PROJ_SCALE)
// * gamma) * INPUT_SCALE, in place. Otherwise (per layer, one invocation per 4 values): the
// layer's gate rows become gelu(gate) * its slice LAYER of `inputs`.
// Constants: P (a multiple of 4), IS (floats per inputs/proj row), and with COMBINE
// PROJ_SCALE, INPUT_SCALE, EPS; otherwise LAYER, GS (floats per gate row).

#include "step.wgsl"

#if COMBINE
@group(0) @binding(1) var<storage, read> proj: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> inputs: array<f32>;

#include "total.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = wg.y;
    if t >= step.n_tokens {
        return;
    }
    let base = t * IS + wg.x * P;
    var ss = 0.0;
    for (var i = lane; i < P; i += 64u) {
        let v = proj[base + i] * PROJ_SCALE;
        ss += v * v;
    }
    let inv = inverseSqrt(workgroup_total(lane, ss) / f32(P) + EPS);
    for (var i = lane; i < P; i += 64u) {
        let normed = proj[base + i] * PROJ_SCALE * inv * gamma[i];
        inputs[base + i] = (inputs[base + i] + normed) * INPUT_SCALE;
    }
}
#else
@group(0) @binding(3) var<storage, read> inputs: array<f32>;
@group(0) @binding(4) var<storage, read_write> gate: array<f32>;

#include "glu.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let t = id.y;
    if t >= step.n_tokens || id.x >= P / 4u {
        return;
    }
    let g0 = t * GS + 4u * id.x;
    let i0 = t * IS + LAYER * P + 4u * id.x;
    let g = vec4<f32>(gate[g0], gate[g0 + 1u], gate[g0 + 2u], gate[g0 + 3u]);
    let x = vec4<f32>(inputs[i0], inputs[i0 + 1u], inputs[i0 + 2u], inputs[i0 + 3u]);
    let y = glu(g, x);
    gate[g0] = y.x;
    gate[g0 + 1u] = y.y;
    gate[g0 + 2u] = y.z;
    gate[g0 + 3u] = y.w;
}
#endif
