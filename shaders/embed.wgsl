// Embedding lookup: one row of the (tiled, quantized) embedding matrix per token, dequantized
// and multiplied by SCALE. One invocation per (token, block of 32). Constants: K (row length),
// N (vocabulary rows), YS (floats per output row), SCALE.

#include "step.wgsl"

@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

#include "weights.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x / NB;
    let b = gid.x % NB;
    if t >= step.n_tokens {
        return;
    }
    // Ids are checked on the host; the clamp only keeps a bad one inside the texture.
    let row = min(ids[t], N - 1u);
    let octet = row / 8u;
    let j = row % 8u;
    let s = half_scales(load_record8(unit_of(octet, b / SB, NS)), j / 4u, b % SB);
    let lane = j % 4u;
    let d = s.d[lane];
    let m = s.m[lane];
    let d2 = s.d2[lane];
    let m2 = s.m2[lane];
    let u = unit_of(octet, b, NB);
    let c0 = row_of(chunk_words(u, 0u), 0u, j);
    let c1 = row_of(chunk_words(u, 1u), 1u, j);
    let c2 = row_of(chunk_words(u, 2u), 2u, j);
    let c3 = row_of(chunk_words(u, 3u), 3u, j);
    let o = t * (YS / 4u) + b * 8u;
    y[o] = (d * vec4<f32>(c0.lo) + m) * SCALE;
    y[o + 1u] = (d * vec4<f32>(c0.hi) + m) * SCALE;
    y[o + 2u] = (d * vec4<f32>(c1.lo) + m) * SCALE;
    y[o + 3u] = (d * vec4<f32>(c1.hi) + m) * SCALE;
    y[o + 4u] = (d2 * vec4<f32>(c2.lo) + m2) * SCALE;
    y[o + 5u] = (d2 * vec4<f32>(c2.hi) + m2) * SCALE;
    y[o + 6u] = (d2 * vec4<f32>(c3.lo) + m2) * SCALE;
    y[o + 7u] = (d2 * vec4<f32>(c3.hi) + m2) * SCALE;
}
