// Each element of `v` rounded to the nearest f16 (ties to even), kept in f32: an f16 cache
// stores it exactly. A storage texture's own conversion need not round to nearest (lavapipe's
// truncates, a bias toward zero that the CPU reference, rounding to nearest, does not share).
// Subnormal f16 values (below 6.1e-5) are left to the store.
fn f16_round(v: vec4<f32>) -> vec4<f32> {
    let b = bitcast<vec4<u32>>(v);
    let odd = (b >> vec4<u32>(13u)) & vec4<u32>(1u);
    return bitcast<vec4<f32>>((b + vec4<u32>(0xfffu) + odd) & vec4<u32>(0xffffe000u));
}

// Elements a then b rounded to the nearest f16 and packed as an f16 cache texel holds them
// (src/gpu/kv_type.rs): word w holds elements 2w (low half) and 2w + 1.
fn f16_texel(a: vec4<f32>, b: vec4<f32>) -> vec4<u32> {
    let ra = f16_round(a);
    let rb = f16_round(b);
    return vec4<u32>(pack2x16float(ra.xy), pack2x16float(ra.zw), pack2x16float(rb.xy), pack2x16float(rb.zw));
}
