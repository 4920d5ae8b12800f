//! The mixture-of-experts feed-forward block any family can use: a router picks each token's
//! experts on the GPU, the experts' gate|up and down products read only those experts, and
//! their outputs, weighted by the router, join the residual stream. Biases (gpt-oss's router
//! and experts) are used where the file has them, and a shared expert every token uses, gated by
//! its own row of the router (Qwen 3.5 MoE), where the file has one. Gemma 4's router reads x
//! normalised with a gamma of its own, and its experts' outputs have a scale each.

use super::super::config::{Experts, ModelConfig};
use super::super::state::State;
use super::super::weights::WeightLoader;
use super::ffn::DenseFfn;
use crate::gpu::{Activations, Gpu};
use crate::ops::Op;
use crate::ops::expert_sum::ExpertSum;
use crate::ops::experts::{ExpertGroups, ExpertInput, ExpertLinear};
use crate::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use crate::ops::route::Route;
use crate::quant::RowOrder;
use crate::{Error, Result};

pub(crate) struct ExpertFfn {
    experts: Experts,
    /// `ffn_gate_inp`: one row of router logits per expert.
    router: GpuMatrix,
    router_bias: Option<wgpu::Buffer>,
    /// Each expert's gate and up rows interleaved, experts one after the other; its bias
    /// likewise.
    gate_up: GpuMatrix,
    gate_up_bias: Option<wgpu::Buffer>,
    down: GpuMatrix,
    down_bias: Option<wgpu::Buffer>,
    /// A dense SwiGLU feed-forward every token uses beside its routed experts.
    shared: Option<Box<DenseFfn>>,
    /// The router's own norm gamma (Gemma 4: `ffn_gate_inp.scale` / sqrt(width)); else the
    /// experts' norm.
    router_norm: Option<wgpu::Buffer>,
    /// Each expert's output scale (Gemma 4's `ffn_down_exps.scale`), applied to its weight.
    expert_scales: Option<wgpu::Buffer>,
}

impl ExpertFfn {
    /// Layer `layer`'s experts.
    pub fn load(w: &WeightLoader, c: &ModelConfig, layer: usize) -> Result<ExpertFfn> {
        let experts =
            c.experts.ok_or_else(|| Error::Unsupported("a mixture-of-experts layer without experts".into()))?;
        let n = |s: &str| format!("blk.{layer}.{s}.weight");
        let b = |s: &str| format!("blk.{layer}.{s}.bias");
        let (e, ff, count) = (c.n_embd, experts.n_ff, experts.count);
        let gate_up_bias = if w.has(&b("ffn_gate_exps")) {
            let gate = w.values(&b("ffn_gate_exps"), &[ff, count])?;
            let up = w.values(&b("ffn_up_exps"), &[ff, count])?;
            let pairs: Vec<f32> = gate.iter().zip(&up).flat_map(|(&g, &u)| [g, u]).collect();
            Some(w.upload_values(&b("ffn_gate_up_exps"), &pairs)?)
        } else {
            None
        };
        let optional = |name: &str, dims: &[usize]| -> Result<Option<wgpu::Buffer>> {
            if !w.has(name) {
                return Ok(None);
            }
            Ok(Some(w.upload_values(name, &w.values(name, dims)?)?))
        };
        let (router, shared) = match experts.shared_n_ff {
            None => (w.matrix(&[(&n("ffn_gate_inp"), count)], e, RowOrder::Concat)?, None),
            Some(shared_ff) => {
                // The shared expert's gate is one more router row, after the experts'.
                let router =
                    w.matrix(&[(&n("ffn_gate_inp"), count), (&n("ffn_gate_inp_shexp"), 1)], e, RowOrder::Concat)?;
                (router, Some(Box::new(DenseFfn::load(w, c, layer, "_shexp", shared_ff)?)))
            }
        };
        let scale = |s: &str| format!("blk.{layer}.{s}.scale");
        let router_norm = if w.has(&scale("ffn_gate_inp")) {
            let root = (e as f32).sqrt();
            let gamma: Vec<f32> = w.values(&scale("ffn_gate_inp"), &[e])?.iter().map(|g| g / root).collect();
            Some(w.upload_values(&scale("ffn_gate_inp"), &gamma)?)
        } else {
            None
        };
        // Gate and up in one tensor (Gemma 4), or two.
        let gate_up = if w.has(&n("ffn_gate_up_exps")) {
            w.split_experts(&n("ffn_gate_up_exps"), 2, ff, count, e, RowOrder::Interleave)?
        } else {
            w.experts(&[(&n("ffn_gate_exps"), ff), (&n("ffn_up_exps"), ff)], count, e, RowOrder::Interleave)?
        };
        Ok(ExpertFfn {
            experts,
            router,
            shared,
            router_norm,
            expert_scales: optional(&scale("ffn_down_exps"), &[count])?,
            router_bias: optional(&b("ffn_gate_inp"), &[count])?,
            gate_up,
            gate_up_bias,
            down: w.experts(&[(&n("ffn_down_exps"), e)], count, ff, RowOrder::Concat)?,
            down_bias: optional(&b("ffn_down_exps"), &[e, count])?,
        })
    }

    /// The block's ops: x += Σ_k w_k down_k(act(gate_up_k(norm(x)))), or with `store_in` the
    /// sum stored there instead.
    pub fn ops(
        &self,
        gpu: &Gpu,
        s: &State,
        norm: (&wgpu::Buffer, f32),
        store_in: Option<&Activations>,
    ) -> Result<Vec<Box<dyn Op>>> {
        let x = s.experts.as_ref().ok_or_else(|| Error::Gpu("a session without expert buffers".into()))?;
        let router_norm = self.router_norm.as_ref().map_or(norm, |gamma| (gamma, norm.1));
        let logits = LinearSpec { f32: true, ..LinearSpec::new(Some(router_norm), Epilogue::Store) };
        let router = Linear::new(gpu, &s.steps, &self.router, &s.x, &x.router, &logits)?;
        let (bias, scales) = (self.router_bias.as_ref(), self.expert_scales.as_ref());
        let route = Route::new(gpu, &s.steps, &x.router, bias, self.experts.routing, &x.route, scales)?;
        let gated = LinearSpec { bias: self.gate_up_bias.as_ref(), ..LinearSpec::new(Some(norm), self.experts.gated) };
        let input = (&s.x, ExpertInput::Token);
        let gate_up = ExpertLinear::new(gpu, &self.gate_up, &x.route, input, &x.ffn, &gated)?;
        let store = LinearSpec { bias: self.down_bias.as_ref(), ..LinearSpec::new(None, Epilogue::Store) };
        let down = ExpertLinear::new(gpu, &self.down, &x.route, (&x.ffn, ExpertInput::Pair), &x.out, &store)?;
        // (Grouping dispatches only for a batch.)
        let groups = ExpertGroups::new(gpu, &s.steps, &x.route)?;
        let mut ops: Vec<Box<dyn Op>> =
            vec![Box::new(router), Box::new(route), Box::new(groups), Box::new(gate_up), Box::new(down)];
        if let Some(shared) = &self.shared {
            ops.extend(shared.ops(gpu, s, norm, &s.branch, Epilogue::Store)?);
        }
        let shared_rows = self.shared.as_ref().map(|_| &s.branch);
        let sum = store_in.unwrap_or(&s.x);
        ops.push(Box::new(ExpertSum::new(gpu, &s.steps, &x.out, &x.route, sum, shared_rows, store_in.is_some())?));
        Ok(ops)
    }
}
