// The gated delta rule of a Qwen 3.5 linear-attention layer token by token (decode; a step of
// several tokens goes through delta_chunk.wgsl and delta_chunk_state.wgsl), one workgroup per
// value head h, the step's tokens in order. Per token, with q and k the head's (h % HK) L2-normalised
// convolved query and key, v its value, g = exp(softplus(alpha + dt_bias) A) its decay and
// beta = sigmoid(beta) its write strength, the head's state M (S x S, key index i by value
// index j, stored i-major) becomes
//     M <- g M + k (beta (v - g M^T k))^T,   o = M^T q / sqrt(S)
// and the output is o RMS-normalised over the head, times the norm's gamma and silu(z).
// Lanes own columns j = lane, lane + 64, ... (RPL of them): each column evolves on its own, and
// neighbouring lanes read neighbouring floats.
// Constants: HK, HV (key and value heads), S (head size), PS, MS, OS (floats per row of proj,
// mixed, out), Z0, B0, A0 (where z, beta and alpha start in a proj row), EPS, RPL.

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> proj: array<f32>;
@group(0) @binding(2) var<storage, read> mixed: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
// dt_bias for each value head, then A (negative).
@group(0) @binding(4) var<storage, read> decay: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

#include "total.wgsl"
#include "delta_gates.wgsl"

var<workgroup> qs: array<f32, S>;
var<workgroup> ks: array<f32, S>;

// The workgroup's total of v, every lane waiting until all have read it (so the next call may
// reuse the scratch).
fn total(lane: u32, v: f32) -> f32 {
    let sum = workgroup_total(lane, v);
    workgroupBarrier();
    return sum;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let h = wg.x;
    let kh = h % HK;
    for (var t = 0u; t < step.n_tokens; t++) {
        let m = t * MS;
        let p = t * PS;
        var sq = 0.0;
        var sk = 0.0;
        for (var i = lane; i < S; i += 64u) {
            let q = mixed[m + kh * S + i];
            let k = mixed[m + (HK + kh) * S + i];
            qs[i] = q;
            ks[i] = k;
            sq += q * q;
            sk += k * k;
        }
        let q_scale = inverseSqrt(total(lane, sq) + EPS) * inverseSqrt(f32(S));
        let k_scale = inverseSqrt(total(lane, sk) + EPS);
        let g = exp(log_decay(p, h));
        let beta = write_strength(p, h);
        var squares = 0.0;
#for r in 0..RPL
        var o{r} = 0.0;
        {
            let j = lane + {r}u * 64u;
            if j < S {
                let column = h * S * S + j;
                var sk_j = 0.0;
                for (var i = 0u; i < S; i++) {
                    sk_j += state[column + i * S] * ks[i];
                }
                let d = (mixed[m + 2u * HK * S + h * S + j] - g * k_scale * sk_j) * beta * k_scale;
                var sq_j = 0.0;
                for (var i = 0u; i < S; i++) {
                    let s = g * state[column + i * S] + d * ks[i];
                    state[column + i * S] = s;
                    sq_j += s * qs[i];
                }
                o{r} = sq_j * q_scale;
                squares += o{r} * o{r};
            }
        }
#endfor
        let inv = inverseSqrt(total(lane, squares) / f32(S) + EPS);
#for r in 0..RPL
        {
            let j = lane + {r}u * 64u;
            if j < S {
                let z = proj[p + Z0 + h * S + j];
                out[t * OS + h * S + j] = o{r} * inv * gamma[j] * z / (1.0 + exp(-z));
            }
        }
#endfor
    }
}
