// The gated activation of (gate, up) row pairs: silu(gate) * up, or with GELU (Gemma)
// gelu(gate) * up in its tanh form, or with OAI (gpt-oss) the gate clamped above at 7 and up
// to ±7, gate * sigmoid(1.702 gate) * (up + 1).
fn glu(g: vec4<f32>, u: vec4<f32>) -> vec4<f32> {
#if OAI
    let gc = min(g, vec4<f32>(7.0));
    let uc = clamp(u, vec4<f32>(-7.0), vec4<f32>(7.0));
    return gc / (1.0 + exp(-1.702 * gc)) * (uc + 1.0);
#endif
#if GELU
    // tanh is 1 in f32 long before 10; the clamp keeps implementations that build it from
    // exp() finite.
    let inner = clamp(0.7978845608 * (g + 0.044715 * g * g * g), vec4<f32>(-10.0), vec4<f32>(10.0));
    return 0.5 * g * (1.0 + tanh(inner)) * u;
#else
    return g / (1.0 + exp(-g)) * u;
#endif
}

// The four outputs of an octet of (gate, up) row pairs, rows (2i, 2i+1), whose sums are a (rows
// 0..3) and b (rows 4..7), after the rows' biases from bias[first_bias] on where BIAS (the
// shader declares `bias`).
fn glu_octet(a: vec4<f32>, b: vec4<f32>, first_bias: u32) -> vec4<f32> {
#if BIAS
    let i = first_bias;
    let ab = a + vec4<f32>(bias[i], bias[i + 1u], bias[i + 2u], bias[i + 3u]);
    let bb = b + vec4<f32>(bias[i + 4u], bias[i + 5u], bias[i + 6u], bias[i + 7u]);
#else
    let ab = a;
    let bb = b;
#endif
    return glu(vec4<f32>(ab.x, ab.z, bb.x, bb.z), vec4<f32>(ab.y, ab.w, bb.y, bb.w));
}
