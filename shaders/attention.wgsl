// Causal attention of each query head over this layer's KV cache, grouped-query aware.
// One workgroup per (head, token). The query is rotated (RoPE) as it is loaded. Each
// invocation runs an online softmax over every AWG-th key position with its own accumulator;
// the partial results are merged once at the end. The caches are textures written by
// kv_write.wgsl: texel x of position p (row p % KV_H of layer p / KV_H) holds elements
// 4x..4x+3 of its keys (or values).
// Constants: NH, NKV, HD, RD, AWG (invocations), SCALE (score scale, usually 1/sqrt(HD)),
// QS (floats per qkv row), OS4 (vec4s per output row), KV_H (cache rows per layer).

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var k_cache: texture_2d_array<f32>;
@group(0) @binding(3) var v_cache: texture_2d_array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> rope_cs: array<vec2<f32>>;

#include "rope.wgsl"

const HV: u32 = HD / 4u;

var<workgroup> lane_max: array<f32, AWG>;
var<workgroup> lane_sum: array<f32, AWG>;
var<workgroup> red: array<vec4<f32>, AWG * 4u>;

@compute @workgroup_size(AWG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let h = wg.x;
    let t = wg.y;
    if t >= step.n_tokens {
        return;
    }
    let kvh = h / (NH / NKV);
    let n_keys = step.pos0 + t + 1u;

    let pos = step.pos0 + t;
    let qb = t * QS + h * HD;
    var q: array<vec4<f32>, HV>;
    for (var i = 0u; i < HV; i++) {
        var v: vec4<f32>;
        for (var k = 0u; k < 4u; k++) {
            let r = rope_term(4u * i + k, pos);
            v[k] = qkv[qb + 4u * i + k] * r.c + qkv[qb + r.partner] * r.s;
        }
        q[i] = v * SCALE;
    }
    var m = -1.0e30;
    var l = 0.0;
    var acc: array<vec4<f32>, HV>;
    for (var j = lane; j < n_keys; j += AWG) {
        let kx = kvh * HV;
        let row = j % KV_H;
        let layer = j / KV_H;
        var s = 0.0;
        for (var i = 0u; i < HV; i++) {
            s += dot(q[i], textureLoad(k_cache, vec2<u32>(kx + i, row), layer, 0));
        }
        let m_new = max(m, s);
        let c = exp(m - m_new);
        let p = exp(s - m_new);
        l = l * c + p;
        for (var i = 0u; i < HV; i++) {
            acc[i] = acc[i] * c + p * textureLoad(v_cache, vec2<u32>(kx + i, row), layer, 0);
        }
        m = m_new;
    }

    lane_max[lane] = m;
    lane_sum[lane] = l;
    workgroupBarrier();
    var big = -1.0e30;
    for (var i = 0u; i < AWG; i++) {
        big = max(big, lane_max[i]);
    }
    var total = 0.0;
    for (var i = 0u; i < AWG; i++) {
        total += lane_sum[i] * exp(lane_max[i] - big);
    }
    let w = exp(m - big) / total;

    let ob = t * OS4 + h * HV;
    for (var c = 0u; c < HV; c += 4u) {
        for (var k = 0u; k < 4u; k++) {
            red[lane * 4u + k] = select(vec4<f32>(0.0), w * acc[min(c + k, HV - 1u)], c + k < HV);
        }
        workgroupBarrier();
        if lane < 4u && c + lane < HV {
            var s = vec4<f32>(0.0);
            for (var i = 0u; i < AWG; i++) {
                s += red[i * 4u + lane];
            }
            out[ob + c + lane] = s;
        }
        workgroupBarrier();
    }
}
