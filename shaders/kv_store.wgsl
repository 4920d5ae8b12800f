// Stores one head of keys or values into its row of a cache, in the layout of the cache's type
// (src/gpu/kv_type.rs): `store_head`, called by the 64 lanes of a workgroup. A quantized
// type's blocks go two per invocation (they share a scale word), scaled so the largest
// magnitude maps to 127 (q8_0) or the element of largest magnitude to -8 (q4_0), as
// `quantize_block` does; f32 elements four per texel, f16 ones eight (rounded to nearest).
// The includer says what the elements are, `cached(base, d, pos, inv, is_value) -> f32`, and
// where they go: `store_texel(is_value, x, slot, texel)` (a vec4<u32> where KV_UINT, else
// vec4<f32>) and, for a quantized type, `store_scales(is_value, x, slot, word)`.
// Constants: HD, the type's flags (KV_F16, KV_Q8, KV_Q4, KV_QUANT, KV_UINT).

#if KV_QUANT
// Quantizes elements first..first+31 of head `kv_head` into its cache row; returns the
// block's scale.
fn store_block(base: u32, first: u32, pos: u32, inv: f32, is_value: bool, kv_head: u32, slot: KvAt) -> f32 {
    var extreme = 0.0;
    for (var i = 0u; i < 32u; i++) {
        let x = cached(base, first + i, pos, inv, is_value);
        if abs(x) > abs(extreme) {
            extreme = x;
        }
    }
#if KV_Q8
    let d = abs(extreme) / 127.0;
#else
    let d = extreme / -8.0;
#endif
    let id = select(0.0, 1.0 / d, d != 0.0);
#if KV_Q8
    for (var t = 0u; t < 2u; t++) {
        var q = vec4<u32>(0u);
        for (var w = 0u; w < 4u; w++) {
            var word = 0u;
            for (var b = 0u; b < 4u; b++) {
                let x = cached(base, first + 16u * t + 4u * w + b, pos, inv, is_value);
                word |= (u32(clamp(i32(round(x * id)), -127, 127)) & 0xffu) << (8u * b);
            }
            q[w] = word;
        }
        store_texel(is_value, kv_head * (HD / 16u) + first / 16u + t, slot, q);
    }
#else
    var q = vec4<u32>(0u);
    for (var w = 0u; w < 4u; w++) {
        var word = 0u;
        for (var n = 0u; n < 8u; n++) {
            let x = cached(base, first + 8u * w + n, pos, inv, is_value);
            word |= u32(clamp(i32(round(x * id)), -8, 7) + 8) << (4u * n);
        }
        q[w] = word;
    }
    store_texel(is_value, kv_head * (HD / 32u) + first / 32u, slot, q);
#endif
    return d;
}
#endif

fn store_head(base: u32, pos: u32, inv: f32, is_value: bool, kv_head: u32, slot: KvAt, lane: u32) {
#if KV_QUANT
    for (var pair = lane; pair < SCALE_WORDS; pair += 64u) {
        var scales = vec2<f32>(0.0);
        for (var b = 0u; b < 2u; b++) {
            let first = (2u * pair + b) * 32u;
            if first < HD {
                scales[b] = store_block(base, first, pos, inv, is_value, kv_head, slot);
            }
        }
        store_scales(is_value, kv_head * SCALE_WORDS + pair, slot, vec4<u32>(pack2x16float(scales), 0u, 0u, 0u));
    }
#else
#if KV_F16
    for (var j = lane; j < HD / 8u; j += 64u) {
        var a: vec4<f32>;
        var b: vec4<f32>;
        for (var k = 0u; k < 4u; k++) {
            a[k] = cached(base, 8u * j + k, pos, inv, is_value);
            b[k] = cached(base, 8u * j + 4u + k, pos, inv, is_value);
        }
        store_texel(is_value, kv_head * (HD / 8u) + j, slot, f16_texel(a, b));
    }
#else
    for (var j = lane; j < HD / 4u; j += 64u) {
        var v: vec4<f32>;
        for (var k = 0u; k < 4u; k++) {
            v[k] = cached(base, 4u * j + k, pos, inv, is_value);
        }
        store_texel(is_value, kv_head * (HD / 4u) + j, slot, v);
    }
#endif
#endif
}
