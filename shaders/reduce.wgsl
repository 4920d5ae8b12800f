// Sums of three vec4 across the 64 invocations of a workgroup. With SUBGROUPS, each subgroup
// adds up in registers first and every lane stores its subgroup's total divided by the
// subgroup's active lane count, so the 64 stored values sum to the workgroup total whatever the
// subgroup size and however subgroups are laid out. Without, a shared-memory tree.
// The caller passes its local index; every invocation must call it (it has barriers).

var<workgroup> reduce_a: array<vec4<f32>, 64>;
var<workgroup> reduce_b: array<vec4<f32>, 64>;
var<workgroup> reduce_c: array<vec4<f32>, 64>;

struct Sums { a: vec4<f32>, b: vec4<f32>, c: vec4<f32> }

fn workgroup_sum(lid: u32, v: Sums) -> Sums {
#if SUBGROUPS
    let share = 1.0 / subgroupAdd(1.0);
    reduce_a[lid] = subgroupAdd(v.a) * share;
    reduce_b[lid] = subgroupAdd(v.b) * share;
    reduce_c[lid] = subgroupAdd(v.c) * share;
    workgroupBarrier();
    var s = Sums(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var i = 0u; i < 64u; i++) {
        s.a += reduce_a[i];
        s.b += reduce_b[i];
        s.c += reduce_c[i];
    }
    return s;
#else
    reduce_a[lid] = v.a;
    reduce_b[lid] = v.b;
    reduce_c[lid] = v.c;
    for (var stride = 32u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if lid < stride {
            reduce_a[lid] += reduce_a[lid + stride];
            reduce_b[lid] += reduce_b[lid + stride];
            reduce_c[lid] += reduce_c[lid + stride];
        }
    }
    workgroupBarrier();
    return Sums(reduce_a[0], reduce_b[0], reduce_c[0]);
#endif
}
