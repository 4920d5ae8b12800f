// Where texel `i` of a weight texture sits (src/gpu/texture.rs): rows of TEXEL_ROW texels
// (a define: 2048, or less on adapters with smaller textures), `height` rows per array layer.

fn texel_coords(i: u32, height: u32) -> vec3<u32> {
    let row = i / TEXEL_ROW;
    return vec3<u32>(i % TEXEL_ROW, row % height, row / height);
}
