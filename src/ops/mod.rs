//! GPU kernels, one family per file, each paired with `shaders/<name>.wgsl`. Every op is bound
//! to its buffers once at load and only dispatched afterwards; each has a CPU reference and
//! randomized tests beside it.

pub mod argmax;
pub mod attention;
pub mod delta_net;
mod dispatch;
pub mod embed;
pub mod expert_sum;
pub mod experts;
pub mod kv_shift;
pub mod kv_write;
pub mod linear;
pub mod per_layer;
pub mod rms_norm;
pub mod route;
mod step;

pub(crate) use dispatch::Bound;
pub use dispatch::Dispatch;
pub use step::{Recorder, Row, Step, StepBuffers, sequence_rows};

/// Anything that records its dispatches into a step's compute pass.
pub trait Op: wgpu::WasmNotSendSync {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder);
    /// What the op is, for profiles: its kernel and the shape it computes.
    fn name(&self) -> String;
}

/// The attention geometry of one layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Heads {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    /// Leading dimensions of each head that RoPE rotates.
    pub rope_dims: usize,
    /// GPT-NeoX rotation pairs (i, i + rope_dims/2) instead of (2i, 2i + 1).
    pub neox: bool,
    /// Each query head has an output gate, after V in the Q|K|V row: attention's output is
    /// multiplied by its sigmoid.
    pub gated: bool,
}

impl Heads {
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
    /// Width of a fused Q|K|V row (and the output gates, where the heads have them).
    pub fn qkv_dim(&self) -> usize {
        self.q_dim() + 2 * self.kv_dim() + if self.gated { self.q_dim() } else { 0 }
    }
}

#[cfg(test)]
pub(crate) mod test_support;
