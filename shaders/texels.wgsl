// Where texel `i` of a weight texture sits (src/gpu/texture.rs): rows of TEXEL_ROW texels,
// `height` rows per array layer.

const TEXEL_ROW: u32 = 2048u;

fn texel_coords(i: u32, height: u32) -> vec3<u32> {
    let row = i / TEXEL_ROW;
    return vec3<u32>(i % TEXEL_ROW, row % height, row / height);
}
