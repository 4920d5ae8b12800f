// A gated delta-net head's two per-token scalars from its projection row (starting at p): the
// log of its decay, softplus(alpha + dt_bias) A (A negative), and its write strength
// beta = sigmoid(beta). Needs the bindings proj and decay (dt bias per value head, then A) and
// the constants HV, A0 and B0.

fn softplus(x: f32) -> f32 {
    return select(log(1.0 + exp(x)), x, x > 20.0);
}

fn log_decay(p: u32, h: u32) -> f32 {
    return softplus(proj[p + A0 + h] + decay[h]) * decay[HV + h];
}

fn write_strength(p: u32, h: u32) -> f32 {
    return 1.0 / (1.0 + exp(-proj[p + B0 + h]));
}
