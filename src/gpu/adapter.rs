//! Which adapters wgpu sees, and which one hearth opens.

use crate::{Error, Result};

/// What the user asked for: `--device INDEX|NAME-SUBSTRING`, `--backend NAME`, and the shader
/// paths: `--f16` / `--no-f16` (default: f16 arithmetic on GPUs that have it, not on CPU
/// adapters, where it measured 3.3x slower) and `--no-subgroups`.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    pub device: Option<String>,
    pub backend: Option<String>,
    /// Some(true) forces f16 arithmetic on (where the adapter has it), Some(false) off.
    pub f16: Option<bool>,
    pub no_subgroups: bool,
    /// Lower limits than the adapter's, to exercise the splitting paths on any machine:
    /// the largest storage binding (bytes) and the largest texture side.
    pub max_binding: Option<u64>,
    pub max_texture: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub index: usize,
    pub info: wgpu::AdapterInfo,
    pub f16: bool,
    pub subgroups: bool,
    pub max_binding: u64,
    pub max_buffer: u64,
    pub max_texture: u32,
    /// The shader paths hearth would run on it.
    pub paths: super::Paths,
    /// The adapter hearth picks when no --device is given.
    pub preferred: bool,
}

fn backends(choice: &AdapterChoice) -> Result<wgpu::Backends> {
    match choice.backend.as_deref() {
        None => Ok(wgpu::Backends::all().with_env()),
        Some(name) => {
            let b = match name.to_ascii_lowercase().as_str() {
                "vulkan" | "vk" => wgpu::Backends::VULKAN,
                "metal" => wgpu::Backends::METAL,
                "dx12" | "d3d12" => wgpu::Backends::DX12,
                "gl" | "gles" | "opengl" => wgpu::Backends::GL,
                other => {
                    return Err(Error::Input(format!("unknown backend {other:?}: use one of vulkan, metal, dx12, gl")));
                }
            };
            Ok(b)
        }
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Lower is preferred: discrete, integrated, virtual, then CPU adapters; native APIs before GL;
/// then the adapter with more of the shader features hearth uses.
fn preference(adapter: &wgpu::Adapter) -> (u8, u8, u8) {
    let info = adapter.get_info();
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let missing = [wgpu::Features::SHADER_F16, wgpu::Features::SUBGROUP]
        .into_iter()
        .filter(|f| !adapter.features().contains(*f))
        .count() as u8;
    (kind, u8::from(info.backend == wgpu::Backend::Gl), missing)
}

async fn adapters(choice: &AdapterChoice) -> Result<Vec<wgpu::Adapter>> {
    let wanted = backends(choice)?;
    // GL is probed only when asked for or when nothing else answers: on a headless Linux
    // machine its probe prints EGL errors ("XDG_RUNTIME_DIR is invalid") that read as failure.
    let asked = choice.backend.is_some() || std::env::var_os("WGPU_BACKEND").is_some();
    let first = if asked { wanted } else { wanted - wgpu::Backends::GL };
    let mut list = instance(first).enumerate_adapters(wgpu::Backends::all()).await;
    if list.is_empty() && first != wanted {
        list = instance(wgpu::Backends::GL).enumerate_adapters(wgpu::Backends::all()).await;
    }
    if list.is_empty() {
        #[cfg(not(target_arch = "wasm32"))]
        let advice = "Install a Vulkan driver for your GPU (or Mesa's lavapipe, package mesa-vulkan-drivers, \
                      to run on the CPU)";
        #[cfg(target_arch = "wasm32")]
        let advice = "The browser offers WebGPU but no adapter: it may have blocked your GPU or its driver \
                      (see chrome://gpu), or WebGPU needs switching on (Chromium on Linux: \
                      --enable-unsafe-webgpu)";
        return Err(Error::Gpu(format!("no GPU adapter found. {advice}")));
    }
    Ok(list)
}

pub async fn list_adapters(choice: &AdapterChoice) -> Result<Vec<AdapterSummary>> {
    let list = adapters(choice).await?;
    let best = list.iter().enumerate().min_by_key(|(_, a)| preference(a)).map(|(i, _)| i);
    Ok(list
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let limits = a.limits();
            let info = a.get_info();
            AdapterSummary {
                index,
                f16: a.features().contains(wgpu::Features::SHADER_F16),
                subgroups: a.features().contains(wgpu::Features::SUBGROUP),
                max_binding: limits.max_storage_buffer_binding_size,
                max_buffer: limits.max_buffer_size,
                max_texture: limits.max_texture_dimension_2d,
                paths: super::Paths::choose(a.features(), info.device_type, choice),
                preferred: Some(index) == best,
                info,
            }
        })
        .collect())
}

pub(super) async fn choose(choice: &AdapterChoice) -> Result<wgpu::Adapter> {
    let mut list = adapters(choice).await?;
    let Some(wanted) = choice.device.as_deref() else {
        list.sort_by_key(preference);
        let chosen = list.swap_remove(0);
        if chosen.get_info().device_type == wgpu::DeviceType::Cpu {
            log::warn!(
                "using {} ({}), a CPU adapter: no GPU adapter was found. Expect far lower speed than on a GPU; \
                 check your GPU's Vulkan/Metal/DX12 driver, and see `hearth devices`",
                chosen.get_info().name,
                chosen.get_info().backend
            );
        }
        return Ok(chosen);
    };
    if let Ok(index) = wanted.parse::<usize>() {
        let n = list.len();
        return list
            .into_iter()
            .nth(index)
            .ok_or_else(|| Error::Input(format!("--device {index}: there are {n} adapters (see `hearth devices`)")));
    }
    let needle = wanted.to_lowercase();
    list.into_iter()
        .find(|a| a.get_info().name.to_lowercase().contains(&needle))
        .ok_or_else(|| Error::Input(format!("--device {wanted:?} matches no adapter name (see `hearth devices`)")))
}

impl AdapterChoice {
    /// The choice from `HEARTH_DEVICE`, `HEARTH_BACKEND`, `HEARTH_F16`, `HEARTH_NO_F16`,
    /// `HEARTH_NO_SUBGROUPS` (as the CLI flags also default to), `HEARTH_MAX_BINDING` and
    /// `HEARTH_MAX_TEXTURE`.
    pub fn from_env() -> AdapterChoice {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let flag = |name: &str| var(name).is_some_and(|v| v != "0" && v != "false");
        let f16 = if flag("HEARTH_NO_F16") {
            Some(false)
        } else if flag("HEARTH_F16") {
            Some(true)
        } else {
            None
        };
        AdapterChoice {
            device: var("HEARTH_DEVICE"),
            backend: var("HEARTH_BACKEND"),
            f16,
            no_subgroups: flag("HEARTH_NO_SUBGROUPS"),
            max_binding: var("HEARTH_MAX_BINDING").and_then(|v| v.parse().ok()),
            max_texture: var("HEARTH_MAX_TEXTURE").and_then(|v| v.parse().ok()),
        }
    }
}
