//! Shared pieces of the kernel tests: one GPU for the whole test process, buffers filled with
//! poison so a kernel that skips an output is caught, and a tolerance comparison.

pub use super::Op;
use super::{Step, StepBuffers};
use crate::gpu::{Activations, AdapterChoice, Gpu, KvTexture};
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

/// A KV cache texture `texels` wide holding `data` (one position per `4 * texels` floats).
pub fn kv_with(data: &[f32], texels: u32) -> KvTexture {
    let g = gpu();
    let positions = (data.len() / (4 * texels as usize)) as u32;
    let kv = g.kv_texture("kv", texels, positions).unwrap();
    let layers = kv.texture.depth_or_array_layers();
    let mut padded = data.to_vec();
    padded.resize((kv.height * layers * texels * 4) as usize, 0.0);
    g.queue.write_texture(
        kv.texture.as_image_copy(),
        bytemuck::cast_slice(&padded),
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(texels * 16), rows_per_image: Some(kv.height) },
        wgpu::Extent3d { width: texels, height: kv.height, depth_or_array_layers: layers },
    );
    kv
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
