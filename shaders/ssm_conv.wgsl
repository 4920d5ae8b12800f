// The short causal convolution of a gated delta-net layer (Qwen 3.5), then SiLU: per channel c,
// y[t] = silu(Σ_j w[c][j] x[t - (K - 1) + j]) over the channel's last K inputs, the ones before
// this step coming from the sequence's conv state (oldest first), which is left holding the
// last K - 1 inputs. One invocation per channel walks the step's tokens in order.
// Constants: CH (channels), K (kernel width), PS and MS (floats per row of proj and mixed).

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> proj: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> conv_state: array<f32>;
@group(0) @binding(4) var<storage, read_write> mixed: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if c >= CH {
        return;
    }
    var window: array<f32, K>;
    for (var j = 0u; j + 1u < K; j++) {
        window[j] = conv_state[c * (K - 1u) + j];
    }
    for (var t = 0u; t < step.n_tokens; t++) {
        window[K - 1u] = proj[t * PS + c];
        var acc = 0.0;
        for (var j = 0u; j < K; j++) {
            acc += weight[c * K + j] * window[j];
        }
        mixed[t * MS + c] = acc / (1.0 + exp(-acc));
        for (var j = 0u; j + 1u < K; j++) {
            window[j] = window[j + 1u];
        }
    }
    for (var j = 0u; j + 1u < K; j++) {
        conv_state[c * (K - 1u) + j] = window[j];
    }
}
