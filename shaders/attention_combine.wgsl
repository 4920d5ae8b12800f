// Merges the per-split partial results of attention.wgsl into the output rows: for each
// (head, token), out = Σ_s acc_s · exp(m_s − M) / Σ_s l_s · exp(m_s − M), M the largest m_s.
// One workgroup per (head, token), one invocation per vec4 of the head.
// Constants: NH, HD, OS4 (vec4s per output row). With SINKS, each head's sink logit joins the
// denominator; with GATED, the output is gated (attention_gate.wgsl: QS, G0).

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
#if SINKS
@group(0) @binding(3) var<storage, read> sinks: array<f32>;
#endif
#if GATED
@group(0) @binding(4) var<storage, read> qkv: array<f32>;
#include "attention_gate.wgsl"
#endif

#include "attention_split.wgsl"

const HV: u32 = HD / 4u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) i: u32) {
    let h = wg.x;
    let t = wg.y;
    if t >= step.n_tokens || i >= HV {
        return;
    }
    let splits = u32(partials[split_slot(t, h, 0u)].z);
    var big = -1.0e30;
    for (var s = 0u; s < splits; s++) {
        big = max(big, partials[split_slot(t, h, s)].x);
    }
    var total = 0.0;
    var acc = vec4<f32>(0.0);
    for (var s = 0u; s < splits; s++) {
        let slot = split_slot(t, h, s);
        let w = exp(partials[slot].x - big);
        total += partials[slot].y * w;
        acc += partials[slot + 1u + i] * w;
    }
#if SINKS
    total += exp(sinks[h] - big);
#endif
#if GATED
    out[t * OS4 + h * HV + i] = acc / total * output_gate(t, h, i);
#else
    out[t * OS4 + h * HV + i] = acc / total;
#endif
}
