// The sum of one f32 across the 64 invocations of a workgroup, by a workgroup-memory tree.
// Every invocation must call it (it has barriers); each gets the total.

var<workgroup> partial: array<f32, 64>;

fn workgroup_total(lane: u32, v: f32) -> f32 {
    partial[lane] = v;
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if lane < stride {
            partial[lane] += partial[lane + stride];
        }
    }
    workgroupBarrier();
    return partial[0];
}
