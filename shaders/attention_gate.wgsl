// Gated attention (Qwen 3.5): each query head's output is multiplied by the sigmoid of its
// gate, which follows V in the Q|K|V row. Needs `qkv` bound; constants QS (floats per qkv row),
// G0 (where the gates start in it), HD.

// The gate of values 4i..4i+3 of head h's output for token t.
fn output_gate(t: u32, h: u32, i: u32) -> vec4<f32> {
    let g0 = t * QS + G0 + h * HD + 4u * i;
    let g = vec4<f32>(qkv[g0], qkv[g0 + 1u], qkv[g0 + 2u], qkv[g0 + 3u]);
    return 1.0 / (1.0 + exp(-g));
}
