//! Resolving `--model` and loading it onto the chosen adapter, with what the user should see.

use super::{GpuArgs, ModelArgs};
use hearth::gpu::Gpu;
use hearth::model::hf::LOAD_TYPES;
use hearth::model::{Model, ModelFile};
use hearth::pull::{BarProgress, resolve_model};
use hearth::quant::GgmlType;
use hearth::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// The model file `--model` names, fetched into the cache first when needed.
pub fn model_path(args: &ModelArgs) -> Result<PathBuf> {
    resolve_model(args.model.as_deref(), true, &BarProgress::new())
}

pub fn open_file(args: &ModelArgs) -> Result<(PathBuf, ModelFile)> {
    let quant = args.quant.as_deref().map(|q| GgmlType::parse_among(q, &LOAD_TYPES, "--quant")).transpose()?;
    let path = model_path(args)?;
    let file = ModelFile::open_as(&path, quant)?;
    Ok((path, file))
}

pub fn gpu(args: &GpuArgs) -> Result<Arc<Gpu>> {
    let gpu = pollster::block_on(Gpu::new(&args.choice()))?;
    log::info!("adapter: {} ({}, {:?})", gpu.info.name, gpu.info.backend, gpu.info.device_type);
    Ok(Arc::new(gpu))
}

pub struct Loaded {
    pub model: Arc<Model>,
    pub seconds: f64,
}

/// Opens the model file and uploads it to the adapter.
pub fn load(model: &ModelArgs, gpu_args: &GpuArgs) -> Result<Loaded> {
    let (path, file) = open_file(model)?;
    load_file(&path, &file, gpu_args)
}

/// Uploads an open model file to the adapter.
pub fn load_file(path: &std::path::Path, file: &ModelFile, gpu_args: &GpuArgs) -> Result<Loaded> {
    let started = std::time::Instant::now();
    let gpu = gpu(gpu_args)?;
    let model = Model::load(gpu, file).map_err(|e| match e {
        Error::Unsupported(m) => Error::Unsupported(format!("{}: {m}", path.display())),
        other => other,
    })?;
    Ok(Loaded { model: Arc::new(model), seconds: started.elapsed().as_secs_f64() })
}
