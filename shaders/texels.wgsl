// Weight texels (16 bytes: four u32 words) and where texel `i` of a matrix sits
// (src/gpu/texture.rs). With W_BUFFER they are a storage buffer read by 16-byte loads (GPUs);
// otherwise an rgba32uint array texture in rows of TEXEL_ROW texels (a define: 2048, or less on
// adapters with smaller textures), WQ_H (WS_H) rows per array layer (CPU adapters, where a
// texel fetch is a gather). Quants are bound at 2, scales (where SCALED) at 4.

#if W_BUFFER
@group(0) @binding(2) var<storage, read> wq: array<vec4<u32>>;
#if SCALED
@group(0) @binding(4) var<storage, read> ws: array<vec4<u32>>;
#endif
#else
@group(0) @binding(2) var wq: texture_2d_array<u32>;
#if SCALED
@group(0) @binding(4) var ws: texture_2d_array<u32>;
#endif

fn texel_coords(i: u32, height: u32) -> vec3<u32> {
    let row = i / TEXEL_ROW;
    return vec3<u32>(i % TEXEL_ROW, row % height, row / height);
}
#endif

fn quant_texel(i: u32) -> vec4<u32> {
#if W_BUFFER
    return wq[i];
#else
    let c = texel_coords(i, WQ_H);
    return textureLoad(wq, c.xy, c.z, 0);
#endif
}

#if SCALED
fn scale_texel(i: u32) -> vec4<u32> {
#if W_BUFFER
    return ws[i];
#else
    let c = texel_coords(i, WS_H);
    return textureLoad(ws, c.xy, c.z, 0);
#endif
}
#endif
