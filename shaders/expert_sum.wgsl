// The mixture-of-experts output joins the residual stream: x[t] += Σ_k weights[t USED + k]
// y[t USED + k] for every token t of the step, and with SHARED the shared expert's row weighted
// by its gate: + shared_weights[t] shared_rows[t]; with STORE the sum replaces x[t] instead.
// Constants: E (width), USED, XS, YS and SS (floats per row of x, y and shared).

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
#if SHARED
@group(0) @binding(4) var<storage, read> shared_weights: array<f32>;
@group(0) @binding(5) var<storage, read> shared_rows: array<f32>;
#endif

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = gid.y;
    if i >= E || t >= step.n_tokens {
        return;
    }
    var sum = 0.0;
    for (var k = 0u; k < USED; k++) {
        let p = t * USED + k;
        sum += weights[p] * y[p * YS + i];
    }
#if SHARED
    sum += shared_weights[t] * shared_rows[t * SS + i];
#endif
#if STORE
    x[t * XS + i] = sum;
#else
    x[t * XS + i] += sum;
#endif
}
