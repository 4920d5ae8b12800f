//! The mixture-of-experts output joining the residual stream: each token's expert results,
//! weighted by the router, added into x (`shaders/expert_sum.wgsl`).

use super::experts::RouteBuffers;
use super::{Dispatch, Op, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, Defines, Gpu, Slot};
use crate::{Error, Result};

pub struct ExpertSum(Dispatch);

impl ExpertSum {
    /// `y` holds one row per (token, slot) pair; `x` one per token, as does `shared`, the
    /// shared expert's output, weighted by the route's shared weights. The sum is added to `x`,
    /// or with `store` replaces it.
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        y: &Activations,
        route: &RouteBuffers,
        x: &Activations,
        shared: Option<&Activations>,
        store: bool,
    ) -> Result<ExpertSum> {
        if y.width != x.width || shared.is_some_and(|s| s.width != x.width) {
            return Err(Error::Gpu(format!("expert rows of {} into a stream of {}", y.width, x.width)));
        }
        let mut binds = vec![
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&y.buffer)),
            (2, Slot::Read, Bind::Buffer(&route.weights)),
            (3, Slot::ReadWrite, Bind::Buffer(&x.buffer)),
        ];
        let shared = match (shared, &route.shared) {
            (Some(rows), Some(weights)) => {
                binds.extend([(4, Slot::Read, Bind::Buffer(weights)), (5, Slot::Read, Bind::Buffer(&rows.buffer))]);
                Some(rows.stride)
            }
            (None, None) => None,
            _ => return Err(Error::Gpu("a shared expert's rows without its weights, or the reverse".into())),
        };
        let defines = gpu
            .paths
            .defines(Defines::new())
            .u32("E", x.width as u32)
            .u32("USED", route.used as u32)
            .u32("XS", x.stride as u32)
            .u32("YS", y.stride as u32)
            .flag("SHARED", shared.is_some())
            .flag("STORE", store)
            .u32("SS", shared.unwrap_or(0) as u32);
        let groups = x.width.div_ceil(64) as u32;
        Ok(ExpertSum(Dispatch::new(gpu, "expert_sum.wgsl", &defines, &binds, move |s| [groups, s.n_tokens, 1])?))
    }
}

impl Op for ExpertSum {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.0.encode(pass, step, rec)
    }

    fn name(&self) -> String {
        "expert sum".into()
    }
}

/// CPU reference: `x` after the weighted pair rows `y` are added, `width` values per row, and
/// each token's `shared` row weighted by its shared weight where there is one.
pub fn reference(
    x: &[f32],
    y: &[f32],
    weights: &[f32],
    used: usize,
    width: usize,
    shared: Option<(&[f32], &[f32])>,
) -> Vec<f32> {
    let mut out = x.to_vec();
    for (t, row) in out.chunks_mut(width).enumerate() {
        for (i, v) in row.iter_mut().enumerate() {
            let mut sum: f64 =
                (0..used).map(|k| weights[t * used + k] as f64 * y[(t * used + k) * width + i] as f64).sum();
            if let Some((rows, shared_weights)) = shared {
                sum += shared_weights[t] as f64 * rows[t * width + i] as f64;
            }
            *v = (*v as f64 + sum) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    fn check(width: usize, used: usize, n_tokens: usize, with_shared: bool, store: bool, seed: u64) {
        let mut rng = rng(seed);
        let x = random_vec(n_tokens * width, &mut rng);
        let y = random_vec(n_tokens * used * width, &mut rng);
        let weights = random_vec(n_tokens * used, &mut rng);
        let shared = random_vec(n_tokens * width, &mut rng);
        let shared_weights = random_vec(n_tokens, &mut rng);
        let g = gpu();
        let xb = g.activations_with("x", width, &x).unwrap();
        let yb = g.activations_with("y", width, &y).unwrap();
        let sb = g.activations_with("shared", width, &shared).unwrap();
        let mut route = RouteBuffers::new(g, n_tokens, used, 4).unwrap();
        if with_shared {
            route = route.with_shared_gate(g, n_tokens).unwrap();
        }
        g.queue.write_buffer(&route.weights, 0, bytemuck::cast_slice(&weights));
        if let Some(b) = &route.shared {
            g.queue.write_buffer(b, 0, bytemuck::cast_slice(&shared_weights));
        }
        let steps = step_buffers();
        let op = ExpertSum::new(g, &steps, &yb, &route, &xb, with_shared.then_some(&sb), store).unwrap();
        run(&steps, &[&op], Step { n_tokens: n_tokens as u32, ..Default::default() });
        let shared_ref = with_shared.then_some((&shared[..], &shared_weights[..]));
        let start = if store { vec![0.0; x.len()] } else { x };
        let want = reference(&start, &y, &weights, used, width, shared_ref);
        let what = format!("expert sum, shared expert: {with_shared}, stored: {store}");
        assert_close(&read_rows(&xb, n_tokens), &want, 1e-5, &what);
    }

    #[test]
    fn weighted_expert_rows_are_added_to_each_token() {
        check(200, 3, 5, false, false, 9);
    }

    #[test]
    fn the_weighted_sum_may_replace_the_rows_instead() {
        check(160, 4, 6, false, true, 11);
    }

    #[test]
    fn a_shared_expert_row_joins_with_its_own_weight() {
        check(96, 2, 3, true, false, 10);
    }

    #[test]
    fn a_shared_expert_needs_both_its_rows_and_its_weights() {
        let g = gpu();
        let x = g.activations("x", 1, 64).unwrap();
        let route = RouteBuffers::new(g, 1, 1, 4).unwrap();
        let err = ExpertSum::new(g, &step_buffers(), &x, &route, &x, Some(&x), false).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("shared expert's rows without its weights"));
    }
}
