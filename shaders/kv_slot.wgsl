// Where position `pos` lives in a layer's cache texture: slot pos % KV_SLOTS (a ring where a
// sliding-window layer keeps fewer slots than the context has positions), at row
// slot % KV_H of array layer slot / KV_H. Constants: KV_SLOTS, KV_H.

struct KvAt {
    texel_row: u32,
    layer: u32,
}

fn kv_at(pos: u32) -> KvAt {
    let slot = pos % KV_SLOTS;
    return KvAt(slot % KV_H, slot / KV_H);
}
