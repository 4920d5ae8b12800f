// Streaming read bandwidth, for the benchmark's roofline: every invocation reads its share of a
// weight matrix's texels, through the weights' own path (texels.wgsl: a texture, or with
// W_BUFFER a storage buffer), and folds them into one word, so nothing but the reads costs.
// Constant: COUNT (texels to read).

@group(0) @binding(1) var<storage, read_write> out: array<u32>;

#include "texels.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let lanes = groups.x * 64u;
    var acc = vec4<u32>(0u);
    for (var i = gid.x; i < COUNT; i += lanes) {
        acc ^= quant_texel(i);
    }
    out[gid.x] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}
