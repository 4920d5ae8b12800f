//! Shared pieces of the kernel tests: one GPU for the whole test process, buffers filled with
//! poison so a kernel that skips an output is caught, and a tolerance comparison.

pub use super::Op;
use super::{Heads, Step, StepBuffers};
use crate::gpu::{Activations, AdapterChoice, Gpu, KV_BLOCK, KvTexture, KvType};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use std::sync::OnceLock;

pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let choice = AdapterChoice::from_env();
        pollster::block_on(Gpu::new(&choice)).expect("the tests need a wgpu adapter (lavapipe: mesa-vulkan-drivers)")
    })
}

pub fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// Activations of `rows` x `width` holding NaN everywhere, padding included.
pub fn poisoned_rows(rows: usize, width: usize) -> Activations {
    let a = gpu().activations("poisoned", rows, width).unwrap();
    let n = (a.buffer.size() / 4) as usize;
    gpu().queue.write_buffer(&a.buffer, 0, bytemuck::cast_slice(&vec![f32::NAN; n]));
    a
}

pub fn step_buffers() -> StepBuffers {
    StepBuffers::new(gpu(), 512, 64).expect("step buffers")
}

/// Records `ops` for `step`, submits, and waits.
pub fn run(steps: &StepBuffers, ops: &[&dyn Op], step: Step) {
    let g = gpu();
    let commands = steps.record(g, ops, &step, &step.one_sequence_rows()).unwrap();
    g.queue.submit([commands]);
    g.wait().unwrap();
}

pub fn read_rows(a: &Activations, rows: usize) -> Vec<f32> {
    pollster::block_on(gpu().read_activations(a, rows)).unwrap()
}

/// Asserts |got - want| <= tol * (1 + |want|) everywhere; NaN never passes.
pub fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0.0f32, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / (1.0 + w.abs());
        assert!(err.is_finite(), "{what}: element {i} is {g}, expected {w}");
        if err > worst.0 {
            worst = (err, i);
        }
    }
    assert!(
        worst.0 <= tol,
        "{what}: element {} is {}, expected {} (relative error {:e} > {tol:e})",
        worst.1,
        got[worst.1],
        want[worst.1],
        worst.0
    );
}

/// Positions of every cache `kv_with` makes. A cache's size is compiled into the kernels that
/// read it (KV_SLOTS, KV_H), and a software adapter takes seconds per variant (a minute for
/// 512-wide heads): one size for all lets every check of one head shape share its kernels.
pub const TEST_CACHE_SLOTS: usize = 1024;

/// A KV cache of `kind` for heads of `heads.kv_dim()` holding `data` (one position per
/// `heads.kv_dim()` floats) in its first positions, zeros after them up to
/// `TEST_CACHE_SLOTS`.
pub fn kv_with(data: &[f32], kind: KvType, heads: &Heads) -> KvTexture {
    let mut padded = data.to_vec();
    assert!(
        padded.len() <= TEST_CACHE_SLOTS * heads.kv_dim(),
        "a test cache of more than {TEST_CACHE_SLOTS} positions"
    );
    padded.resize(TEST_CACHE_SLOTS * heads.kv_dim(), 0.0);
    gpu().kv_texture_holding("kv", kind, heads.n_head_kv, heads.head_dim, &padded).unwrap()
}

/// Asserts |got - want| <= tol * rms(want) everywhere: for f16 arithmetic, whose rounding is
/// relative to the size of the terms summed rather than to each result.
pub fn assert_close_to_scale(got: &[f32], want: &[f32], tol: f32, what: &str) {
    let rms = (want.iter().map(|w| w * w).sum::<f32>() / want.len().max(1) as f32).sqrt().max(1e-6);
    let scaled: Vec<f32> = got.iter().map(|g| g / rms).collect();
    let reference: Vec<f32> = want.iter().map(|w| w / rms).collect();
    // assert_close divides by 1 + |want|; on this scale that is at least 1.
    assert_close(&scaled, &reference, tol, what);
}

/// Asserts that `got`, read back from a cache of `kind` (heads of `head_dim`), holds `want` as
/// the type rounds it: each element within one rounding step (f16's last bit, a quantized
/// block's step: a value on a rounding boundary may land on either side, as the GPU's keys
/// differ from the CPU's in their last bits), and all but 1% of them exactly on the CPU's (a
/// store that rounds otherwise, e.g. toward zero, is off on half of them).
pub fn assert_cache_holds(kind: KvType, got: &[f32], want: &[f32], head_dim: usize, what: &str) {
    if kind == KvType::F32 {
        return assert_close(got, want, 1e-5, what);
    }
    let mut rounded = want.to_vec();
    kind.round_trip(&mut rounded, head_dim);
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut off = 0;
    for (g, (r, w)) in got.chunks(KV_BLOCK).zip(rounded.chunks(KV_BLOCK).zip(want.chunks(KV_BLOCK))) {
        let step = if kind.is_quantized() { kind.quantize_block(w).1.abs() } else { 0.0 };
        for (a, b) in g.iter().zip(r) {
            let bound = step.max(b.abs() / 1024.0) * 1.01 + 1e-6;
            assert!((a - b).abs() <= bound, "{what}: {a} where {b} (step {step})");
            off += usize::from((a - b).abs() > 1e-6 * (1.0 + b.abs()));
        }
    }
    assert!(off * 100 <= got.len(), "{what}: {off} of {} elements off the CPU's rounding", got.len());
}
