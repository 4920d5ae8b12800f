// Where position `pos` of sequence `seq` lives in a layer's cache texture: each sequence owns
// KV_SLOTS slots from seq * KV_SLOTS; within them, slot pos % KV_SLOTS with KV_RING (a
// sliding-window layer keeping fewer slots than the context has positions), else slot pos; slot
// s is at row s % KV_H of array layer s / KV_H. A quantized type's scales of a head take
// SCALE_WORDS words of its scale texture's row. Constants: KV_SLOTS, KV_H, KV_RING, HD and
// KV_QUANT.

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

#if KV_QUANT
// Scale words per head: one per two blocks of 32 (src/gpu/kv_type.rs).
const SCALE_WORDS: u32 = (HD + 63u) / 64u;
#endif
