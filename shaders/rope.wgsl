// Rotary position embedding of one element of a head vector: element `d` of a head at
// position `pos`, given the head's values through `x(d)`-style reads by the caller.
// The table holds (cos, sin) per (position, pair): `rope_cs[pos * (RD / 2) + pair]`.
// NEOX pairs elements (i, i + RD/2); otherwise (2i, 2i + 1). Constants: RD.

struct RopeTerm {
    // The element paired with d (d itself beyond the rotated dimensions).
    partner: u32,
    // d' = x[d] * c + x[partner] * s
    c: f32,
    s: f32,
}

fn rope_term(d: u32, pos: u32) -> RopeTerm {
    if d >= RD {
        return RopeTerm(d, 1.0, 0.0);
    }
#if NEOX
    let half = RD / 2u;
    let pair = d % half;
    let first = d < half;
    let partner = select(d - half, d + half, first);
#else
    let pair = d / 2u;
    let first = (d % 2u) == 0u;
    let partner = d ^ 1u;
#endif
    let cs = rope_cs[pos * (RD / 2u) + pair];
    return RopeTerm(partner, cs.x, select(cs.y, -cs.y, first));
}
