// Where position `pos` lives in a layer's cache texture: slot pos % KV_SLOTS with KV_RING (a
// sliding-window layer keeping fewer slots than the context has positions), else slot pos, at
// row slot % KV_H of array layer slot / KV_H. Constants: KV_SLOTS, KV_H, KV_RING.

struct KvAt {
    texel_row: u32,
    layer: u32,
}

fn kv_at(pos: u32) -> KvAt {
#if KV_RING
    let slot = pos % KV_SLOTS;
#else
    let slot = pos;
#endif
    return KvAt(slot % KV_H, slot / KV_H);
}
