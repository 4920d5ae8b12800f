//! Forward graphs, one file per model family. A family loads its weights and, for a session's
//! buffers, lists the ops of one forward step in order.

mod gemma3;
mod llama;

use super::config::ModelConfig;
use super::state::State;
use super::weights::WeightLoader;
use crate::gpu::Gpu;
use crate::ops::Op;
use crate::{Error, Result};

pub trait Architecture: wgpu::WasmNotSendSync {
    /// The ops of one forward step over `state`: embedding to logits.
    fn graph(&self, gpu: &Gpu, config: &ModelConfig, state: &State) -> Result<Vec<Box<dyn Op>>>;
}

pub fn load(loader: &WeightLoader, config: &ModelConfig) -> Result<Box<dyn Architecture>> {
    match config.arch.as_str() {
        "llama" => Ok(Box::new(llama::Llama::load(loader, config)?)),
        "gemma3" => Ok(Box::new(gemma3::Gemma3::load(loader, config)?)),
        other => Err(Error::Unsupported(format!("architecture {other:?} has no forward graph"))),
    }
}

/// Whether the family rotates (i, i + d/2) pairs (GPT-NeoX style) rather than neighbours.
pub fn rope_neox(arch: &str) -> bool {
    matches!(arch, "gemma3")
}

/// The RoPE base of sliding-window layers where the file does not say it.
pub fn default_rope_base_swa(arch: &str) -> Option<f32> {
    match arch {
        "gemma3" => Some(gemma3::ROPE_BASE_LOCAL),
        _ => None,
    }
}
