// The part of the chunked gated delta rule that carries the state (delta_chunk.wgsl has the
// derivation): one workgroup per value head h walks the step's chunks in order; per chunk, a
// lane owning column j of the state M (as in delta_net.wgsl) computes
//     u_t = U'_t - W_t . M_0     o_t = Q~_t . M_0 + sum_{s<=t} P[t][s] u_s
//     M <- e^(L_last) M_0 + sum_s K~_s u_s
// reading each of M_0's floats once for all of the chunk's tokens. The loops over the chunk's
// tokens run all C of them (delta_chunk.wgsl leaves zeros past a partial chunk's end), a
// constant count that compilers unroll into registers; bounded by the chunk's length instead,
// lavapipe computed NaNs in one chunk of a long step. Then the output is RMS-normalised over
// the head, times the norm's gamma and silu(z).
// Constants: HV, S, C, PS, OS, Z0, EPS, RPL.

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> proj: array<f32>;
@group(0) @binding(2) var<storage, read> scratch: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

#include "delta_scratch.wgsl"

// Each lane's sum of squares of each token's outputs, then each token's normalising factor.
var<workgroup> squares: array<f32, 64 * C>;
var<workgroup> inverse_rms: array<f32, C>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let h = wg.x;
    let chunks = (step.n_tokens + C - 1u) / C;
    for (var c = 0u; c < chunks; c++) {
        let t0 = c * C;
        let len = min(C, step.n_tokens - t0);
        let base = block(c, h);
        let carried = exp(scratch[base + L_AT + len - 1u]);
        var sq: array<f32, C>;
        for (var r = 0u; r < RPL; r++) {
            let j = lane + r * 64u;
            if j >= S {
                break;
            }
            let column = h * S * S + j;
            var u: array<f32, C>;
            var o: array<f32, C>;
            for (var i = 0u; i < S; i++) {
                let m = state[column + i * S];
                for (var t = 0u; t < C; t++) {
                    u[t] += scratch[base + W_AT + t * S + i] * m;
                    o[t] += scratch[base + Q_AT + t * S + i] * m;
                }
            }
            for (var t = 0u; t < C; t++) {
                u[t] = scratch[base + U_AT + t * S + j] - u[t];
            }
            for (var t = 0u; t < len; t++) {
                var acc = o[t];
                for (var s = 0u; s <= t; s++) {
                    acc += scratch[base + P_AT + t * C + s] * u[s];
                }
                out[(t0 + t) * OS + h * S + j] = acc;
                sq[t] += acc * acc;
            }
            for (var i = 0u; i < S; i++) {
                var m = carried * state[column + i * S];
                for (var s = 0u; s < C; s++) {
                    m += scratch[base + K_AT + s * S + i] * u[s];
                }
                state[column + i * S] = m;
            }
        }
        for (var t = 0u; t < C; t++) {
            squares[t * 64u + lane] = sq[t];
        }
        workgroupBarrier();
        if lane < len {
            var total = 0.0;
            for (var l = 0u; l < 64u; l++) {
                total += squares[lane * 64u + l];
            }
            inverse_rms[lane] = inverseSqrt(total / f32(S) + EPS);
        }
        workgroupBarrier();
        for (var r = 0u; r < RPL; r++) {
            let j = lane + r * 64u;
            if j >= S {
                break;
            }
            for (var t = 0u; t < len; t++) {
                let at = (t0 + t) * OS + h * S + j;
                let z = proj[(t0 + t) * PS + Z0 + h * S + j];
                out[at] = out[at] * inverse_rms[t] * gamma[j] * z / (1.0 + exp(-z));
            }
        }
    }
}
