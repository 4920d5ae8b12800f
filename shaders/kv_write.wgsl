// Writes this step's keys (rotated) and values into the layer's cache textures, one texel
// (4 elements) per invocation. Texel x of position p (row p % KV_H of layer p / KV_H) holds
// elements 4x..4x+3 of its key. Constants: NH, NKV, HD, RD, QS (floats per qkv row), KV_H.

#include "step.wgsl"

@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> rope_cs: array<vec2<f32>>;
@group(0) @binding(3) var k_cache: texture_storage_2d_array<rgba32float, write>;
@group(0) @binding(4) var v_cache: texture_storage_2d_array<rgba32float, write>;

#include "rope.wgsl"

const KV_TEXELS: u32 = NKV * HD / 4u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.y;
    if i >= 2u * KV_TEXELS || t >= step.n_tokens {
        return;
    }
    let pos = step.pos0 + t;
    let is_value = i >= KV_TEXELS;
    let texel = i % KV_TEXELS;
    // Element e of the K (or V) part: head e / HD, element e % HD of that head.
    let e0 = 4u * texel;
    let head_base = t * QS + NH * HD + select(0u, NKV * HD, is_value) + (e0 / HD) * HD;
    let d0 = e0 % HD;
    var v: vec4<f32>;
    for (var k = 0u; k < 4u; k++) {
        let d = d0 + k;
        let x = qkv[head_base + d];
        if is_value {
            v[k] = x;
        } else {
            let r = rope_term(d, pos);
            v[k] = x * r.c + qkv[head_base + r.partner] * r.s;
        }
    }
    let at = vec2<u32>(texel, pos % KV_H);
    if is_value {
        textureStore(v_cache, at, pos / KV_H, v);
    } else {
        textureStore(k_cache, at, pos / KV_H, v);
    }
}
