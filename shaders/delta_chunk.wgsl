// The part of the chunked gated delta rule that does not depend on the state: one workgroup per
// (value head h, chunk c of C tokens), every chunk of the step at once. With the notation of
// delta_net.wgsl (the state M, key x value, M_t = g_t M_{t-1} + k_t u_t^T with
// u_t = beta_t (v_t - g_t M_{t-1}^T k_t)), L_t the chunk's cumulative log decay up to token t
// and M_0 the state before the chunk, unrolling the recurrence gives
//     u_t + sum_{s<t} beta_t e^(L_t - L_s) (k_t . k_s) u_s = beta_t v_t - beta_t e^(L_t) M_0^T k_t,
// a unit lower-triangular system (I + A) U = ... solved here by forward substitution for
// both right-hand sides: U' = (I + A)^-1 diag(beta) V and W = (I + A)^-1 diag(beta e^L) K, so
// that U = U' - W M_0. delta_chunk_state.wgsl then carries M_0 from chunk to chunk:
//     o_t = M_0^T (e^(L_t) q_t) + sum_{s<=t} e^(L_t - L_s) (q_t . k_s) u_s
//     M_C = e^(L_last) M_0 + sum_s (e^(L_last - L_s) k_s) u_s^T.
// Decays appear only as e^(L_t - L_s) with s <= t or e^(L_t): never above 1, so a long chunk
// of strong decay underflows to zero (as the products it stands for do) instead of overflowing.
// q and k are the L2-normalised query and key of key head h % HK (q also scaled by S^-1/2).
// Writes per (chunk, head) one block of the scratch: Q~ = e^L q, K~ = e^(L_last - L) k, W,
// U' (C x S each, row t a token, zeros past a partial chunk's end), P (C x C,
// P[t][s] = e^(L_t - L_s) (q_t . k_s) for s <= t, else zero) and L.
// Constants: HK, HV, S, C (<= 64), PS, MS, A0, B0, EPS.

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> proj: array<f32>;
@group(0) @binding(2) var<storage, read> mixed: array<f32>;
@group(0) @binding(3) var<storage, read> decay: array<f32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>;

#include "delta_gates.wgsl"
#include "delta_scratch.wgsl"

// Row t of I + A, below the diagonal.
var<workgroup> a: array<f32, C * C>;
var<workgroup> q_scale: array<f32, C>;
var<workgroup> k_scale: array<f32, C>;
var<workgroup> beta: array<f32, C>;
var<workgroup> cumulative: array<f32, C>;

fn query(t: u32, kh: u32, i: u32) -> f32 {
    return mixed[t * MS + kh * S + i];
}

fn key(t: u32, kh: u32, i: u32) -> f32 {
    return mixed[t * MS + (HK + kh) * S + i];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
    let h = wg.x;
    let kh = h % HK;
    let t0 = wg.y * C;
    let len = min(C, step.n_tokens - t0);
    let base = block(wg.y, h);

    // A lane per token: its norms, write strength and log decay.
    if lane < len {
        let t = t0 + lane;
        var sq = 0.0;
        var sk = 0.0;
        for (var i = 0u; i < S; i++) {
            let q = query(t, kh, i);
            let k = key(t, kh, i);
            sq += q * q;
            sk += k * k;
        }
        q_scale[lane] = inverseSqrt(sq + EPS) * inverseSqrt(f32(S));
        k_scale[lane] = inverseSqrt(sk + EPS);
        beta[lane] = write_strength(t * PS, h);
        cumulative[lane] = log_decay(t * PS, h);
    }
    workgroupBarrier();
    var l = 0.0;
    for (var s = 0u; s <= lane && s < len; s++) {
        l += cumulative[s];
    }
    workgroupBarrier();
    if lane < len {
        cumulative[lane] = l;
        scratch[base + L_AT + lane] = l;
    }
    workgroupBarrier();

    // Row t of A and of P, a lane per token.
    if lane < C {
        let t = lane;
        for (var s = 0u; s < C; s++) {
            var a_ts = 0.0;
            var p_ts = 0.0;
            if t < len && s <= t {
                var kk = 0.0;
                var qk = 0.0;
                for (var i = 0u; i < S; i++) {
                    let k = key(t0 + s, kh, i);
                    kk += key(t0 + t, kh, i) * k;
                    qk += query(t0 + t, kh, i) * k;
                }
                let d = exp(cumulative[t] - cumulative[s]);
                a_ts = select(0.0, beta[t] * d * k_scale[t] * k_scale[s] * kk, s < t);
                p_ts = d * q_scale[t] * k_scale[s] * qk;
            }
            a[t * C + s] = a_ts;
            scratch[base + P_AT + t * C + s] = p_ts;
        }
    }
    workgroupBarrier();

    // A lane per column (key index i and value index j alike): forward substitution. Rows
    // past a partial chunk's end are zeros.
    let last = cumulative[len - 1u];
    for (var col = lane; col < S; col += 64u) {
        for (var t = 0u; t < C; t++) {
            let at = t * S + col;
            var q = 0.0;
            var k = 0.0;
            var w = 0.0;
            var u = 0.0;
            if t < len {
                let m = (t0 + t) * MS;
                q = exp(cumulative[t]) * mixed[m + kh * S + col] * q_scale[t];
                k = mixed[m + (HK + kh) * S + col] * k_scale[t];
                w = beta[t] * exp(cumulative[t]) * k;
                u = beta[t] * mixed[m + (2u * HK + h) * S + col];
                k *= exp(last - cumulative[t]);
                for (var s = 0u; s < t; s++) {
                    w -= a[t * C + s] * scratch[base + W_AT + s * S + col];
                    u -= a[t * C + s] * scratch[base + U_AT + s * S + col];
                }
            }
            scratch[base + Q_AT + at] = q;
            scratch[base + K_AT + at] = k;
            scratch[base + W_AT + at] = w;
            scratch[base + U_AT + at] = u;
        }
    }
}
