// Where each token row of a step belongs: its sequence and its position in that sequence
// (written per step with the step uniform: src/ops/step.rs). One sequence's step has rows
// (0, pos0), (0, pos0 + 1), …; a batched decode step has one row per sequence.

@group(0) @binding(14) var<storage, read> rows: array<vec2<u32>>;

fn row_seq(t: u32) -> u32 {
    return rows[t].x;
}

fn row_pos(t: u32) -> u32 {
    return rows[t].y;
}
