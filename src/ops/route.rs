//! Mixture-of-experts routing on the GPU (`shaders/route.wgsl`): from each token's router
//! logits, the experts it uses and their weights, left in `RouteBuffers` for the expert
//! kernels (`ops/experts.rs`) to read. Nothing is read back.

use super::experts::RouteBuffers;
use super::{Dispatch, Op, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, Defines, Gpu, Slot};
use crate::{Error, Result};

/// How a family turns the selected logits into weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gating {
    /// The softmax over all experts, at the selected ones (Qwen 3 MoE, Mixtral).
    Softmax,
    /// The softmax over the selected logits alone (gpt-oss).
    SoftmaxSelected,
}

/// The routing rule of a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Routing {
    pub gating: Gating,
    /// The selected weights are divided by their sum (Qwen 3's `norm_topk_prob`).
    pub normalize: bool,
    /// Multiplies every weight last.
    pub scale: f32,
}

/// The most experts a token may use (the kernel keeps them in registers).
pub const MAX_USED: usize = 32;

pub struct Route(Dispatch);

impl Route {
    /// `logits` holds each token's router logits (`n_expert` wide, and then the shared
    /// expert's gate where `out` has a shared weight); `bias` is added first. Each selected
    /// expert's weight is multiplied by its `expert_scales` value last (Gemma 4's per-expert
    /// scale of its output).
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        logits: &Activations,
        bias: Option<&wgpu::Buffer>,
        routing: Routing,
        out: &RouteBuffers,
        expert_scales: Option<&wgpu::Buffer>,
    ) -> Result<Route> {
        let shared = usize::from(out.shared.is_some());
        if logits.width != out.experts + shared {
            return Err(Error::Gpu(format!("router logits of {} for {} experts", logits.width, out.experts)));
        }
        if out.used == 0 || out.used > MAX_USED.min(out.experts) {
            return Err(Error::Unsupported(format!(
                "{} experts used of {} (at most {MAX_USED})",
                out.used, logits.width
            )));
        }
        let mut binds = vec![
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&logits.buffer)),
            (2, Slot::ReadWrite, Bind::Buffer(&out.ids)),
            (3, Slot::ReadWrite, Bind::Buffer(&out.weights)),
        ];
        if let Some(b) = bias {
            binds.push((4, Slot::Read, Bind::Buffer(b)));
        }
        if let Some(w) = &out.shared {
            binds.push((5, Slot::ReadWrite, Bind::Buffer(w)));
        }
        if let Some(scales) = expert_scales {
            binds.push((6, Slot::Read, Bind::Buffer(scales)));
        }
        let defines = gpu
            .paths
            .defines(Defines::new())
            .flag("BIAS", bias.is_some())
            .flag("SELECTED", routing.gating == Gating::SoftmaxSelected)
            .flag("NORMALIZE", routing.normalize)
            .flag("SHARED", out.shared.is_some())
            .flag("EXPERT_SCALES", expert_scales.is_some())
            .u32("E", out.experts as u32)
            .u32("USED", out.used as u32)
            .u32("LS", logits.stride as u32)
            .f32("SCALE", routing.scale);
        Ok(Route(Dispatch::new(gpu, "route.wgsl", &defines, &binds, |s| [s.n_tokens.div_ceil(64), 1, 1])?))
    }
}

impl Op for Route {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.0.encode(pass, step, rec)
    }

    fn name(&self) -> String {
        "route".into()
    }
}

/// CPU reference for one token: the `used` experts of the largest logits (lower index first
/// on ties) and their weights.
pub fn reference(logits: &[f32], bias: Option<&[f32]>, used: usize, routing: Routing) -> (Vec<u32>, Vec<f32>) {
    let biased: Vec<f64> =
        logits.iter().enumerate().map(|(e, &v)| v as f64 + bias.map_or(0.0, |b| b[e] as f64)).collect();
    let mut order: Vec<usize> = (0..biased.len()).filter(|&e| !biased[e].is_nan()).collect();
    order.sort_by(|&a, &b| biased[b].total_cmp(&biased[a]).then(a.cmp(&b)));
    order.truncate(used);
    let top = biased[order[0]];
    let exps: Vec<f64> = order.iter().map(|&e| (biased[e] - top).exp()).collect();
    let total = match routing.gating {
        Gating::SoftmaxSelected => exps.iter().sum::<f64>(),
        Gating::Softmax => biased.iter().filter(|v| !v.is_nan()).map(|v| (v - top).exp()).sum(),
    };
    let mut weights: Vec<f64> = exps.iter().map(|v| v / total).collect();
    if routing.normalize {
        let sum = weights.iter().sum::<f64>().max(6.103515625e-5);
        weights.iter_mut().for_each(|w| *w /= sum);
    }
    (order.iter().map(|&e| e as u32).collect(), weights.iter().map(|&w| (w * routing.scale as f64) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    fn check(n_expert: usize, used: usize, n_tokens: usize, routing: Routing, with_bias: bool, seed: u64) {
        check_with(n_expert, used, n_tokens, routing, with_bias, false, false, seed)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_with(
        n_expert: usize,
        used: usize,
        n_tokens: usize,
        routing: Routing,
        with_bias: bool,
        shared: bool,
        with_scales: bool,
        seed: u64,
    ) {
        let mut rng = rng(seed);
        // With a shared expert, its gate's logit follows the experts'.
        let width = n_expert + usize::from(shared);
        let mut logits = random_vec(n_tokens * width, &mut rng);
        if n_tokens > 1 {
            // A tie between two experts of token 1, and a NaN that must never be chosen.
            logits[width + 3] = 4.0;
            logits[width + 1] = 4.0;
            logits[width] = f32::NAN;
        }
        let bias = random_vec(n_expert, &mut rng);
        let scales = random_vec(n_expert, &mut rng);
        let g = gpu();
        let sb = g.buffer_with("expert scales", &scales).unwrap();
        let lb = g.activations_with("router logits", width, &logits).unwrap();
        let bb = g.buffer_with("router bias", &bias).unwrap();
        let mut out = RouteBuffers::new(g, n_tokens, used, n_expert).unwrap();
        if shared {
            out = out.with_shared_gate(g, n_tokens).unwrap();
        }
        let steps = step_buffers();
        let op =
            Route::new(g, &steps, &lb, with_bias.then_some(&bb), routing, &out, with_scales.then_some(&sb)).unwrap();
        run(&steps, &[&op], Step { n_tokens: n_tokens as u32, ..Default::default() });
        let ids: Vec<u32> =
            bytemuck::cast_slice(&pollster::block_on(g.read(&out.ids, (n_tokens * used * 4) as u64)).unwrap()).to_vec();
        let weights: Vec<f32> =
            bytemuck::cast_slice(&pollster::block_on(g.read(&out.weights, (n_tokens * used * 4) as u64)).unwrap())
                .to_vec();
        for t in 0..n_tokens {
            let row = &logits[t * width..][..n_expert];
            let (want_ids, mut want_w) = reference(row, with_bias.then_some(&bias[..]), used, routing);
            if with_scales {
                want_w.iter_mut().zip(&want_ids).for_each(|(w, &id)| *w *= scales[id as usize]);
            }
            let what = format!("token {t} of {n_tokens}, {used} of {n_expert}, {routing:?}");
            assert_eq!(&ids[t * used..][..used], &want_ids[..], "{what}");
            assert_close(&weights[t * used..][..used], &want_w, 1e-5, &what);
        }
        if let Some(b) = &out.shared {
            let got: Vec<f32> =
                bytemuck::cast_slice(&pollster::block_on(g.read(b, n_tokens as u64 * 4)).unwrap()).to_vec();
            let want: Vec<f32> = (0..n_tokens).map(|t| 1.0 / (1.0 + (-logits[t * width + n_expert]).exp())).collect();
            assert_close(&got, &want, 1e-5, "shared expert weights");
        }
    }

    #[test]
    fn routes_match_the_reference_for_each_gating() {
        let qwen = Routing { gating: Gating::Softmax, normalize: true, scale: 1.0 };
        let oss = Routing { gating: Gating::SoftmaxSelected, normalize: false, scale: 1.0 };
        let scaled = Routing { gating: Gating::Softmax, normalize: false, scale: 2.5 };
        check(8, 2, 5, qwen, false, 1);
        check(128, 8, 70, qwen, false, 2);
        check(32, 4, 3, oss, true, 3);
        check(16, 16, 1, scaled, false, 4);
        check(4, 1, 1, oss, false, 5);
    }

    #[test]
    fn a_shared_expert_is_weighted_by_the_sigmoid_of_its_gate() {
        let qwen = Routing { gating: Gating::Softmax, normalize: true, scale: 1.0 };
        check_with(8, 2, 5, qwen, false, true, false, 6);
    }

    #[test]
    fn each_expert_may_scale_its_weight() {
        let gemma4 = Routing { gating: Gating::Softmax, normalize: true, scale: 1.0 };
        check_with(16, 4, 9, gemma4, false, false, true, 7);
    }

    #[test]
    fn more_experts_used_than_the_kernel_keeps_is_refused() {
        let g = gpu();
        let lb = g.activations("router logits", 1, 64).unwrap();
        let out = RouteBuffers::new(g, 1, 33, 64).unwrap();
        let routing = Routing { gating: Gating::Softmax, normalize: true, scale: 1.0 };
        let err = Route::new(g, &step_buffers(), &lb, None, routing, &out, None).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("at most 32"));
    }

    #[test]
    fn a_shared_expert_without_its_gate_logit_is_refused() {
        let g = gpu();
        let lb = g.activations("router logits", 1, 8).unwrap();
        let out = RouteBuffers::new(g, 1, 2, 8).unwrap().with_shared_gate(g, 1).unwrap();
        let routing = Routing { gating: Gating::Softmax, normalize: true, scale: 1.0 };
        let err = Route::new(g, &step_buffers(), &lb, None, routing, &out, None).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("router logits of 8 for 8 experts"));
    }
}
