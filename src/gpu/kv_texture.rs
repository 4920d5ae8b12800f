//! The KV cache's textures: one layer's keys or values, a row per slot, in the format of the
//! cache's type (src/gpu/kv_type.rs); written by storage-texture stores, read by texel
//! fetches.

use super::{Bind, Defines, Gpu, KvType, Slot};
use crate::{Error, Result};

/// One layer's keys or values, stored as `kind` says (src/gpu/kv_type.rs): one row per slot,
/// slots in rows of `height` per array layer (slot `s` at row `s % height` of layer
/// `s / height`), so the context is not limited by the adapter's largest texture side; a
/// quantized type's scales in a second texture of the same shape. Position `p` is in slot
/// `p % slots` (a ring where there are fewer slots than positions: shaders/kv_slot.wgsl).
pub struct KvTexture {
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
    /// A quantized type's block scales.
    pub scales: Option<(wgpu::Texture, wgpu::TextureView)>,
    pub kind: KvType,
    pub height: u32,
    pub slots: u32,
    /// Whether positions wrap around the slots (a ring); otherwise position p is slot p.
    pub ring: bool,
}

impl KvTexture {
    pub fn bytes(&self) -> u64 {
        let size = |t: &wgpu::Texture| {
            let block = t.format().block_copy_size(None).unwrap_or(16) as u64;
            t.width() as u64 * t.height() as u64 * t.depth_or_array_layers() as u64 * block
        };
        size(&self.texture) + self.scales.as_ref().map_or(0, |(t, _)| size(t))
    }

    /// The defines shaders/kv_slot.wgsl needs to find positions in this cache (and in the
    /// other one of its layer, of the same shape), and those of its type.
    pub fn slot_defines(&self, d: Defines) -> Defines {
        self.kind.defines(d).u32("KV_SLOTS", self.slots).u32("KV_H", self.height).flag("KV_RING", self.ring)
    }

    /// This cache bound for reading at `binding`, its scales (if any) at `scale_binding`.
    pub fn read_binds(&self, binding: u32, scale_binding: u32) -> Vec<(u32, Slot, Bind<'_>)> {
        let slot = if self.kind.in_words() { Slot::Texels } else { Slot::TextureF32 };
        let mut binds = vec![(binding, slot, Bind::Texture(&self.view))];
        if let Some((_, view)) = &self.scales {
            binds.push((scale_binding, Slot::Texels, Bind::Texture(view)));
        }
        binds
    }

    /// This cache bound for writing at `binding`, its scales (if any) at `scale_binding`.
    pub fn write_binds(&self, binding: u32, scale_binding: u32) -> Vec<(u32, Slot, Bind<'_>)> {
        let mut binds = vec![(binding, Slot::StorageTexture(self.kind.format()), Bind::Texture(&self.view))];
        if let Some((_, view)) = &self.scales {
            binds.push((scale_binding, Slot::StorageTexture(wgpu::TextureFormat::R32Uint), Bind::Texture(view)));
        }
        binds
    }

    /// Records a copy of every slot into `to`, a texture of the same shape.
    pub fn copy_to(&self, encoder: &mut wgpu::CommandEncoder, to: &KvTexture) {
        encoder.copy_texture_to_texture(self.texture.as_image_copy(), to.texture.as_image_copy(), self.texture.size());
        if let (Some((from, _)), Some((into, _))) = (&self.scales, &to.scales) {
            encoder.copy_texture_to_texture(from.as_image_copy(), into.as_image_copy(), from.size());
        }
    }

    /// Records a copy of `count` slots from slot `from` into `to`'s slots from `to_slot` (a
    /// texture of the same shape; slot s is row s % height of array layer s / height), in
    /// pieces that stay within one array layer of each.
    pub fn copy_slots(&self, encoder: &mut wgpu::CommandEncoder, from: u32, to: &KvTexture, to_slot: u32, count: u32) {
        let mut pairs = vec![(&self.texture, &to.texture)];
        if let (Some((a, _)), Some((b, _))) = (&self.scales, &to.scales) {
            pairs.push((a, b));
        }
        let at = |slot: u32| wgpu::Origin3d { x: 0, y: slot % self.height, z: slot / self.height };
        let mut done = 0;
        while done < count {
            let (src, dst) = (at(from + done), at(to_slot + done));
            let rows = (count - done).min(self.height - src.y).min(self.height - dst.y);
            for (a, b) in &pairs {
                encoder.copy_texture_to_texture(
                    wgpu::TexelCopyTextureInfo { texture: a, mip_level: 0, origin: src, aspect: Default::default() },
                    wgpu::TexelCopyTextureInfo { texture: b, mip_level: 0, origin: dst, aspect: Default::default() },
                    wgpu::Extent3d { width: a.width(), height: rows, depth_or_array_layers: 1 },
                );
            }
            done += rows;
        }
    }
}

impl Gpu {
    /// A cache of `slots` positions of `n_heads` heads of `head_dim`, stored as `kind`.
    pub fn kv_texture(
        &self,
        label: &str,
        kind: KvType,
        n_heads: usize,
        head_dim: usize,
        slots: u32,
    ) -> Result<KvTexture> {
        kind.check_head(head_dim)?;
        let width = kind.texels(n_heads * head_dim);
        let scale_width = kind.scale_words(n_heads, head_dim);
        let max = self.limits.max_texture_dimension_2d;
        // At least two layers, for the GL backend (see `texels`).
        let height = slots.div_ceil(2).clamp(1, max);
        let layers = slots.div_ceil(height).max(2);
        if width.max(scale_width) > max || layers > self.limits.max_texture_array_layers {
            return Err(Error::Gpu(format!(
                "{label}: a cache of {slots} positions x {width} texels exceeds {}'s textures ({max} per side, {} layers); use a smaller --ctx",
                self.info.name, self.limits.max_texture_array_layers
            )));
        }
        let texture = |width, format| {
            let texture = self.device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d { width, height, depth_or_array_layers: layers },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING
                    | wgpu::TextureUsages::STORAGE_BINDING
                    | wgpu::TextureUsages::COPY_SRC
                    | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            });
            let view = texture.create_view(&wgpu::TextureViewDescriptor {
                dimension: Some(wgpu::TextureViewDimension::D2Array),
                ..Default::default()
            });
            (texture, view)
        };
        let (values, view) = texture(width, kind.format());
        let scales = kind.is_quantized().then(|| texture(scale_width, wgpu::TextureFormat::R32Uint));
        Ok(KvTexture { texture: values, view, scales, kind, height, slots, ring: false })
    }

    /// A cache holding `data`, a row of `n_heads * head_dim` floats per position, written from
    /// the CPU in the type's layout (for tests and benchmarks).
    pub fn kv_texture_holding(
        &self,
        label: &str,
        kind: KvType,
        n_heads: usize,
        head_dim: usize,
        data: &[f32],
    ) -> Result<KvTexture> {
        let positions = data.len() / (n_heads * head_dim).max(1);
        let kv = self.kv_texture(label, kind, n_heads, head_dim, positions as u32)?;
        let rows: Vec<(Vec<u8>, Vec<u8>)> =
            data.chunks(n_heads * head_dim).map(|r| kind.encode_row(r, head_dim)).collect();
        let fill = |texture: &wgpu::Texture, mut bytes: Vec<u8>| {
            let row_bytes = (bytes.len() / positions.max(1)) as u32;
            bytes.resize((kv.height * texture.depth_or_array_layers() * row_bytes) as usize, 0);
            let layout = wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row_bytes),
                rows_per_image: Some(kv.height),
            };
            self.queue.write_texture(texture.as_image_copy(), &bytes, layout, texture.size());
        };
        fill(&kv.texture, rows.iter().flat_map(|(v, _)| v.clone()).collect());
        if let Some((scales, _)) = &kv.scales {
            fill(scales, rows.iter().flat_map(|(_, s)| s.clone()).collect());
        }
        Ok(kv)
    }

    /// The first `positions` positions of a KV cache of heads of `head_dim`, as floats (for
    /// tests).
    pub async fn read_kv(&self, kv: &KvTexture, positions: u32, head_dim: usize) -> Result<Vec<f32>> {
        let values = self.read_texture_rows(&kv.texture, positions).await?;
        let scales = match &kv.scales {
            Some((t, _)) => self.read_texture_rows(t, positions).await?,
            None => vec![Vec::new(); values.len()],
        };
        Ok(values.iter().zip(&scales).flat_map(|(v, s)| kv.kind.decode_row(v, s, head_dim)).collect())
    }

    /// The bytes of the first `rows` rows of a (layered) texture, row by row.
    async fn read_texture_rows(&self, texture: &wgpu::Texture, rows: u32) -> Result<Vec<Vec<u8>>> {
        let (width, height, layers) = (texture.width(), texture.height(), texture.depth_or_array_layers());
        let texel = texture.format().block_copy_size(None).unwrap_or(16);
        let row_bytes = (width * texel).next_multiple_of(256);
        let staging = self.buffer("kv read-back", (row_bytes * height * layers) as u64)?;
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row_bytes),
                    rows_per_image: Some(height),
                },
            },
            texture.size(),
        );
        self.queue.submit([encoder.finish()]);
        let bytes = self.read(&staging, (row_bytes * height * layers) as u64).await?;
        Ok(bytes
            .chunks(row_bytes as usize)
            .take(rows as usize)
            .map(|r| r[..(width * texel) as usize].to_vec())
            .collect())
    }
}
