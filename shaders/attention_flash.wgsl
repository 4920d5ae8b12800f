// Causal attention of a prompt's tokens (flash attention): one workgroup per (HPW query heads
// sharing one KV head, tile of BR token rows of one sequence), one invocation per token. All
// invocations walk the tile's keys together, so each K and V texel is read at one address by
// the whole tile in the same instruction: a GPU serves it to all lanes from one cache line,
// and a software adapter loads it once per group of lanes it runs together, where a kernel
// with one token per workgroup (attention.wgsl) fetches every key once per token. Each
// invocation keeps its token's online softmax (running max, sum, unnormalised accumulators)
// in registers; keys its causal (or sliding-window) mask hides score -1e38 and weigh
// exp(-1e38 - m) = 0. No score matrix is formed. attention_tiles.wgsl says which tiles this
// kernel takes; attention.wgsl does the rest.
// KU keys per inner step: each query and accumulator register (memory, on a software
// adapter) is read and written once for all of them, and the accumulators are rescaled only
// when a step raises the running maximum, which after the first keys is rare.
// Staging K and V tiles in workgroup memory instead measured 0.7x of this on lavapipe
// (benches/kernels.rs attention): its reads there cost more than the texel fetches saved.
// Constants: as attention.wgsl (NH, NKV, HD, RD, HPW, HV4, SCALE, QS, OS4, KV_SLOTS, KV_H,
// WINDOW; SINKS, GATED), BR (tokens per tile, the workgroup size), KU (keys per inner step).

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> rope_cs: array<vec2<f32>>;
#if SINKS
@group(0) @binding(7) var<storage, read> sinks: array<f32>;
#endif

#include "rope.wgsl"
#include "rows.wgsl"
#include "kv_slot.wgsl"
#include "kv_read.wgsl"
#include "attention_query.wgsl"
#include "attention_tiles.wgsl"
#if GATED
#include "attention_gate.wgsl"
#endif

const HV: u32 = HD / 4u;

// (taken, first key, end of keys) of the tile: the positions some token of it sees.
var<workgroup> plan: vec3<u32>;

@compute @workgroup_size(BR)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let h0 = wg.x * HPW;
    let tile = wg.y;
    let first = tile * BR;
    if first >= step.n_tokens {
        return;
    }
    let last = min(step.n_tokens, first + BR) - 1u;
    if lane == 0u {
        // Positions grow along a sequence's rows, but nothing here relies on it.
        var lo = 0xffffffffu;
        var hi = 0u;
        for (var r = first; r <= last; r++) {
            lo = min(lo, window_start(row_pos(r)));
            hi = max(hi, row_pos(r) + 1u);
        }
        plan = vec3<u32>(u32(flash_takes(tile)), lo, hi);
    }
    let keys = workgroupUniformLoad(&plan);
    if keys.x == 0u {
        return;
    }
    let t = min(first + lane, last);
    let live = first + lane <= last;
    let pos = row_pos(t);
    let seq = row_seq(first);
    let kv_head = h0 / (NH / NKV);
    let my_first = window_start(pos);
    let my_end = select(0u, pos + 1u, live);

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

    for (var j = keys.y; j < keys.z; j += KU) {
#for u in 0..KU
        let at{u} = kv_at(seq, min(j + {u}u, keys.z - 1u));
        let seen{u} = j + {u}u < keys.z && j + {u}u >= my_first && j + {u}u < my_end;
#for g in 0..HPW
        var s{g}_{u} = 0.0;
#endfor
#endfor
#for c in 0..HV4
#for u in 0..KU
        let kc{u}_{c} = key_chunk(at{u}, kv_head, {c}u);
#endfor
#for k in 0..4
#for u in 0..KU
#for g in 0..HPW
        s{g}_{u} += dot(q{g}_{c}_{k}, kc{u}_{c}[{k}]);
#endfor
#endfor
#endfor
#endfor
#for g in 0..HPW
        var top{g} = m{g};
#for u in 0..KU
        s{g}_{u} = select(-1.0e38, s{g}_{u}, seen{u});
        top{g} = max(top{g}, s{g}_{u});
#endfor
        if top{g} > m{g} {
            let c{g} = exp(m{g} - top{g});
            l{g} *= c{g};
#for c in 0..HV4
#for k in 0..4
            acc{g}_{c}_{k} *= c{g};
#endfor
#endfor
            m{g} = top{g};
        }
#for u in 0..KU
        let p{g}_{u} = exp(s{g}_{u} - m{g});
        l{g} += p{g}_{u};
#endfor
#endfor
#for c in 0..HV4
#for u in 0..KU
        let vc{u}_{c} = value_chunk(at{u}, kv_head, {c}u);
#endfor
#for k in 0..4
#for g in 0..HPW
#for u in 0..KU
        acc{g}_{c}_{k} += p{g}_{u} * vc{u}_{c}[{k}];
#endfor
#endfor
#endfor
#endfor
    }

    if !live {
        return;
    }
#for g in 0..HPW
    {
        var total = l{g};
#if SINKS
        total += exp(sinks[h0 + {g}u] - m{g});
#endif
        let w = 1.0 / total;
        let o = t * OS4 + (h0 + {g}u) * HV;
#for c in 0..HV4
#for k in 0..4
#if GATED
        out[o + {c}u * 4u + {k}u] = acc{g}_{c}_{k} * w * output_gate(t, h0 + {g}u, {c}u * 4u + {k}u);
#else
        out[o + {c}u * 4u + {k}u] = acc{g}_{c}_{k} * w;
#endif
#endfor
#endfor
    }
#endfor
}
