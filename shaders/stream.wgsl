// Streaming read bandwidth, for the benchmark's roofline: every invocation reads its share of a
// large buffer or texture and folds it into one word, so nothing but the reads costs.
// TEXTURE: texels of an rgba32uint array texture (the weights' path); otherwise vec4<u32>
// loads from a storage buffer. Constant: COUNT (vec4s or texels to read).

@group(0) @binding(1) var<storage, read_write> out: array<u32>;
#if TEXTURE
@group(0) @binding(2) var data: texture_2d_array<u32>;
#include "texels.wgsl"
#else
@group(0) @binding(2) var<storage, read> data: array<vec4<u32>>;
#endif

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let lanes = groups.x * 64u;
    var acc = vec4<u32>(0u);
    for (var i = gid.x; i < COUNT; i += lanes) {
#if TEXTURE
        let c = texel_coords(i, TEX_H);
        acc ^= textureLoad(data, c.xy, c.z, 0);
#else
        acc ^= data[i];
#endif
    }
    out[gid.x] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}
