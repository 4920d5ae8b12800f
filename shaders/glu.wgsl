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
