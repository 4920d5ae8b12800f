// Reading a layer's key and value caches in their type's layout (src/gpu/kv_type.rs), sixteen
// elements at a time: `key_chunk(at, kv_head, c)` is elements 16c..16c+15 of head `kv_head`
// of the key row at `at` (kv_slot.wgsl), as four vec4 columns; `value_chunk` likewise. f32
// takes four texel fetches per chunk, f16 two, q8_0 one, q4_0 half of one, plus a scale word.
// Constants: HD, KV_F16 / KV_Q8 / KV_Q4 / KV_QUANT / KV_UINT (f32 textures when none is set).

#if KV_QUANT
@group(0) @binding(2) var k_cache: texture_2d_array<u32>;
@group(0) @binding(3) var v_cache: texture_2d_array<u32>;
@group(0) @binding(12) var k_scales: texture_2d_array<u32>;
@group(0) @binding(13) var v_scales: texture_2d_array<u32>;

// The scale of the block holding chunk c, from its head's scale word c / 4.
fn block_scale(word: u32, c: u32) -> f32 {
    return unpack2x16float(word)[(c / 2u) % 2u];
}

#if KV_Q8
// Four signed bytes of `w`, low byte first.
fn bytes4(w: u32) -> vec4<f32> {
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

// Chunk c of a texel holding its 16 elements (c only says which, for q4_0's `decoded`).
fn decoded(q: vec4<u32>, c: u32, d: f32) -> mat4x4<f32> {
    return mat4x4<f32>(bytes4(q.x) * d, bytes4(q.y) * d, bytes4(q.z) * d, bytes4(q.w) * d);
}

fn quant_texel(kv_head: u32, c: u32) -> u32 {
    return kv_head * (HD / 16u) + c;
}
#else
// Four nibbles of `w` from bit `shift`, each stored as q + 8.
fn nibbles4(w: u32, shift: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(w >> shift) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)) - 8.0;
}

// Chunk c of a block is words 2(c % 2) and 2(c % 2) + 1 of its texel.
fn decoded(q: vec4<u32>, c: u32, d: f32) -> mat4x4<f32> {
    let pair = select(q.xy, q.zw, c % 2u == 1u);
    return mat4x4<f32>(nibbles4(pair.x, 0u) * d, nibbles4(pair.x, 16u) * d, nibbles4(pair.y, 0u) * d,
                       nibbles4(pair.y, 16u) * d);
}

fn quant_texel(kv_head: u32, c: u32) -> u32 {
    return kv_head * (HD / 32u) + c / 2u;
}
#endif

fn key_chunk(at: KvAt, kv_head: u32, c: u32) -> mat4x4<f32> {
    let q = textureLoad(k_cache, vec2<u32>(quant_texel(kv_head, c), at.texel_row), at.layer, 0);
    let d = block_scale(textureLoad(k_scales, vec2<u32>(kv_head * SCALE_WORDS + c / 4u, at.texel_row), at.layer, 0).x, c);
    return decoded(q, c, d);
}

fn value_chunk(at: KvAt, kv_head: u32, c: u32) -> mat4x4<f32> {
    let q = textureLoad(v_cache, vec2<u32>(quant_texel(kv_head, c), at.texel_row), at.layer, 0);
    let d = block_scale(textureLoad(v_scales, vec2<u32>(kv_head * SCALE_WORDS + c / 4u, at.texel_row), at.layer, 0).x, c);
    return decoded(q, c, d);
}
#else
#if KV_F16
@group(0) @binding(2) var k_cache: texture_2d_array<u32>;
@group(0) @binding(3) var v_cache: texture_2d_array<u32>;

// Sixteen f16 elements from the two texels holding them.
fn halves(a: vec4<u32>, b: vec4<u32>) -> mat4x4<f32> {
    return mat4x4<f32>(vec4<f32>(unpack2x16float(a.x), unpack2x16float(a.y)),
                       vec4<f32>(unpack2x16float(a.z), unpack2x16float(a.w)),
                       vec4<f32>(unpack2x16float(b.x), unpack2x16float(b.y)),
                       vec4<f32>(unpack2x16float(b.z), unpack2x16float(b.w)));
}

fn key_chunk(at: KvAt, kv_head: u32, c: u32) -> mat4x4<f32> {
    let x = kv_head * (HD / 8u) + c * 2u;
    return halves(textureLoad(k_cache, vec2<u32>(x, at.texel_row), at.layer, 0),
                  textureLoad(k_cache, vec2<u32>(x + 1u, at.texel_row), at.layer, 0));
}

fn value_chunk(at: KvAt, kv_head: u32, c: u32) -> mat4x4<f32> {
    let x = kv_head * (HD / 8u) + c * 2u;
    return halves(textureLoad(v_cache, vec2<u32>(x, at.texel_row), at.layer, 0),
                  textureLoad(v_cache, vec2<u32>(x + 1u, at.texel_row), at.layer, 0));
}
#else
@group(0) @binding(2) var k_cache: texture_2d_array<f32>;
@group(0) @binding(3) var v_cache: texture_2d_array<f32>;

fn key_chunk(at: KvAt, kv_head: u32, c: u32) -> mat4x4<f32> {
    let x = kv_head * (HD / 4u) + c * 4u;
    return mat4x4<f32>(textureLoad(k_cache, vec2<u32>(x, at.texel_row), at.layer, 0),
                       textureLoad(k_cache, vec2<u32>(x + 1u, at.texel_row), at.layer, 0),
                       textureLoad(k_cache, vec2<u32>(x + 2u, at.texel_row), at.layer, 0),
                       textureLoad(k_cache, vec2<u32>(x + 3u, at.texel_row), at.layer, 0));
}

fn value_chunk(at: KvAt, kv_head: u32, c: u32) -> mat4x4<f32> {
    let x = kv_head * (HD / 4u) + c * 4u;
    return mat4x4<f32>(textureLoad(v_cache, vec2<u32>(x, at.texel_row), at.layer, 0),
                       textureLoad(v_cache, vec2<u32>(x + 1u, at.texel_row), at.layer, 0),
                       textureLoad(v_cache, vec2<u32>(x + 2u, at.texel_row), at.layer, 0),
                       textureLoad(v_cache, vec2<u32>(x + 3u, at.texel_row), at.layer, 0));
}
#endif
#endif
