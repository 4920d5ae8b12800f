//! Weight matrices are arrays of 16-byte texels (four u32 words), stored one of two ways
//! (`WeightStore`, chosen per adapter class): on CPU adapters in `rgba32uint` 2D array
//! textures, since there a texel fetch is a real SIMD gather while a storage-buffer load is a
//! per-lane loop (measured on lavapipe: 2.3 GB/s against 0.9 GB/s for the same matvec); on GPUs
//! in storage buffers read by 16-byte loads, the path their matrix kernels are built around
//! (no texture unit in between, no layer arithmetic, any size up to the binding limit).
//! In a texture, texel `i` sits at `(i % TEXEL_ROW, (i / TEXEL_ROW) % height)` of layer
//! `(i / TEXEL_ROW) / height`; shaders/texels.wgsl reads either store.
//!
//! The KV cache is a texture too (src/gpu/kv_texture.rs).

use super::{Bind, Defines, Gpu, Slot};
use crate::{Error, Result};

/// Texels per texture row: 32 KiB rows keep every row copy aligned.
const TEXEL_ROW: u32 = 2048;

/// Where weight texels live; `HEARTH_WEIGHTS=texture|buffer` overrides the adapter's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightStore {
    Texture,
    Buffer,
}

pub enum Texels {
    Texture {
        texture: wgpu::Texture,
        view: wgpu::TextureView,
        /// Rows per layer.
        height: u32,
    },
    Buffer(wgpu::Buffer),
}

impl Texels {
    pub fn store(&self) -> WeightStore {
        match self {
            Texels::Texture { .. } => WeightStore::Texture,
            Texels::Buffer(_) => WeightStore::Buffer,
        }
    }

    /// Rows per texture layer (1 for a buffer): the shaders' `WQ_H` / `WS_H`.
    pub fn height(&self) -> u32 {
        match self {
            Texels::Texture { height, .. } => *height,
            Texels::Buffer(_) => 1,
        }
    }

    pub fn slot(&self) -> Slot {
        match self {
            Texels::Texture { .. } => Slot::Texels,
            Texels::Buffer(_) => Slot::Read,
        }
    }

    pub fn bind(&self) -> Bind<'_> {
        match self {
            Texels::Texture { view, .. } => Bind::Texture(view),
            Texels::Buffer(b) => Bind::Buffer(b),
        }
    }

    /// The flag texels.wgsl reads buffers with (quants and scales of a matrix share a store).
    pub fn defines(&self, d: Defines) -> Defines {
        d.flag("W_BUFFER", self.store() == WeightStore::Buffer)
    }
}

impl Gpu {
    /// Textures on CPU adapters, storage buffers on GPUs (see above).
    pub fn weight_store(&self) -> WeightStore {
        match std::env::var("HEARTH_WEIGHTS").as_deref() {
            Ok("texture") => WeightStore::Texture,
            Ok("buffer") => WeightStore::Buffer,
            _ if self.is_cpu_adapter() => WeightStore::Texture,
            _ => WeightStore::Buffer,
        }
    }

    /// Texels per row of weight textures (the shaders' `TEXEL_ROW`): 2048, or the adapter's
    /// largest texture side if smaller, kept a multiple of 16 so rows stay 256-byte aligned.
    pub fn texel_row(&self) -> u32 {
        TEXEL_ROW.min(self.limits.max_texture_dimension_2d / 16 * 16).max(16)
    }

    /// Refuses `bytes` of weights that neither one storage binding (where weights live in
    /// buffers) nor one texture (its side and array layers) of this adapter can hold, from
    /// their size alone: the header check runs it before any upload.
    pub fn check_texels_fit(&self, label: &str, bytes: u64) -> Result<()> {
        self.store_for(self.weight_store(), label, bytes).map(|_| ())
    }

    /// Where `bytes` of weights go: the `preferred` store, or a texture (spread over array
    /// layers) where a buffer would exceed one storage binding.
    fn store_for(&self, preferred: WeightStore, label: &str, bytes: u64) -> Result<WeightStore> {
        if preferred == WeightStore::Buffer && self.check_size(label, bytes.next_multiple_of(16)).is_ok() {
            return Ok(WeightStore::Buffer);
        }
        self.texel_shape(label, bytes, self.limits.max_texture_dimension_2d).map(|_| WeightStore::Texture)
    }

    /// Texture rows, rows per layer and layers for `bytes`, in layers of at most `max_rows` rows.
    fn texel_shape(&self, label: &str, bytes: u64, max_rows: u32) -> Result<(u64, u64, u64)> {
        let texels = bytes.div_ceil(16).max(1);
        let rows = texels.div_ceil(self.texel_row() as u64);
        let max_rows = max_rows.clamp(1, self.limits.max_texture_dimension_2d) as u64;
        // At least two layers: the GL backend makes a one-layer texture a plain 2D texture,
        // which an array view cannot read (every fetch returns zero).
        let height = rows.div_ceil(2).min(max_rows);
        let layers = rows.div_ceil(height).max(2);
        if layers > self.limits.max_texture_array_layers as u64 {
            return Err(Error::Gpu(format!(
                "{label} needs {} bytes of texture, more than {} allows ({} layers of {max_rows} rows of {} bytes)",
                texels * 16,
                self.info.name,
                self.limits.max_texture_array_layers,
                self.texel_row() * 16
            )));
        }
        Ok((rows, height, layers))
    }

    /// `words` (four per texel, zero-padded) in this adapter's weight store (or a texture where
    /// they exceed a storage binding), laid out as above.
    pub fn texels(&self, label: &str, words: &[u32]) -> Result<Texels> {
        self.texels_in(self.store_for(self.weight_store(), label, words.len() as u64 * 4)?, label, words)
    }

    pub fn texels_in(&self, store: WeightStore, label: &str, words: &[u32]) -> Result<Texels> {
        match store {
            WeightStore::Texture => self.texels_in_layers_of(label, words, self.limits.max_texture_dimension_2d),
            WeightStore::Buffer => self.buffer_with(label, words).map(Texels::Buffer),
        }
    }

    /// As `texels`, with at most `max_rows` rows per layer (tests force several layers with it).
    pub fn texels_in_layers_of(&self, label: &str, words: &[u32], max_rows: u32) -> Result<Texels> {
        let width = self.texel_row();
        let (rows, height, layers) = self.texel_shape(label, words.len() as u64 * 4, max_rows)?;
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d { width, height: height as u32, depth_or_array_layers: layers as u32 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Uint,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let row_words = width as usize * 4;
        let mut padded = words.to_vec();
        padded.resize(rows as usize * row_words, 0);
        for layer in 0..layers {
            let first_row = (layer * height) as usize;
            let layer_rows = rows.saturating_sub(layer * height).min(height) as u32;
            if layer_rows == 0 {
                continue;
            }
            let data = &padded[first_row * row_words..][..layer_rows as usize * row_words];
            self.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d { x: 0, y: 0, z: layer as u32 },
                    aspect: wgpu::TextureAspect::All,
                },
                bytemuck::cast_slice(data),
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(width * 16),
                    rows_per_image: Some(layer_rows),
                },
                wgpu::Extent3d { width, height: layer_rows, depth_or_array_layers: 1 },
            );
        }
        let view = texture.create_view(&wgpu::TextureViewDescriptor {
            dimension: Some(wgpu::TextureViewDimension::D2Array),
            ..Default::default()
        });
        Ok(Texels::Texture { texture, view, height: height as u32 })
    }
}

#[cfg(test)]
mod tests {
    use super::WeightStore;
    use crate::gpu::{Bind, Defines, Slot};
    use crate::ops::test_support::gpu;

    /// Uploads `texels` texels (in a texture, in layers of `max_rows` rows, or in a buffer) and
    /// reads them back through the shaders' addressing.
    fn round_trip(texels: usize, store: WeightStore, max_rows: u32) {
        let g = gpu();
        let words: Vec<u32> = (0..4 * texels as u32).map(|i| i.wrapping_mul(2654435761)).collect();
        let t = match store {
            WeightStore::Texture => g.texels_in_layers_of("texels", &words, max_rows).unwrap(),
            WeightStore::Buffer => g.texels_in(store, "texels", &words).unwrap(),
        };
        let out = g.buffer("out", (words.len() * 4) as u64).unwrap();
        let defines = t
            .defines(Defines::new())
            .u32("COUNT", texels as u32)
            .u32("WQ_H", t.height())
            .u32("TEXEL_ROW", g.texel_row());
        let kernel = g.kernel("texel_copy.wgsl", &defines, &[(1, Slot::ReadWrite), (2, t.slot())]).unwrap();
        let bind_group = g.bind_group(&kernel, &[(1, Bind::Buffer(&out)), (2, t.bind())]);
        let mut encoder = g.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&kernel.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups((texels as u32).div_ceil(64), 1, 1);
        }
        g.queue.submit([encoder.finish()]);
        let got: Vec<u32> =
            bytemuck::pod_collect_to_vec(&pollster::block_on(g.read(&out, (words.len() * 4) as u64)).unwrap());
        assert_eq!(got, words, "{texels} texels in {store:?}, layers of {max_rows} rows");
    }

    #[test]
    fn texels_read_back_in_order_across_rows_and_layers() {
        for store in [WeightStore::Texture, WeightStore::Buffer] {
            round_trip(100, store, 8192);
            round_trip(2048 * 5 + 17, store, 8192);
        }
        // Forced small layers: the same addressing spans several array layers.
        round_trip(2048 * 5 + 17, WeightStore::Texture, 2);
        round_trip(2048 * 7, WeightStore::Texture, 1);
    }

    #[test]
    fn weights_beyond_one_storage_binding_go_to_a_texture() {
        use crate::gpu::{AdapterChoice, Gpu};
        let choice = AdapterChoice { max_binding: Some(64 << 10), ..AdapterChoice::from_env() };
        let small = pollster::block_on(Gpu::new(&choice)).unwrap();
        assert_eq!(small.store_for(WeightStore::Buffer, "w", 64 << 10).unwrap(), WeightStore::Buffer);
        assert_eq!(small.store_for(WeightStore::Buffer, "w", (64 << 10) + 16).unwrap(), WeightStore::Texture);
        assert_eq!(small.store_for(WeightStore::Texture, "w", 16).unwrap(), WeightStore::Texture);
        let too_big = 1u64 << 50;
        let err = small.store_for(WeightStore::Buffer, "w", too_big).unwrap_err().to_string();
        assert!(err.contains("w needs") && err.contains("bytes of texture"), "{err}");
    }
}
