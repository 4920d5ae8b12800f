// Moves `count` positions of one sequence's keys back by `from - to` positions, rotating each
// key by as many positions back (RoPE's rotations compose: R(p - d) = R(-d) R(p)), into a
// texture of the cache's shape at positions to..to+count (src/ops/kv_shift.rs copies them back
// and moves the values). One workgroup per key head and position: the head is decoded into
// workgroup memory, rotated by the one-row table `rope_cs` (cos and sin of -d times each
// pair's frequency) and stored in the cache's type.
// Constants: HD, RD, NEOX, KV_SLOTS, KV_H, the type's flags.

struct Shift {
    seq: u32,
    first: u32,
    dest: u32,
    count: u32,
}

@group(0) @binding(0) var<uniform> shift: Shift;
@group(0) @binding(1) var<storage, read> rope_cs: array<vec2<f32>>;
#if KV_UINT
@group(0) @binding(4) var shifted: texture_storage_2d_array<rgba32uint, write>;
#else
@group(0) @binding(4) var shifted: texture_storage_2d_array<rgba32float, write>;
#endif
#if KV_QUANT
@group(0) @binding(7) var shifted_scales: texture_storage_2d_array<r32uint, write>;
#endif

#include "kv_slot.wgsl"
#include "kv_read.wgsl"
#include "rope.wgsl"
#include "f16_round.wgsl"

var<workgroup> head: array<f32, HD>;

fn cached(base: u32, d: u32, pos: u32, inv: f32, is_value: bool) -> f32 {
    let r = rope_term(d, 0u);
    return head[d] * r.c + head[r.partner] * r.s;
}

#if KV_UINT
fn store_texel(is_value: bool, x: u32, slot: KvAt, q: vec4<u32>) {
    textureStore(shifted, vec2<u32>(x, slot.texel_row), slot.layer, q);
}
#else
fn store_texel(is_value: bool, x: u32, slot: KvAt, v: vec4<f32>) {
    textureStore(shifted, vec2<u32>(x, slot.texel_row), slot.layer, v);
}
#endif

#if KV_QUANT
fn store_scales(is_value: bool, x: u32, slot: KvAt, word: vec4<u32>) {
    textureStore(shifted_scales, vec2<u32>(x, slot.texel_row), slot.layer, word);
}
#endif

#include "kv_store.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let kv_head = wg.x;
    for (var i = wg.y; i < shift.count; i += groups.y) {
        let at = kv_at(shift.seq, shift.first + i);
        for (var c = lane; c < HD / 16u; c += 64u) {
            let m = key_chunk(at, kv_head, c);
            for (var k = 0u; k < 4u; k++) {
                for (var j = 0u; j < 4u; j++) {
                    head[16u * c + 4u * k + j] = m[k][j];
                }
            }
        }
        workgroupBarrier();
        store_head(0u, 0u, 1.0, false, kv_head, kv_at(shift.seq, shift.dest + i), lane);
        workgroupBarrier();
    }
}
