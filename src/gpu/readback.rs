//! Copying a buffer back to the host: through a mappable staging buffer, awaited on the map
//! callback (which also works on the web, where nothing may block).

use super::Gpu;
use crate::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

type Slot = Arc<Mutex<(Option<std::result::Result<(), wgpu::BufferAsyncError>>, Option<Waker>)>>;

struct MapFuture(Slot);

impl Future for MapFuture {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match slot.0.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A host-readable buffer of `bytes` (rounded up to 4), to copy into and read with
/// `read_staging`: sessions keep one, so reading a token back allocates nothing.
pub(super) fn staging(gpu: &Gpu, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.next_multiple_of(4).max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

pub(super) async fn read(gpu: &Gpu, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let staging = staging(gpu, "readback", bytes);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, staging.size());
    gpu.queue.submit([encoder.finish()]);
    read_staging(gpu, &staging, bytes).await
}

/// Waits for the copies already submitted into `staging` and returns its first `bytes` bytes.
pub(super) async fn read_staging(gpu: &Gpu, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let slot: Slot = Arc::new(Mutex::new((None, None)));
    let callback_slot = slot.clone();
    staging.map_async(wgpu::MapMode::Read, .., move |result| {
        let mut s = callback_slot.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = Some(result);
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    #[cfg(not(target_arch = "wasm32"))]
    gpu.wait()?;
    MapFuture(slot).await.map_err(|e| Error::Gpu(format!("reading results back from the GPU failed: {e}")))?;
    gpu.check()?;
    let data = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Gpu(format!("mapping the read-back buffer failed: {e}")))?
        .get(..bytes as usize)
        .map(|d| d.to_vec());
    staging.unmap();
    data.ok_or_else(|| Error::Gpu("short read-back".into()))
}
