// Writes this step's keys (rotated) and values into the layer's cache textures, one workgroup
// per (head, token), each token at its row's sequence and position (rows.wgsl), in the layout of
// the cache's type (src/gpu/kv_type.rs; a quantized type's blocks, two per invocation, and
// their scales). With QK_NORM (Gemma 3, Qwen 3) the query and key heads are
// RMS-normalised with their gammas first: queries in place in the Q|K|V rows (attention reads
// them there), keys on their way into the cache (their Q|K|V rows are left as they were);
// with V_NORM (Gemma 4) values too, without a gamma. With QUERIES_ONLY (a layer that attends to
// an earlier layer's cache) only the queries are normalised, and nothing is cached.
// Where there is no QK-norm and RoPE pairs are neighbours, the Q|K|V kernel writes the cache
// itself (cache_write.wgsl) and this kernel is not used.
// Constants: NH, NKV, HD, RD, QS (floats per qkv row), KV_SLOTS and KV_H, EPS (QK_NORM), the
// type's flags (KV_F16, KV_Q8, KV_Q4, KV_QUANT).

#include "step.wgsl"

@group(0) @binding(1) var<storage, read_write> qkv: array<f32>;
#if !QUERIES_ONLY
@group(0) @binding(2) var<storage, read> rope_cs: array<vec2<f32>>;
#if KV_UINT
@group(0) @binding(3) var k_cache: texture_storage_2d_array<rgba32uint, write>;
@group(0) @binding(4) var v_cache: texture_storage_2d_array<rgba32uint, write>;
#else
@group(0) @binding(3) var k_cache: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(4) var v_cache: texture_storage_2d_array<rgba32float, write>;
#endif
#if KV_QUANT
@group(0) @binding(7) var k_scales: texture_storage_2d_array<r32uint, write>;
@group(0) @binding(8) var v_scales: texture_storage_2d_array<r32uint, write>;
#endif
#endif
#if QK_NORM
@group(0) @binding(5) var<storage, read> q_gamma: array<f32>;
#if !QUERIES_ONLY
@group(0) @binding(6) var<storage, read> k_gamma: array<f32>;
#endif
#endif

#if !QUERIES_ONLY
#include "rope.wgsl"
#include "rows.wgsl"
#include "kv_slot.wgsl"
#include "f16_round.wgsl"
#endif

#if QK_NORM
#include "total.wgsl"

// 1 / rms of the head at `base` (every invocation of the workgroup calls it).
fn head_rms_inverse(base: u32, lane: u32) -> f32 {
    var ss = 0.0;
    for (var i = lane; i < HD; i += 64u) {
        let v = qkv[base + i];
        ss += v * v;
    }
    return inverseSqrt(workgroup_total(lane, ss) / f32(HD) + EPS);
}
#endif

#if !QUERIES_ONLY
// Element d of the key head at `base`, normalised when QK_NORM (inv: its 1 / rms).
fn key(base: u32, d: u32, inv: f32) -> f32 {
#if QK_NORM
    return qkv[base + d] * inv * k_gamma[d];
#else
    return qkv[base + d];
#endif
}

// Element d of the head at `base` as it is cached: a value scaled by `inv`, a key normalised
// and rotated for `pos`.
fn cached(base: u32, d: u32, pos: u32, inv: f32, is_value: bool) -> f32 {
    if is_value {
        return qkv[base + d] * inv;
    }
    let r = rope_term(d, pos);
    return key(base, d, inv) * r.c + key(base, r.partner, inv) * r.s;
}
#endif

#if !QUERIES_ONLY
// Where kv_store.wgsl puts a head: the key or the value cache.
#if KV_UINT
fn store_texel(is_value: bool, x: u32, slot: KvAt, q: vec4<u32>) {
    if is_value {
        textureStore(v_cache, vec2<u32>(x, slot.texel_row), slot.layer, q);
    } else {
        textureStore(k_cache, vec2<u32>(x, slot.texel_row), slot.layer, q);
    }
}
#else
fn store_texel(is_value: bool, x: u32, slot: KvAt, v: vec4<f32>) {
    if is_value {
        textureStore(v_cache, vec2<u32>(x, slot.texel_row), slot.layer, v);
    } else {
        textureStore(k_cache, vec2<u32>(x, slot.texel_row), slot.layer, v);
    }
}
#endif

#if KV_QUANT
fn store_scales(is_value: bool, x: u32, slot: KvAt, word: vec4<u32>) {
    if is_value {
        textureStore(v_scales, vec2<u32>(x, slot.texel_row), slot.layer, word);
    } else {
        textureStore(k_scales, vec2<u32>(x, slot.texel_row), slot.layer, word);
    }
}
#endif

#include "kv_store.wgsl"
#endif

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let t = wg.y;
    if t >= step.n_tokens {
        return;
    }
#if QK_NORM
    // Heads 0..NH are queries, then NKV keys, then NKV values.
    let head = wg.x;
#else
    let head = NH + wg.x;
#endif
    let base = t * QS + head * HD;
    var inv = 1.0;
#if QK_NORM
#if V_NORM
    inv = head_rms_inverse(base, lane);
#else
    if head < NH + NKV {
        inv = head_rms_inverse(base, lane);
    }
#endif
    if head < NH {
        for (var i = lane; i < HD; i += 64u) {
            qkv[base + i] *= inv * q_gamma[i];
        }
        return;
    }
#endif
#if !QUERIES_ONLY
    let pos = row_pos(t);
    let is_value = head >= NH + NKV;
    let kv_head = head - NH - select(0u, NKV, is_value);
    let slot = kv_at(row_seq(t), pos);
    store_head(base, pos, inv, is_value, kv_head, slot, lane);
#endif
}
