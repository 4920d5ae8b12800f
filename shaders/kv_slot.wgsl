// Where position `pos` of sequence `seq` lives in a layer's cache texture: each sequence owns
// KV_SLOTS slots from seq * KV_SLOTS; within them, slot pos % KV_SLOTS with KV_RING (a
// sliding-window layer keeping fewer slots than the context has positions), else slot pos; slot
// s is at row s % KV_H of array layer s / KV_H. Constants: KV_SLOTS, KV_H, KV_RING.

struct KvAt {
    texel_row: u32,
    layer: u32,
}

fn kv_at(seq: u32, pos: u32) -> KvAt {
#if KV_RING
    let slot = seq * KV_SLOTS + pos % KV_SLOTS;
#else
    let slot = seq * KV_SLOTS + pos;
#endif
    return KvAt(slot % KV_H, slot / KV_H);
}
