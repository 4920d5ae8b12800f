//! The feed-forward blocks families share: a dense gated feed-forward (SwiGLU fused into its
//! gate|up matvec, then down), and the choice between it and a mixture of experts.

use super::moe::ExpertFfn;
use crate::Result;
use crate::gpu::{Activations, Gpu};
use crate::model::config::ModelConfig;
use crate::model::state::State;
use crate::model::weights::WeightLoader;
use crate::ops::Op;
use crate::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::quant::RowOrder;

/// Gate and up rows interleaved, so SwiGLU is fused into the matvec; then down.
pub(crate) struct DenseFfn {
    gate_up: GpuMatrix,
    down: GpuMatrix,
}

impl DenseFfn {
    /// Layer `layer`'s `ffn_gate{suffix}`, `ffn_up{suffix}` and `ffn_down{suffix}`, `n_ff` wide
    /// (without a gate tensor, as Phi 3 stores them, `ffn_up` holds gate then up).
    pub fn load(w: &WeightLoader, c: &ModelConfig, layer: usize, suffix: &str, n_ff: usize) -> Result<DenseFfn> {
        let n = |s: &str| format!("blk.{layer}.{s}{suffix}.weight");
        let e = c.n_embd;
        let gate_up = if w.has(&n("ffn_gate")) {
            w.matrix(&[(&n("ffn_gate"), n_ff), (&n("ffn_up"), n_ff)], e, RowOrder::Interleave)?
        } else {
            w.split_matrix(&n("ffn_up"), 2, n_ff, e, RowOrder::Interleave)?
        };
        Ok(DenseFfn { gate_up, down: w.matrix(&[(&n("ffn_down"), e)], n_ff, RowOrder::Concat)? })
    }

    /// out (+)= down(swiglu(gate_up(norm(x)))), through `State::ffn`; `epilogue` is Add or Store.
    pub fn ops(
        &self,
        gpu: &Gpu,
        s: &State,
        norm: (&wgpu::Buffer, f32),
        out: &Activations,
        epilogue: Epilogue,
    ) -> Result<[Box<dyn Op>; 2]> {
        let gated = LinearSpec::new(Some(norm), Epilogue::SwiGlu);
        let ffn = s.ffn_rows(self.down.cols)?;
        Ok([
            Box::new(Linear::new(gpu, &s.steps, &self.gate_up, &s.x, &ffn, &gated)?),
            Box::new(Linear::new(gpu, &s.steps, &self.down, &ffn, out, &LinearSpec::new(None, epilogue))?),
        ])
    }
}

/// A layer's feed-forward: dense, or a mixture of experts where the family routes.
pub(crate) enum Ffn {
    Dense(DenseFfn),
    Experts(Box<ExpertFfn>),
}

impl Ffn {
    pub fn load(w: &WeightLoader, c: &ModelConfig, layer: usize) -> Result<Ffn> {
        Ok(match c.experts {
            Some(_) => Ffn::Experts(Box::new(ExpertFfn::load(w, c, layer)?)),
            None => Ffn::Dense(DenseFfn::load(w, c, layer, "", c.ffn_width(layer))?),
        })
    }

    /// The block's ops: x += ffn(norm(x)).
    pub fn ops(&self, gpu: &Gpu, s: &State, norm: (&wgpu::Buffer, f32)) -> Result<Vec<Box<dyn Op>>> {
        match self {
            Ffn::Dense(dense) => Ok(dense.ops(gpu, s, norm, &s.x, Epilogue::Add)?.into()),
            Ffn::Experts(experts) => experts.ops(gpu, s, norm, None),
        }
    }
}
