// What one token of attention starts from: its query, rotated and scaled, and the first key
// position it sees. Constants: QS (floats per qkv row), HD, SCALE, WINDOW.

// Texel i of the query of head h of token row t, rotated for `pos` (rope.wgsl) and scaled.
fn query(t: u32, h: u32, i: u32, pos: u32) -> vec4<f32> {
    let qb = t * QS + h * HD;
    var v: vec4<f32>;
    for (var k = 0u; k < 4u; k++) {
        let r = rope_term(4u * i + k, pos);
        v[k] = qkv[qb + 4u * i + k] * r.c + qkv[qb + r.partner] * r.s;
    }
    return v * SCALE;
}

// The first position a token at `pos` sees: a sliding-window layer sees the last WINDOW
// positions (0: all of them).
fn window_start(pos: u32) -> u32 {
    return select(0u, pos + 1u - WINDOW, WINDOW > 0u && pos + 1u > WINDOW);
}
