//! Moving a sequence's cached keys and values to earlier positions: what lets a conversation
//! that dropped its oldest turns keep the cache of the turns after them instead of computing
//! them again. Keys are rotated back by as many positions as they move
//! (`shaders/kv_shift.wgsl`, through a scratch texture, then copied back); values are copied.

use super::kv_write::rope_defines;
use super::{Bound, Heads, Recorder};
use crate::gpu::{Bind, Defines, Gpu, KvTexture, Slot};
use crate::{Error, Result};

/// Where a sequence's positions move: `count` of them from `from` to `to` (before it).
#[derive(Clone, Copy, Debug)]
pub struct Move {
    pub seq: u32,
    pub from: u32,
    pub to: u32,
    pub count: u32,
}

/// Records `mv` in one layer's key and value caches `k` and `v` (keys of `heads`), through
/// `scratch`, a texture of their shape; `rotation` is `rope_shift_table` of `mv.from - mv.to`.
pub fn record_move(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    heads: &Heads,
    (k, v): (&KvTexture, &KvTexture),
    scratch: &KvTexture,
    rotation: &wgpu::Buffer,
    mv: Move,
) -> Result<()> {
    if mv.to >= mv.from || mv.from + mv.count > k.slots || k.ring {
        return Err(Error::Gpu(format!("cannot move {mv:?} in a cache of {} slots", k.slots)));
    }
    if mv.count == 0 {
        return Ok(());
    }
    let defines = rope_defines(k.slot_defines(Defines::new()), heads).u32("HD", heads.head_dim as u32);
    let params = gpu.buffer_with("kv move", &[mv.seq, mv.from, mv.to, mv.count])?;
    let mut binds = vec![(0, Slot::Uniform, Bind::Buffer(&params)), (1, Slot::Read, Bind::Buffer(rotation))];
    binds.extend(k.read_binds(2, 12));
    binds.extend(scratch.write_binds(4, 7));
    let kernel = Bound::new(gpu, "kv_shift.wgsl", &defines, &binds)?;
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        let rows = mv.count.min(gpu.limits.max_compute_workgroups_per_dimension);
        kernel.dispatch(&mut pass, &[], &mut Recorder::new(gpu.uniform_align()), [heads.n_head_kv as u32, rows, 1]);
    }
    let base = mv.seq * k.slots;
    scratch.copy_slots(encoder, base + mv.to, k, base + mv.to, mv.count);
    v.copy_slots(encoder, base + mv.from, scratch, base + mv.to, mv.count);
    scratch.copy_slots(encoder, base + mv.to, v, base + mv.to, mv.count);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::KvType;
    use crate::ops::kv_write::{RopeScaling, rope_shift_table, rotate, rotate_back};
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    #[test]
    fn a_move_forward_out_of_the_cache_or_in_a_ring_is_refused() {
        let heads = Heads { n_head: 2, n_head_kv: 1, head_dim: 32, rope_dims: 32, neox: false, gated: false };
        let g = gpu();
        let cache = || g.kv_texture("kv", KvType::F32, 1, 32, 8).unwrap();
        let (k, v, scratch) = (cache(), cache(), cache());
        let table = g.buffer_with("rope shift", &rope_shift_table(2, 32, 10000.0, RopeScaling::None, &[])).unwrap();
        let mut encoder = g.device.create_command_encoder(&Default::default());
        let mut attempt = |k: &KvTexture, mv: Move| record_move(g, &mut encoder, &heads, (k, &v), &scratch, &table, mv);
        for refused in [
            Move { seq: 0, from: 2, to: 4, count: 2 },
            Move { seq: 0, from: 3, to: 3, count: 2 },
            Move { seq: 0, from: 6, to: 4, count: 3 },
        ] {
            let err = attempt(&k, refused).unwrap_err().to_string();
            assert!(err.contains("cannot move"), "{refused:?}: {err}");
        }
        let ring = KvTexture { ring: true, ..cache() };
        assert!(attempt(&ring, Move { seq: 0, from: 4, to: 2, count: 2 }).is_err(), "a ring's positions wrap");
        assert!(attempt(&k, Move { seq: 0, from: 4, to: 2, count: 2 }).is_ok());
    }

    #[test]
    fn moved_keys_turn_back_and_values_follow_within_their_sequence() {
        // Three sequences of 10 slots in a texture of 15 rows per array layer: sequence 1's
        // slots 10..20 cross from one layer into the next. Its positions 4..10 move to 1..7
        // (overlapping: each position is read before another is written there).
        let (sequences, slots, base) = (3, 10, 10000.0);
        let mv = Move { seq: 1, from: 4, to: 1, count: 6 };
        let delta = (mv.from - mv.to) as usize;
        for (seed, kind, neox, head_dim, rope_dims) in [
            (1, KvType::F32, false, 32, 32),
            (2, KvType::F16, true, 32, 24),
            (3, KvType::Q8_0, false, 64, 64),
            (4, KvType::Q4_0, true, 64, 48),
        ] {
            let heads = Heads { n_head: 4, n_head_kv: 2, head_dim, rope_dims, neox, gated: false };
            let width = heads.kv_dim();
            let mut rng = rng(seed);
            let raw = random_vec(sequences * slots * width, &mut rng);
            let values = random_vec(sequences * slots * width, &mut rng);
            let mut keys = raw.clone();
            for (slot, row) in keys.chunks_mut(width).enumerate() {
                row.chunks_mut(head_dim).for_each(|h| rotate(h, slot % slots, &heads, base));
            }
            let g = gpu();
            let holding = |data: &[f32]| {
                let t = g.kv_texture_holding("kv", kind, heads.n_head_kv, head_dim, data).unwrap();
                KvTexture { slots: slots as u32, ..t }
            };
            let (k, v) = (holding(&keys), holding(&values));
            assert_eq!(k.height, 15);
            let scratch = holding(&vec![0.0; keys.len()]);
            let table = rope_shift_table(delta, rope_dims, base, RopeScaling::None, &[]);
            let table = g.buffer_with("rope shift", &table).unwrap();
            let mut encoder = g.device.create_command_encoder(&Default::default());
            record_move(g, &mut encoder, &heads, (&k, &v), &scratch, &table, mv).unwrap();
            g.queue.submit([encoder.finish()]);

            let n = (sequences * slots) as u32;
            let (stored_k, stored_v) = (
                pollster::block_on(g.read_kv(&holding(&keys), n, head_dim)).unwrap(),
                pollster::block_on(g.read_kv(&holding(&values), n, head_dim)).unwrap(),
            );
            let got_k = pollster::block_on(g.read_kv(&k, n, head_dim)).unwrap();
            let got_v = pollster::block_on(g.read_kv(&v, n, head_dim)).unwrap();
            let what = format!("{kind:?}");
            let moved = |slot: usize| slot / slots == 1 && (1..7).contains(&(slot % slots));
            for slot in 0..sequences * slots {
                let at = slot * width..(slot + 1) * width;
                if !moved(slot) {
                    assert_eq!(got_k[at.clone()], stored_k[at.clone()], "{what}: key {slot} untouched");
                    assert_eq!(got_v[at.clone()], stored_v[at], "{what}: value {slot} untouched");
                    continue;
                }
                let source = (slot + delta) * width..(slot + delta + 1) * width;
                assert_eq!(got_v[at.clone()], stored_v[source.clone()], "{what}: value {slot}");
                // The stored key turned back, as the type stores it again.
                let mut want = stored_k[source.clone()].to_vec();
                want.chunks_mut(head_dim).for_each(|h| rotate_back(h, delta, &heads, base));
                assert_cache_holds(kind, &got_k[at.clone()], &want, head_dim, &format!("{what}: key {slot}"));
                if kind == KvType::F32 {
                    // What the key would be, computed at its new position.
                    let mut fresh = raw[source].to_vec();
                    fresh.chunks_mut(head_dim).for_each(|h| rotate(h, slot % slots, &heads, base));
                    assert_close(&got_k[at], &fresh, 1e-5, &format!("{what}: key {slot} as if fresh"));
                }
            }
        }
    }
}
