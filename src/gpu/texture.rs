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
        let texels = self.empty_texels_in(store, label, words.len(), self.limits.max_texture_dimension_2d)?;
        self.write_texels(&texels, 0, words)?;
        Ok(texels)
    }

    /// As `texels`, with at most `max_rows` rows per layer (tests force several layers with it).
    pub fn texels_in_layers_of(&self, label: &str, words: &[u32], max_rows: u32) -> Result<Texels> {
        let texels = self.empty_texels_in(WeightStore::Texture, label, words.len(), max_rows)?;
        self.write_texels(&texels, 0, words)?;
        Ok(texels)
    }

    /// Room for `words` words of weights, zeroed, in the store `texels` would choose; filled a
    /// range at a time by `write_texels`, so a matrix never has to be on the host whole.
    pub fn empty_texels(&self, label: &str, words: usize) -> Result<Texels> {
        let store = self.store_for(self.weight_store(), label, words as u64 * 4)?;
        self.empty_texels_in(store, label, words, self.limits.max_texture_dimension_2d)
    }

    fn empty_texels_in(&self, store: WeightStore, label: &str, words: usize, max_rows: u32) -> Result<Texels> {
        let bytes = words as u64 * 4;
        if store == WeightStore::Buffer {
            return self.buffer(label, bytes).map(Texels::Buffer);
        }
        let (_, height, layers) = self.texel_shape(label, bytes, max_rows)?;
        let texture = self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width: self.texel_row(),
                height: height as u32,
                depth_or_array_layers: layers as u32,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Uint,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor {
            dimension: Some(wgpu::TextureViewDimension::D2Array),
            ..Default::default()
        });
        Ok(Texels::Texture { texture, view, height: height as u32 })
    }

    /// Writes `words` into `texels` from word `first_word` (a texel's first word); a last
    /// partial texel is zero-padded.
    pub fn write_texels(&self, texels: &Texels, first_word: usize, words: &[u32]) -> Result<()> {
        if !first_word.is_multiple_of(4) {
            return Err(Error::Gpu(format!("weights written from word {first_word}, not a texel's first")));
        }
        match texels {
            Texels::Buffer(buffer) => {
                self.queue.write_buffer(buffer, first_word as u64 * 4, bytemuck::cast_slice(words))
            }
            Texels::Texture { texture, height, .. } => {
                let whole = words.len() / 4 * 4;
                self.write_texture_texels(texture, *height, first_word / 4, &words[..whole]);
                if whole < words.len() {
                    let mut last = [0u32; 4];
                    last[..words.len() - whole].copy_from_slice(&words[whole..]);
                    self.write_texture_texels(texture, *height, (first_word + whole) / 4, &last);
                }
            }
        }
        Ok(())
    }

    /// Whole texels from texel `first` on: a partial texture row on its own, whole rows
    /// together up to the end of their layer.
    fn write_texture_texels(&self, texture: &wgpu::Texture, height: u32, first: usize, words: &[u32]) {
        let (width, height) = (self.texel_row() as usize, height as usize);
        let end = first + words.len() / 4;
        let mut t = first;
        while t < end {
            let (row, x) = (t / width, t % width);
            let (layer, y) = (row / height, row % height);
            let (w, rows) = if x > 0 || end - t < width {
                ((width - x).min(end - t), 1)
            } else {
                (width, ((end - t) / width).min(height - y))
            };
            self.queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d { x: x as u32, y: y as u32, z: layer as u32 },
                    aspect: wgpu::TextureAspect::All,
                },
                bytemuck::cast_slice(&words[(t - first) * 4..][..w * rows * 4]),
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(w as u32 * 16),
                    rows_per_image: Some(rows as u32),
                },
                wgpu::Extent3d { width: w as u32, height: rows as u32, depth_or_array_layers: 1 },
            );
            t += w * rows;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WeightStore;
    use crate::gpu::{Bind, Defines, Slot};
    use crate::ops::test_support::gpu;

    /// Uploads `texels` texels (in a texture, in layers of `max_rows` rows, or in a buffer),
    /// written `piece` words at a time (0: at once), and reads them back through the shaders'
    /// addressing.
    fn round_trip(texels: usize, store: WeightStore, max_rows: u32, piece: usize) {
        let g = gpu();
        let words: Vec<u32> = (0..4 * texels as u32).map(|i| i.wrapping_mul(2654435761)).collect();
        let t = match (store, piece) {
            (WeightStore::Texture, 0) => g.texels_in_layers_of("texels", &words, max_rows).unwrap(),
            (WeightStore::Buffer, 0) => g.texels_in(store, "texels", &words).unwrap(),
            _ => {
                let t = g.empty_texels_in(store, "texels", words.len(), max_rows).unwrap();
                for (i, chunk) in words.chunks(piece).enumerate() {
                    g.write_texels(&t, i * piece, chunk).unwrap();
                }
                t
            }
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
            round_trip(100, store, 8192, 0);
            round_trip(2048 * 5 + 17, store, 8192, 0);
        }
        // Forced small layers: the same addressing spans several array layers.
        round_trip(2048 * 5 + 17, WeightStore::Texture, 2, 0);
        round_trip(2048 * 7, WeightStore::Texture, 1, 0);
    }

    #[test]
    fn texels_written_a_range_at_a_time_read_back_as_written_whole() {
        // Pieces that start mid-row, span rows and layers, and end mid-texel.
        for piece in [4 * 1000, 4 * 2048 * 3 + 4 * 5, 4 * 7] {
            round_trip(2048 * 5 + 17, WeightStore::Texture, 2, piece);
            round_trip(2048 * 5 + 17, WeightStore::Buffer, 8192, piece);
        }
        // A last piece shorter than a texel is zero-padded, not refused.
        let g = gpu();
        let t = g.empty_texels_in(WeightStore::Texture, "texels", 6, 8192).unwrap();
        g.write_texels(&t, 4, &[1, 2]).unwrap();
        assert!(g.write_texels(&t, 2, &[1, 2]).is_err(), "a write that starts mid-texel is refused");
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
