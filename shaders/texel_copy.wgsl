// Copies texels 0..COUNT of a weight matrix into a buffer, through the same addressing the
// kernels use (texels.wgsl): the test of both weight stores' layout on every adapter.

@group(0) @binding(1) var<storage, read_write> out: array<vec4<u32>>;

#include "texels.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= COUNT {
        return;
    }
    out[gid.x] = quant_texel(gid.x);
}
