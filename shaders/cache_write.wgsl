// The Q|K|V kernels' cache epilogue (CACHE): rows Q_ROWS.. of their output are this token's
// keys and then its values (KV_ROWS each); besides y, each octet of them goes into the layer's
// cache textures at its token's position (kv_write.wgsl's layout: texel x of position p at
// kv_slot.wgsl's place; an octet is two f32 texels or one f16 texel), keys rotated on the
// way. Only for neighbour-pair RoPE (not NEOX), where an octet holds whole pairs
// (src/ops/linear.rs checks).
// Constants: Q_ROWS, KV_ROWS, HD (head size), RD (rotated dimensions), KV_SLOTS, KV_H.

#include "step.wgsl"

#if KV_F16
@group(0) @binding(8) var k_cache: texture_storage_2d_array<rgba32uint, write>;
@group(0) @binding(9) var v_cache: texture_storage_2d_array<rgba32uint, write>;
#else
@group(0) @binding(8) var k_cache: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(9) var v_cache: texture_storage_2d_array<rgba32float, write>;
#endif
@group(0) @binding(10) var<storage, read> rope_cs: array<vec2<f32>>;

#include "rope.wgsl"
#include "rows.wgsl"
#include "kv_slot.wgsl"
#include "f16_round.wgsl"

// Stores elements a then b (an octet) at texel column `x` of an f32 cache, x / 2 of an f16
// one (f16_round.wgsl rounds them to nearest itself).
fn store_octet(is_value: bool, x: u32, slot: KvAt, a: vec4<f32>, b: vec4<f32>) {
#if KV_F16
    let at = vec2<u32>(x / 2u, slot.texel_row);
    if is_value {
        textureStore(v_cache, at, slot.layer, f16_texel(a, b));
    } else {
        textureStore(k_cache, at, slot.layer, f16_texel(a, b));
    }
#else
    let at = vec2<u32>(x, slot.texel_row);
    let next = at + vec2<u32>(1u, 0u);
    if is_value {
        textureStore(v_cache, at, slot.layer, a);
        textureStore(v_cache, next, slot.layer, b);
    } else {
        textureStore(k_cache, at, slot.layer, a);
        textureStore(k_cache, next, slot.layer, b);
    }
#endif
}

// Elements d0..d0+3 of a key head, rotated for `pos` (partners are neighbours: v.yxwz).
fn rotated4(v: vec4<f32>, d0: u32, pos: u32) -> vec4<f32> {
    let r0 = rope_term(d0, pos);
    let r1 = rope_term(d0 + 1u, pos);
    let r2 = rope_term(d0 + 2u, pos);
    let r3 = rope_term(d0 + 3u, pos);
    return v * vec4<f32>(r0.c, r1.c, r2.c, r3.c) + v.yxwz * vec4<f32>(r0.s, r1.s, r2.s, r3.s);
}

// Rows row0..row0+7 of token row `t`'s output (before its bias), at that row's sequence and
// position (rows.wgsl).
fn cache_store(row0: u32, t: u32, sums_a: vec4<f32>, sums_b: vec4<f32>) {
    if row0 < Q_ROWS || row0 >= Q_ROWS + 2u * KV_ROWS {
        return;
    }
#if BIAS
    let a = sums_a + vec4<f32>(bias[row0], bias[row0 + 1u], bias[row0 + 2u], bias[row0 + 3u]);
    let b = sums_b + vec4<f32>(bias[row0 + 4u], bias[row0 + 5u], bias[row0 + 6u], bias[row0 + 7u]);
#else
    let a = sums_a;
    let b = sums_b;
#endif
    let r = row0 - Q_ROWS;
    let pos = row_pos(t);
    let slot = kv_at(row_seq(t), pos);
    if r >= KV_ROWS {
        store_octet(true, (r - KV_ROWS) / 4u, slot, a, b);
        return;
    }
    let d0 = r % HD;
    store_octet(false, r / 4u, slot, rotated4(a, d0, pos), rotated4(b, d0 + 4u, pos));
}
