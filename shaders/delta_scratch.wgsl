// Where delta_chunk.wgsl leaves, per (chunk, value head), what delta_chunk_state.wgsl reads:
// Q~, K~, W and U' (C x S each), P (C x C) and the cumulative log decays L (C).

const Q_AT: u32 = 0u;
const K_AT: u32 = C * S;
const W_AT: u32 = 2u * C * S;
const U_AT: u32 = 3u * C * S;
const P_AT: u32 = 4u * C * S;
const L_AT: u32 = 4u * C * S + C * C;
const BLOCK: u32 = 4u * C * S + C * C + C;

fn block(chunk: u32, h: u32) -> u32 {
    return (chunk * HV + h) * BLOCK;
}
