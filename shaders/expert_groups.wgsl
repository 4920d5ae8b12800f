// Groups the step's (token, slot) pairs by expert for the batched expert kernel: `order` lists
// the pairs expert by expert (in pair order within each), and each chunk of up to 8 pairs of
// one expert gets a row of `chunks`: (expert, first index into order, pairs, 0). Chunks past
// the last are zeroed (their workgroups do nothing): the batched kernel's grid is fixed by the
// step, ceil(pairs / 8) + E, which no grouping can exceed. One invocation: a few thousand pairs
// at most, and no atomics needed.
// Constants: E (experts), USED.

#include "step.wgsl"
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> order: array<u32>;
@group(0) @binding(3) var<storage, read_write> chunks: array<vec4<u32>>;
// One cursor per expert: its count, then where its next pair goes.
@group(0) @binding(4) var<storage, read_write> cursor: array<u32>;

@compute @workgroup_size(1)
fn main() {
    let pairs = step.n_tokens * USED;
    for (var e = 0u; e < E; e++) {
        cursor[e] = 0u;
    }
    for (var p = 0u; p < pairs; p++) {
        let e = min(ids[p], E - 1u);
        cursor[e] += 1u;
    }
    var start = 0u;
    var c = 0u;
    for (var e = 0u; e < E; e++) {
        let n = cursor[e];
        cursor[e] = start;
        for (var k = 0u; k < n; k += 8u) {
            chunks[c] = vec4<u32>(e, start + k, min(8u, n - k), 0u);
            c += 1u;
        }
        start += n;
    }
    let grid = (pairs + 7u) / 8u + E;
    for (; c < grid; c++) {
        chunks[c] = vec4<u32>(0u);
    }
    for (var p = 0u; p < pairs; p++) {
        let e = min(ids[p], E - 1u);
        order[cursor[e]] = p;
        cursor[e] += 1u;
    }
}
