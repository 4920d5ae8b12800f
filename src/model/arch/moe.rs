//! The mixture-of-experts feed-forward block any family can use: a router picks each token's
//! experts on the GPU, the experts' gate|up and down products read only those experts, and
//! their outputs, weighted by the router, join the residual stream.

use super::super::config::{Experts, ModelConfig};
use super::super::state::State;
use super::super::weights::WeightLoader;
use crate::gpu::Gpu;
use crate::ops::Op;
use crate::ops::expert_sum::ExpertSum;
use crate::ops::experts::{ExpertInput, ExpertLinear};
use crate::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::ops::route::Route;
use crate::quant::RowOrder;
use crate::{Error, Result};

pub(crate) struct ExpertFfn {
    experts: Experts,
    /// `ffn_gate_inp`: one row of router logits per expert.
    router: GpuMatrix,
    /// Each expert's gate and up rows interleaved, experts one after the other.
    gate_up: GpuMatrix,
    down: GpuMatrix,
}

impl ExpertFfn {
    pub fn load(w: &WeightLoader, c: &ModelConfig, layer: usize) -> Result<ExpertFfn> {
        let experts =
            c.experts.ok_or_else(|| Error::Unsupported("a mixture-of-experts layer without experts".into()))?;
        let n = |s: &str| format!("blk.{layer}.{s}.weight");
        let (e, ff, count) = (c.n_embd, experts.n_ff, experts.count);
        Ok(ExpertFfn {
            experts,
            router: w.matrix(&[(&n("ffn_gate_inp"), count)], e, RowOrder::Concat)?,
            gate_up: w.experts(
                &[(&n("ffn_gate_exps"), ff), (&n("ffn_up_exps"), ff)],
                count,
                e,
                RowOrder::Interleave,
            )?,
            down: w.experts(&[(&n("ffn_down_exps"), e)], count, ff, RowOrder::Concat)?,
        })
    }

    /// The block's ops: x += Σ_k w_k down_k(swiglu(gate_up_k(norm(x)))).
    pub fn ops(&self, gpu: &Gpu, s: &State, norm: (&wgpu::Buffer, f32)) -> Result<Vec<Box<dyn Op>>> {
        let x = s.experts.as_ref().ok_or_else(|| Error::Gpu("a session without expert buffers".into()))?;
        let count = self.experts.count;
        let router =
            Linear::new(gpu, &s.steps, &self.router, &s.x, &x.router, &LinearSpec::new(Some(norm), Epilogue::Store))?;
        let route = Route::new(gpu, &s.steps, &x.router, None, self.experts.routing, &x.route)?;
        let gate_up = ExpertLinear::new(
            gpu,
            &self.gate_up,
            count,
            &x.route,
            &s.x,
            ExpertInput::Token,
            &x.ffn,
            Some(norm),
            Epilogue::SwiGlu,
            None,
        )?;
        let down = ExpertLinear::new(
            gpu,
            &self.down,
            count,
            &x.route,
            &x.ffn,
            ExpertInput::Pair,
            &x.out,
            None,
            Epilogue::Store,
            None,
        )?;
        let sum = ExpertSum::new(gpu, &s.steps, &x.out, &x.route, &s.x)?;
        Ok(vec![Box::new(router), Box::new(route), Box::new(gate_up), Box::new(down), Box::new(sum)])
    }
}
