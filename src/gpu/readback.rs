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

pub(super) async fn read(gpu: &Gpu, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let size = bytes.next_multiple_of(4).max(4);
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
    gpu.queue.submit([encoder.finish()]);

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
        .to_vec();
    staging.unmap();
    data.get(..bytes as usize).map(|d| d.to_vec()).ok_or_else(|| Error::Gpu("short read-back".into()))
}
