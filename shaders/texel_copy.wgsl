// Copies texels 0..COUNT of a weight texture into a buffer, through the same addressing the
// kernels use (weights.wgsl: texel_coords): the test of the texture layout on every adapter.

@group(0) @binding(1) var<storage, read_write> out: array<vec4<u32>>;
@group(0) @binding(2) var wq: texture_2d_array<u32>;

#include "texels.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= COUNT {
        return;
    }
    let c = texel_coords(gid.x, WQ_H);
    out[gid.x] = textureLoad(wq, c.xy, c.z, 0);
}
