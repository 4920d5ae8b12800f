// Each element of `v` rounded to the nearest f16 (ties to even), kept in f32: an f16 cache
// stores it exactly. A storage texture's own conversion need not round to nearest (lavapipe's
// truncates, a bias toward zero that the CPU reference, rounding to nearest, does not share).
// Subnormal f16 values (below 6.1e-5) are left to the store.
fn f16_round(v: vec4<f32>) -> vec4<f32> {
    let b = bitcast<vec4<u32>>(v);
    let odd = (b >> vec4<u32>(13u)) & vec4<u32>(1u);
    return bitcast<vec4<f32>>((b + vec4<u32>(0xfffu) + odd) & vec4<u32>(0xffffe000u));
}
