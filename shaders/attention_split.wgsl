// Layout of attention's per-split partial results (attention.wgsl, attention_combine.wgsl):
// for each (split, token, head) a slot of 1 + HD/4 vec4s, the first holding (max score, sum of
// exp(score - max), split count, 0), then the unnormalised accumulator of HD values. Split 0
// comes first, so the combine finds the split count where it does not yet know it.

fn split_slot(t: u32, h: u32, s: u32) -> u32 {
    return ((s * step.n_tokens + t) * NH + h) * (HD / 4u + 1u);
}
