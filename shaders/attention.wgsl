// Causal attention of each query head over its sequence's part of this layer's KV cache
// (rows.wgsl: each token row's sequence and position), grouped-query aware, for the tokens
// attention_flash.wgsl leaves (attention_tiles.wgsl): decoding tokens, and the rows of a
// step that mixes sequences.
// One workgroup per (HPW query heads sharing one KV head, token, split of the keys): every key
// and value texel fetched is used by all HPW heads. The queries are rotated (RoPE) as they are
// loaded. Each invocation runs an online softmax over every AWG-th key position of the split
// with its own accumulators; the partial results are merged once at the end. With one split
// the result goes to `out`; with several (decoding over a long context: more workgroups to
// spread the keys over), each split leaves its (max, sum, unnormalised accumulator) in
// `partials` for attention_combine.wgsl. The caches are read through kv_read.wgsl, in the
// layout of their type.
// Queries and accumulators are unrolled into named registers (q{g}_{c}_{k}: head g, texel
// 4c+k) rather than arrays: software adapters keep a dynamically indexed array in memory and
// gather from it, which made this kernel 1.5x slower.
// Constants: NH, NKV, HD, RD, AWG (invocations), BR and FLASH (attention_tiles.wgsl), HPW
// (query heads per workgroup, dividing NH / NKV), HV4 (HD / 16), SCALE (score scale, usually
// 1/sqrt(HD)), QS (floats per qkv row), OS4 (vec4s per output row), KV_SLOTS and KV_H
// (kv_slot.wgsl), WINDOW (keys a sliding-window layer sees, 0 for all). With SINKS, each
// head's sink logit (gpt-oss) joins its softmax's denominator; with GATED, the output is gated
// (attention_gate.wgsl, G0).

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> rope_cs: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> partials: array<vec4<f32>>;
#if SINKS
@group(0) @binding(7) var<storage, read> sinks: array<f32>;
#endif

#include "rope.wgsl"
#include "rows.wgsl"
#include "kv_slot.wgsl"
#include "kv_read.wgsl"
#include "attention_split.wgsl"
#include "attention_query.wgsl"
#include "attention_tiles.wgsl"
#if GATED
#include "attention_gate.wgsl"
#endif

const HV: u32 = HD / 4u;

var<workgroup> lane_max: array<f32, AWG * HPW>;
var<workgroup> lane_sum: array<f32, AWG * HPW>;
var<workgroup> red: array<vec4<f32>, AWG * 4u>;
var<workgroup> flash_took: bool;

// Where a result vec4 `i` of head `h` goes: the output row, or this split's partial slot.
fn put(t: u32, h: u32, i: u32, splits: u32, s: u32, v: vec4<f32>) {
    if splits == 1u {
#if GATED
        out[t * OS4 + h * HV + i] = v * output_gate(t, h, i);
#else
        out[t * OS4 + h * HV + i] = v;
#endif
    } else {
        partials[split_slot(t, h, s) + 1u + i] = v;
    }
}

@compute @workgroup_size(AWG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let h0 = wg.x * HPW;
    let t = wg.y;
    if t >= step.n_tokens {
        return;
    }
    // (A decoding step, the hot path, never has a flash tile: no barrier for it.)
    if step.n_tokens > 1u {
        if lane == 0u {
            flash_took = flash_takes(t / BR);
        }
        if workgroupUniformLoad(&flash_took) {
            return;
        }
    }
    let kv_head = h0 / (NH / NKV);
    let pos = row_pos(t);
    let seq = row_seq(t);
    let splits = groups.z;
    let split = wg.z;
    let start = window_start(pos);
    let per_split = (pos + 1u - start + splits - 1u) / splits;
    let first_key = start + split * per_split;
    let end_key = min(pos + 1u, first_key + per_split);

#for g in 0..HPW
    var m{g} = -1.0e30;
    var l{g} = 0.0;
#for c in 0..HV4
#for k in 0..4
    let q{g}_{c}_{k} = query(t, h0 + {g}u, {c}u * 4u + {k}u, pos);
    var acc{g}_{c}_{k} = vec4<f32>(0.0);
#endfor
#endfor
#endfor

    for (var j = first_key + lane; j < end_key; j += AWG) {
        let at = kv_at(seq, j);
#for g in 0..HPW
        var s{g} = 0.0;
#endfor
#for c in 0..HV4
        let kc{c} = key_chunk(at, kv_head, {c}u);
#for k in 0..4
        let k{c}_{k} = kc{c}[{k}];
#for g in 0..HPW
        s{g} += dot(q{g}_{c}_{k}, k{c}_{k});
#endfor
#endfor
#endfor
#for g in 0..HPW
        let m_new{g} = max(m{g}, s{g});
        let c{g} = exp(m{g} - m_new{g});
        let p{g} = exp(s{g} - m_new{g});
        l{g} = l{g} * c{g} + p{g};
        m{g} = m_new{g};
#endfor
#for c in 0..HV4
        let vc{c} = value_chunk(at, kv_head, {c}u);
#for k in 0..4
        let v{c}_{k} = vc{c}[{k}];
#for g in 0..HPW
        acc{g}_{c}_{k} = acc{g}_{c}_{k} * c{g} + p{g} * v{c}_{k};
#endfor
#endfor
#endfor
    }

#for g in 0..HPW
    lane_max[{g}u * AWG + lane] = m{g};
    lane_sum[{g}u * AWG + lane] = l{g};
#endfor
    workgroupBarrier();
#for g in 0..HPW
    {
        var big = -1.0e30;
        for (var i = 0u; i < AWG; i++) {
            big = max(big, lane_max[{g}u * AWG + i]);
        }
        var total = 0.0;
        for (var i = 0u; i < AWG; i++) {
            total += lane_sum[{g}u * AWG + i] * exp(lane_max[{g}u * AWG + i] - big);
        }
        // One split normalises; several leave that to attention_combine.wgsl.
        var w = exp(m{g} - big);
#if SINKS
        if splits == 1u {
            total += exp(sinks[h0 + {g}u] - big);
        }
#endif
        if splits == 1u {
            w /= total;
        } else if lane == 0u {
            partials[split_slot(t, h0 + {g}u, split)] = vec4<f32>(big, total, f32(splits), 0.0);
        }
#for c in 0..HV4
#for k in 0..4
        red[lane * 4u + {k}u] = w * acc{g}_{c}_{k};
#endfor
        workgroupBarrier();
        if lane < 4u {
            var s = vec4<f32>(0.0);
            for (var i = 0u; i < AWG; i++) {
                s += red[i * 4u + lane];
            }
            put(t, h0 + {g}u, {c}u * 4u + lane, splits, split, s);
        }
        workgroupBarrier();
#endfor
    }
#endfor
}
