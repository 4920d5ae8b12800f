//! The GPU context: adapter choice, device with the adapter's own limits, shader and pipeline
//! caches, buffer helpers and read-back.

mod activations;
mod adapter;
mod kv_texture;
mod kv_type;
mod memory;
mod readback;
pub mod shader;
mod texture;

pub use activations::{Activations, row_stride, window_bytes};
pub use adapter::{AdapterChoice, AdapterSummary, list_adapters};
pub use kv_texture::KvTexture;
pub use kv_type::{KV_BLOCK, KvType};
pub use shader::Defines;
pub use texture::{Texels, WeightStore};

use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// What kind of binding a kernel slot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    Uniform,
    /// A uniform binding of a fixed size whose offset is chosen at each dispatch.
    UniformWindow,
    /// A read-only storage binding of a fixed size whose offset is chosen at each dispatch.
    StorageWindow,
    Read,
    ReadWrite,
    /// A `texture_2d_array<u32>`.
    Texels,
    /// A `texture_2d_array<f32>` read with textureLoad.
    TextureF32,
    /// A write-only `texture_storage_2d_array<FORMAT, write>`.
    StorageTexture(wgpu::TextureFormat),
}

/// What is bound to a slot.
#[derive(Clone, Copy)]
pub enum Bind<'a> {
    Buffer(&'a wgpu::Buffer),
    /// The first `size` bytes of a buffer, moved by a dynamic offset at each dispatch.
    Window(&'a wgpu::Buffer, u64),
    Texture(&'a wgpu::TextureView),
}

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The shader paths this device runs.
    pub paths: Paths,
    pipelines: Mutex<HashMap<String, Arc<Kernel>>>,
    /// The first error the device reported outside an error scope, or its loss.
    failure: Arc<Mutex<Option<String>>>,
}

/// Which variants of the kernels a device runs: f16 arithmetic where the adapter has
/// `SHADER_F16` (otherwise f32 arithmetic on f16 data packed in u32; on CPU adapters f16 is
/// opt-in, being slower there), subgroup operations where it has `SUBGROUP` (otherwise
/// workgroup-memory reductions). Either can be switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paths {
    pub f16: bool,
    pub subgroups: bool,
}

/// See `shaders/linear.wgsl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeShape {
    Rows,
    Split,
}

impl Paths {
    /// What an adapter with `features` runs, given the user's `choice`.
    pub fn choose(features: wgpu::Features, device_type: wgpu::DeviceType, choice: &AdapterChoice) -> Paths {
        let is_cpu = device_type == wgpu::DeviceType::Cpu;
        Paths {
            f16: features.contains(wgpu::Features::SHADER_F16) && choice.f16.unwrap_or(!is_cpu),
            subgroups: features.contains(wgpu::Features::SUBGROUP) && !choice.no_subgroups,
        }
    }

    /// The preprocessor flags that select these paths.
    pub fn defines(&self, d: Defines) -> Defines {
        d.flag("F16", self.f16).flag("SUBGROUPS", self.subgroups)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} arithmetic, {} reductions",
            if self.f16 { "f16" } else { "f32" },
            if self.subgroups { "subgroup" } else { "workgroup-memory" }
        )
    }
}

/// A compiled compute pipeline and the bind group layout its bind groups are made with.
pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub label: String,
}

impl Gpu {
    /// Opens the adapter `choice` selects and creates a device with the adapter's own limits.
    pub async fn new(choice: &AdapterChoice) -> Result<Gpu> {
        let adapter = adapter::choose(choice).await?;
        let mut info = adapter.get_info();
        if info.name.is_empty() {
            // Browsers may leave the description empty.
            info.name = format!("the {} adapter", info.backend);
        }
        let mut limits = adapter.limits();
        if let Some(bytes) = choice.max_binding {
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(bytes);
        }
        if let Some(side) = choice.max_texture {
            limits.max_texture_dimension_2d = limits.max_texture_dimension_2d.min(side);
        }
        let features = adapter.features();
        let paths = Paths::choose(features, info.device_type, choice);
        // Timestamps, where the adapter has them, serve `hearth bench --profile`.
        let mut required_features = features & wgpu::Features::TIMESTAMP_QUERY;
        required_features.set(wgpu::Features::SHADER_F16, paths.f16);
        required_features.set(wgpu::Features::SUBGROUP, paths.subgroups);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("hearth"),
                required_features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("could not open {}: {e}", info.name)))?;
        // wgpu's default handler panics; record the error instead, for `check` to return.
        let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let record = |slot: &Arc<Mutex<Option<String>>>, message: String| {
            let mut first = slot.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(message);
        };
        let errors = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| record(&errors, describe(&e))));
        let lost = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            // The loss explains every error after it, so it takes the place of the first one.
            *lost.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("the device was lost ({reason:?}) {message}"));
        });
        Ok(Gpu { device, queue, info, limits, paths, pipelines: Mutex::new(HashMap::new()), failure })
    }

    /// The error the device reported since it opened (a failed allocation, the device lost),
    /// if any: once there is one, nothing the device computes can be trusted.
    pub fn check(&self) -> Result<()> {
        match self.failure.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            None => Ok(()),
            Some(message) => Err(Error::Gpu(format!("{} failed: {message}", self.info.name))),
        }
    }

    pub fn is_cpu_adapter(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The shape of the one-token matrix kernels: rows per invocation on CPU adapters, K split
    /// across a workgroup on GPUs; `HEARTH_DECODE_SHAPE=rows|split` overrides it.
    pub fn decode_shape(&self) -> DecodeShape {
        match std::env::var("HEARTH_DECODE_SHAPE").as_deref() {
            Ok("rows") => DecodeShape::Rows,
            Ok("split") => DecodeShape::Split,
            _ if self.is_cpu_adapter() => DecodeShape::Rows,
            _ => DecodeShape::Split,
        }
    }

    /// The pipeline for shader `name` with `defines` and binding `slots`, compiled once.
    pub fn kernel(&self, name: &str, defines: &Defines, slots: &[(u32, Slot)]) -> Result<Arc<Kernel>> {
        let key = format!("{name} [{}] {slots:?}", defines.key());
        if let Some(k) = self.lock_pipelines().get(&key) {
            return Ok(k.clone());
        }
        let source = shader::preprocess(name, defines)?;
        // On the web a scope's result arrives later, asynchronously: there the error goes to
        // the device's handler instead and is reported by the next `check`.
        #[cfg(not(target_arch = "wasm32"))]
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&key),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
            .iter()
            .map(|&(binding, slot)| {
                let buffer = |ty, has_dynamic_offset| wgpu::BindingType::Buffer {
                    ty,
                    has_dynamic_offset,
                    min_binding_size: None,
                };
                let ty = match slot {
                    Slot::Uniform => buffer(wgpu::BufferBindingType::Uniform, false),
                    Slot::UniformWindow => buffer(wgpu::BufferBindingType::Uniform, true),
                    Slot::StorageWindow => buffer(wgpu::BufferBindingType::Storage { read_only: true }, true),
                    Slot::Read => buffer(wgpu::BufferBindingType::Storage { read_only: true }, false),
                    Slot::ReadWrite => buffer(wgpu::BufferBindingType::Storage { read_only: false }, false),
                    Slot::Texels => wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Uint,
                        view_dimension: wgpu::TextureViewDimension::D2Array,
                        multisampled: false,
                    },
                    Slot::TextureF32 => wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2Array,
                        multisampled: false,
                    },
                    Slot::StorageTexture(format) => wgpu::BindingType::StorageTexture {
                        access: wgpu::StorageTextureAccess::WriteOnly,
                        format,
                        view_dimension: wgpu::TextureViewDimension::D2Array,
                    },
                };
                wgpu::BindGroupLayoutEntry { binding, visibility: wgpu::ShaderStages::COMPUTE, ty, count: None }
            })
            .collect();
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&key), entries: &entries });
        let pipeline_layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&key),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&key),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(err) = pollster_free_block_on(scope.pop()) {
            return Err(Error::Gpu(format!("shader {key} failed to compile: {}", describe(&err))));
        }
        let kernel = Arc::new(Kernel { pipeline, layout, label: key.clone() });
        self.lock_pipelines().insert(key, kernel.clone());
        Ok(kernel)
    }

    fn lock_pipelines(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Kernel>>> {
        self.pipelines.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn bind_group(&self, kernel: &Kernel, binds: &[(u32, Bind)]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = binds
            .iter()
            .map(|&(binding, bind)| {
                let resource = match bind {
                    Bind::Buffer(b) => b.as_entire_binding(),
                    Bind::Window(buffer, size) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: 0,
                        size: wgpu::BufferSize::new(size),
                    }),
                    Bind::Texture(view) => wgpu::BindingResource::TextureView(view),
                };
                wgpu::BindGroupEntry { binding, resource }
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&kernel.label),
            layout: &kernel.layout,
            entries: &entries,
        })
    }

    /// A zero-filled storage buffer of `bytes` (at least 16) that can be copied from and to.
    pub fn buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.checked_buffer(label, bytes, false)
    }

    fn checked_buffer(&self, label: &str, bytes: u64, uniform: bool) -> Result<wgpu::Buffer> {
        self.check_size(label, bytes)?;
        let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        if uniform {
            usage |= wgpu::BufferUsages::UNIFORM;
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(16),
            usage,
            mapped_at_creation: false,
        }))
    }

    /// A storage buffer holding `data`.
    pub fn buffer_with<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.check_size(label, bytes.len() as u64)?;
        let mut padded;
        let contents = if bytes.len() < 16 || !bytes.len().is_multiple_of(16) {
            padded = bytes.to_vec();
            padded.resize(bytes.len().max(16).next_multiple_of(16), 0);
            &padded[..]
        } else {
            bytes
        };
        Ok(self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::UNIFORM
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        }))
    }

    /// Bytes of a uniform window: what one uniform binding may hold, at most 64 KiB.
    pub fn uniform_window(&self) -> u64 {
        self.limits.max_uniform_buffer_binding_size.min(1 << 16)
    }

    /// The alignment of dynamic uniform offsets.
    pub fn uniform_align(&self) -> u32 {
        self.limits.min_uniform_buffer_offset_alignment.max(16)
    }

    pub fn uniform_buffer(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.next_multiple_of(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    fn check_size(&self, label: &str, bytes: u64) -> Result<()> {
        let max = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > max {
            return Err(Error::Gpu(format!(
                "{label} needs a {bytes}-byte buffer but {} allows at most {max} bytes per binding",
                self.info.name
            )));
        }
        Ok(())
    }

    /// Copies `bytes` bytes from the start of `buffer` back to the host.
    pub async fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        readback::read(self, buffer, bytes).await
    }

    /// A host-readable buffer of `bytes`, to keep and reuse with `read_staging`.
    pub fn staging(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        readback::staging(self, label, bytes)
    }

    /// The first `bytes` bytes of `staging`, once the copies submitted into it have run.
    pub async fn read_staging(&self, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        readback::read_staging(self, staging, bytes).await
    }

    /// Blocks until submitted work finishes (natively; a no-op on the web).
    pub fn wait(&self) -> Result<()> {
        self.check()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        self.check()
    }
}

/// What went wrong, in one line: wgpu's `Display` says only "Validation Error".
fn describe(e: &wgpu::Error) -> String {
    let text = match e {
        wgpu::Error::OutOfMemory { source } => format!("out of GPU memory ({source})"),
        wgpu::Error::Validation { description, .. } | wgpu::Error::Internal { description, .. } => description.clone(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Error scopes resolve immediately on native backends.
#[cfg(not(target_arch = "wasm32"))]
fn pollster_free_block_on<F: std::future::Future>(fut: F) -> F::Output
where
    F::Output: Default,
{
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => Default::default(),
    }
}
