// Mixture-of-experts routing, one invocation per token of the step: the USED experts with the
// largest router logits (in order, the lower index first on ties) and their weights.
// Variants:
//   BIAS       a router bias is added to the logits first (gpt-oss)
//   SELECTED   the weights are a softmax over the selected logits (gpt-oss); otherwise the
//              softmax over all experts, at the selected ones (Qwen 3 MoE)
//   NORMALIZE  the weights are divided by their sum
//   SHARED     logit E (after the experts') gates a shared expert: its weight is the sigmoid
//   EXPERT_SCALES  each selected expert's weight times its scale (Gemma 4)
// Constants: E (experts), USED, LS (floats per logits row), SCALE (applied last).

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
#if BIAS
@group(0) @binding(4) var<storage, read> bias: array<f32>;
#endif
#if SHARED
@group(0) @binding(5) var<storage, read_write> shared_weights: array<f32>;
#endif
#if EXPERT_SCALES
@group(0) @binding(6) var<storage, read> expert_scales: array<f32>;
#endif

fn logit(t: u32, e: u32) -> f32 {
#if BIAS
    return logits[t * LS + e] + bias[e];
#else
    return logits[t * LS + e];
#endif
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    if t >= step.n_tokens {
        return;
    }
    // The lowest finite f32 (WGSL has no infinite constant).
    let lowest = bitcast<f32>(0xff7fffffu);
    var picked: array<f32, USED>;
    // Choice k is the largest (logit, -index) after choice k - 1 in that order, so nothing
    // already chosen is chosen again and no set of chosen experts is kept. NaN is never chosen.
    var prev_v = bitcast<f32>(0x7f7fffffu);
    var prev_e = 0xffffffffu;
    for (var k = 0u; k < USED; k++) {
        var best_v = lowest;
        var best_e = 0xffffffffu;
        for (var e = 0u; e < E; e++) {
            let v = logit(t, e);
            let after_prev = v < prev_v || (v == prev_v && (prev_e == 0xffffffffu || e > prev_e));
            if after_prev && (v > best_v || (v == best_v && best_e == 0xffffffffu)) {
                best_v = v;
                best_e = e;
            }
        }
        prev_v = best_v;
        prev_e = best_e;
        ids[t * USED + k] = min(best_e, E - 1u);
        picked[k] = best_v;
    }
    let top = picked[0];
#if SELECTED
    var total = 0.0;
    for (var k = 0u; k < USED; k++) {
        total += exp(picked[k] - top);
    }
#else
    var total = 0.0;
    for (var e = 0u; e < E; e++) {
        let v = logit(t, e);
        if v == v {
            total += exp(v - top);
        }
    }
#endif
    var w: array<f32, USED>;
    var sum = 0.0;
    for (var k = 0u; k < USED; k++) {
        w[k] = exp(picked[k] - top) / total;
        sum += w[k];
    }
#if NORMALIZE
    // As llama.cpp does: the sum held at f16's smallest normal number or above.
    let divisor = max(sum, 6.103515625e-5);
#else
    let divisor = 1.0;
#endif
    for (var k = 0u; k < USED; k++) {
#if EXPERT_SCALES
        let expert_scale = expert_scales[ids[t * USED + k]];
#else
        let expert_scale = 1.0;
#endif
        weights[t * USED + k] = w[k] / divisor * SCALE * expert_scale;
    }
#if SHARED
    shared_weights[t] = 1.0 / (1.0 + exp(-logits[t * LS + E]));
#endif
}
