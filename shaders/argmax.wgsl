// Greedy sampling: the index of the largest logit of each logits row (first index on ties),
// `result[r]` for row r (the rows kept from step.logits_from on; one for a step of one
// sequence, one per sequence for a batched decode step). One workgroup per row; constants N
// (vocabulary size) and LS (floats per logits row). With MASK, only
// tokens whose bit is set in the row's part of `allowed` (bit i % 32 of word r * MW + i / 32; MW
// words a row) are candidates: structured output's grammar decides them.

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<u32>;
#if MASK
@group(0) @binding(3) var<storage, read> allowed: array<u32>;
#endif

const WG: u32 = 256u;
var<workgroup> best_val: array<f32, WG>;
var<workgroup> best_idx: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lane: u32, @builtin(workgroup_id) wg: vec3<u32>) {
    let row = wg.x;
    let base = row * LS;
    // The lowest finite f32: WGSL refuses an infinite constant (naga accepts one, Tint does not).
    var bv = bitcast<f32>(0xff7fffffu);
    var bi = 0xffffffffu;
    for (var i = lane; i < N; i += WG) {
        let v = logits[base + i];
#if MASK
        if ((allowed[row * MW + i / 32u] >> (i % 32u)) & 1u) == 0u {
            continue;
        }
#endif
        // NaN compares false and is never chosen.
        if v > bv {
            bv = v;
            bi = i;
        }
    }
#if SUBGROUPS
    // Within each subgroup in registers; then every lane holds its subgroup's winner, and one
    // pass over the workgroup's lanes picks among them (any subgroup size or layout).
    let sv = subgroupMax(bv);
    let si = subgroupMin(select(0xffffffffu, bi, bv == sv));
    best_val[lane] = sv;
    best_idx[lane] = si;
    workgroupBarrier();
    if lane == 0u {
        var v = best_val[0];
        var i = best_idx[0];
        for (var k = 1u; k < WG; k++) {
            if best_val[k] > v || (best_val[k] == v && best_idx[k] < i) {
                v = best_val[k];
                i = best_idx[k];
            }
        }
        result[row] = min(i, N - 1u);
    }
#else
    best_val[lane] = bv;
    best_idx[lane] = bi;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if lane < stride {
            let ov = best_val[lane + stride];
            let oi = best_idx[lane + stride];
            if ov > best_val[lane] || (ov == best_val[lane] && oi < best_idx[lane]) {
                best_val[lane] = ov;
                best_idx[lane] = oi;
            }
        }
        workgroupBarrier();
    }
    if lane == 0u {
        result[row] = min(best_idx[0], N - 1u);
    }
#endif
}
