//! Activation matrices: one row per token, rows padded to 64 floats so that any row can start
//! a window (dynamic offsets must be 256-byte aligned), with a window's worth of slack at the
//! end so a window starting at the last row stays inside the buffer.
//!
//! A window is what a matrix kernel binds of its input x: a uniform window (at most 64 KiB)
//! where a row fits one, or a storage window of one row where it does not, so that no width
//! is refused.

use super::Gpu;
use crate::Result;

/// Floats per row of an activation matrix `width` wide.
pub fn row_stride(width: usize) -> usize {
    width.next_multiple_of(64)
}

pub struct Activations {
    pub buffer: wgpu::Buffer,
    pub rows: usize,
    pub width: usize,
    /// Floats from one row to the next.
    pub stride: usize,
}

impl Activations {
    /// Byte offset of row `row`.
    pub fn offset(&self, row: usize) -> u64 {
        (row * self.stride * 4) as u64
    }

    /// Bytes of one row, padding included.
    pub fn row_bytes(&self) -> u64 {
        (self.stride * 4) as u64
    }

    /// Whether a row fits the adapter's uniform window.
    pub fn fits_uniform_window(&self, gpu: &Gpu) -> bool {
        self.row_bytes() <= gpu.uniform_window()
    }

    /// Rows in one window: as many as fit a uniform window, at least one.
    pub fn window_rows(&self, gpu: &Gpu) -> usize {
        (gpu.uniform_window() / self.row_bytes()).max(1) as usize
    }

    /// Bytes of one window: the uniform window, or one row where a row is wider.
    pub fn window_bytes(&self, gpu: &Gpu) -> u64 {
        window_bytes(gpu, self.row_bytes())
    }
}

/// Bytes of one window of rows of `row_bytes`: the slack an activation buffer keeps past its
/// last row, so that any row can start a window.
pub fn window_bytes(gpu: &Gpu, row_bytes: u64) -> u64 {
    gpu.uniform_window().max(row_bytes)
}

impl Gpu {
    pub fn activations(&self, label: &str, rows: usize, width: usize) -> Result<Activations> {
        let stride = row_stride(width);
        let row_bytes = (stride * 4) as u64;
        let buffer = self.checked_buffer(label, rows as u64 * row_bytes + window_bytes(self, row_bytes), true)?;
        Ok(Activations { buffer, rows, width, stride })
    }

    /// Activations filled with `data` (`rows` rows of `width`), for tests and benchmarks.
    pub fn activations_with(&self, label: &str, width: usize, data: &[f32]) -> Result<Activations> {
        let rows = data.len() / width.max(1);
        let a = self.activations(label, rows, width)?;
        let stride = a.stride;
        let mut padded = vec![0.0f32; rows * stride];
        for (r, row) in data.chunks(width).enumerate() {
            padded[r * stride..][..width].copy_from_slice(row);
        }
        self.queue.write_buffer(&a.buffer, 0, bytemuck::cast_slice(&padded));
        Ok(a)
    }

    /// Reads `rows` rows back, without their padding.
    pub async fn read_activations(&self, a: &Activations, rows: usize) -> Result<Vec<f32>> {
        let bytes = self.read(&a.buffer, a.offset(rows)).await?;
        let all: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        Ok(all.chunks(a.stride).flat_map(|r| r[..a.width].to_vec()).collect())
    }
}
