//! The RMSNorm that stands alone rather than fused into a matrix product
//! (`shaders/rms_norm.wgsl`): the post-norm of a block's output as it joins the residual
//! stream. (QK-norm is part of `KvWrite`.)

use super::{Dispatch, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, Defines, Gpu, Slot};
use crate::{Error, Result};

/// One dispatch of `shaders/rms_norm.wgsl`.
pub struct RmsNorm(Dispatch, &'static str);

impl RmsNorm {
    /// `x += rmsnorm(branch) * gamma` for every token of the step (a post-norm), then
    /// `x *= scale[0]` where there is a `scale` (Gemma 4's per-layer output scale).
    pub fn add_to(
        gpu: &Gpu,
        steps: &StepBuffers,
        branch: &Activations,
        gamma: &wgpu::Buffer,
        eps: f32,
        x: &Activations,
        scale: Option<&wgpu::Buffer>,
    ) -> Result<RmsNorm> {
        Self::new(gpu, steps, branch, gamma, eps, x, scale, false)
    }

    /// `x = rmsnorm(branch) * gamma` for every token of the step (Gemma 4's dense feed-forward
    /// beside its experts, normalised before their outputs join it).
    pub fn store_in(
        gpu: &Gpu,
        steps: &StepBuffers,
        branch: &Activations,
        gamma: &wgpu::Buffer,
        eps: f32,
        x: &Activations,
    ) -> Result<RmsNorm> {
        Self::new(gpu, steps, branch, gamma, eps, x, None, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        branch: &Activations,
        gamma: &wgpu::Buffer,
        eps: f32,
        x: &Activations,
        scale: Option<&wgpu::Buffer>,
        store: bool,
    ) -> Result<RmsNorm> {
        if branch.width != x.width {
            return Err(Error::Gpu(format!("adding rows of {} to rows of {}", branch.width, x.width)));
        }
        let defines = Defines::new()
            .u32("D", x.width as u32)
            .u32("SS", branch.stride as u32)
            .u32("DS", x.stride as u32)
            .f32("EPS", eps)
            .flag("SCALE", scale.is_some())
            .flag("STORE", store);
        let mut binds = vec![
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&branch.buffer)),
            (2, Slot::Read, Bind::Buffer(gamma)),
            (4, Slot::ReadWrite, Bind::Buffer(&x.buffer)),
        ];
        if let Some(scale) = scale {
            binds.push((3, Slot::Read, Bind::Buffer(scale)));
        }
        let grid = |s: &Step| [1, s.n_tokens, 1];
        let name = if store { "norm" } else { "norm+add" };
        Ok(RmsNorm(Dispatch::new(gpu, "rms_norm.wgsl", &defines, &binds, grid)?, name))
    }
}

impl super::Op for RmsNorm {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.0.encode(pass, step, rec)
    }

    fn name(&self) -> String {
        self.1.into()
    }
}

/// CPU reference: `v * gamma / rms(v)` in f64.
pub fn rms_norm(v: &[f32], gamma: &[f32], eps: f32) -> Vec<f32> {
    let ms = v.iter().map(|&a| a as f64 * a as f64).sum::<f64>() / v.len() as f64;
    let inv = 1.0 / (ms + eps as f64).sqrt();
    v.iter().zip(gamma).map(|(&a, &g)| (a as f64 * inv * g as f64) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    #[test]
    fn a_normalised_branch_is_added_to_the_residual_stream() {
        for scale in [None, Some(0.37f32)] {
            let mut rng = rng(62);
            let (n_tokens, width) = (5, 160);
            let branch = random_vec(n_tokens * width, &mut rng);
            let x = random_vec(n_tokens * width, &mut rng);
            let gamma = random_vec(width, &mut rng);
            let want: Vec<f32> = (0..n_tokens)
                .flat_map(|t| {
                    let normed = rms_norm(&branch[t * width..][..width], &gamma, 1e-6);
                    let sum = normed.into_iter().zip(&x[t * width..][..width]).map(|(n, &x)| x + n);
                    sum.map(|v| v * scale.unwrap_or(1.0)).collect::<Vec<_>>()
                })
                .collect();
            let g = gpu();
            let bb = g.activations_with("branch", width, &branch).unwrap();
            let xb = g.activations_with("x", width, &x).unwrap();
            let gb = g.buffer_with("gamma", &gamma).unwrap();
            let sb = scale.map(|s| g.buffer_with("scale", &[s]).unwrap());
            let steps = step_buffers();
            let op = RmsNorm::add_to(g, &steps, &bb, &gb, 1e-6, &xb, sb.as_ref()).unwrap();
            run(&steps, &[&op], Step { n_tokens: n_tokens as u32, ..Default::default() });
            assert_close(&read_rows(&xb, n_tokens), &want, 1e-5, &format!("norm+add, scale {scale:?}"));
        }
    }

    #[test]
    fn a_normalised_branch_may_replace_the_rows_instead() {
        let mut rng = rng(63);
        let (n_tokens, width) = (3, 96);
        let branch = random_vec(n_tokens * width, &mut rng);
        let gamma = random_vec(width, &mut rng);
        let want: Vec<f32> = branch.chunks(width).flat_map(|row| rms_norm(row, &gamma, 1e-6)).collect();
        let g = gpu();
        let bb = g.activations_with("branch", width, &branch).unwrap();
        let gb = g.buffer_with("gamma", &gamma).unwrap();
        let xb = poisoned_rows(n_tokens, width);
        let steps = step_buffers();
        let op = RmsNorm::store_in(g, &steps, &bb, &gb, 1e-6, &xb).unwrap();
        run(&steps, &[&op], Step { n_tokens: n_tokens as u32, ..Default::default() });
        assert_close(&read_rows(&xb, n_tokens), &want, 1e-5, "stored norm");
    }

    #[test]
    fn rows_of_the_wrong_width_are_refused() {
        let g = gpu();
        let gamma = g.buffer_with("gamma", &[1.0f32; 64]).unwrap();
        let steps = step_buffers();
        let (a, b) = (g.activations("branch", 1, 64).unwrap(), g.activations("x", 1, 96).unwrap());
        assert!(RmsNorm::add_to(g, &steps, &a, &gamma, 1e-6, &b, None).is_err());
    }
}
