// The mixture-of-experts output joins the residual stream: x[t] += Σ_k weights[t USED + k]
// y[t USED + k] for every token t of the step. Constants: E (width), USED, XS and YS (floats
// per row of x and y).

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

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
    x[t * XS + i] += sum;
}
