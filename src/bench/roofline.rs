//! What the adapter itself can move, measured before a benchmark: the copy bandwidth of
//! `copy_buffer_to_buffer` and the streaming read bandwidth of compute shaders (the best of a
//! storage-buffer and a texture shape). On GPUs the two are close; on software adapters they
//! are far apart, and a report shows both.

use crate::gpu::{Bind, Defines, Gpu, Slot, WeightStore};
use crate::{Error, Result};
use web_time::Instant;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Roofline {
    /// Bytes read plus bytes written per second by buffer copies, in GB/s.
    pub copy_gbps: f64,
    /// Bytes read per second by the best streaming kernel, in GB/s.
    pub stream_gbps: f64,
    /// Which kernel shape that was ("storage buffer" or "texture").
    pub stream_shape: String,
    /// Fixed cost of one small dispatch, in µs.
    #[serde(default)]
    pub dispatch_us: f64,
}

const BYTES: u64 = 64 << 20;
const ROUNDS: usize = 4;
/// Measurements of each bandwidth, of which the best counts.
const ATTEMPTS: usize = 3;

fn seconds_per_round(gpu: &Gpu, mut record: impl FnMut(&mut wgpu::CommandEncoder)) -> Result<f64> {
    let run = |record: &mut dyn FnMut(&mut wgpu::CommandEncoder), rounds: usize| -> Result<f64> {
        let started = Instant::now();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        for _ in 0..rounds {
            record(&mut encoder);
        }
        gpu.queue.submit([encoder.finish()]);
        gpu.wait()?;
        Ok(started.elapsed().as_secs_f64() / rounds as f64)
    };
    run(&mut record, 1)?;
    run(&mut record, ROUNDS)
}

fn copy_gbps(gpu: &Gpu, bytes: u64) -> Result<f64> {
    let src = gpu.buffer("roofline source", bytes)?;
    let dst = gpu.buffer("roofline destination", bytes)?;
    let s = seconds_per_round(gpu, |e| e.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes))?;
    Ok(2.0 * bytes as f64 / s / 1e9)
}

/// Reads `words` through the weights' path in `store`.
fn stream_gbps(gpu: &Gpu, words: &[u32], store: WeightStore) -> Result<f64> {
    let bytes = words.len() as u64 * 4;
    let out = gpu.buffer("roofline out", 64 * 1024 * 4)?;
    let texels = gpu.texels_in(store, "roofline texels", words)?;
    let defines = texels
        .defines(Defines::new())
        .u32("WQ_H", texels.height())
        .u32("TEXEL_ROW", gpu.texel_row())
        .u32("COUNT", (bytes / 16) as u32);
    let kernel = gpu.kernel("stream.wgsl", &defines, &[(1, Slot::ReadWrite), (2, texels.slot())])?;
    let bind_group = gpu.bind_group(&kernel, &[(1, Bind::Buffer(&out)), (2, texels.bind())]);
    let s = seconds_per_round(gpu, |e| {
        let mut pass = e.begin_compute_pass(&Default::default());
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(1024, 1, 1);
    })?;
    Ok(bytes as f64 / s / 1e9)
}

/// Microseconds one near-empty dispatch costs when each writes what the next one uses, as a
/// step's kernels do. A decode step has about six dispatches per layer; on software adapters
/// this fixed cost is a large part of a token's time.
fn dispatch_us(gpu: &Gpu) -> Result<f64> {
    const DISPATCHES: usize = 100;
    let out = gpu.buffer("dispatch out", 64 * 4)?;
    let data = gpu.buffer_with("dispatch data", &[0u32; 4])?;
    let kernel = gpu.kernel(
        "stream.wgsl",
        &Defines::new().flag("W_BUFFER", true).u32("COUNT", 0),
        &[(1, Slot::ReadWrite), (2, Slot::Read)],
    )?;
    let bind_group = gpu.bind_group(&kernel, &[(1, Bind::Buffer(&out)), (2, Bind::Buffer(&data))]);
    let s = seconds_per_round(gpu, |e| {
        let mut pass = e.begin_compute_pass(&Default::default());
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        for _ in 0..DISPATCHES {
            pass.dispatch_workgroups(1, 1, 1);
        }
    })?;
    Ok(s / DISPATCHES as f64 * 1e6)
}

pub fn measure(gpu: &Gpu) -> Result<Roofline> {
    let bytes = BYTES.min(gpu.limits.max_storage_buffer_binding_size).min(gpu.limits.max_buffer_size) / 16 * 16;
    if bytes == 0 {
        return Err(Error::Gpu("no buffer size to measure bandwidth with".into()));
    }
    // A ceiling: noise (other work on the machine) only lowers a measurement, so take the best.
    let best = |measure: &dyn Fn() -> Result<f64>| -> Result<f64> {
        (0..ATTEMPTS).try_fold(0.0f64, |best, _| Ok(best.max(measure()?)))
    };
    let copy_gbps = best(&|| copy_gbps(gpu, bytes))?;
    let words: Vec<u32> = (0..(bytes / 4) as u32).map(|i| i.wrapping_mul(2654435761)).collect();
    let buffer = best(&|| stream_gbps(gpu, &words, WeightStore::Buffer))?;
    let texture = best(&|| stream_gbps(gpu, &words, WeightStore::Texture))?;
    let (stream_gbps, shape) = if texture > buffer { (texture, "texture") } else { (buffer, "storage buffer") };
    Ok(Roofline { copy_gbps, stream_gbps, stream_shape: shape.to_string(), dispatch_us: dispatch_us(gpu)? })
}
