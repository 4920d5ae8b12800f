//! A gated delta-net layer's recurrence (Qwen 3.5's linear attention), after its fused input
//! projection and before its output projection: the short causal convolution of the query,
//! key and value channels (`shaders/ssm_conv.wgsl`), then the gated delta rule over each value
//! head's state with the gated RMSNorm of its output (`shaders/delta_net.wgsl`). Both carry
//! the sequence's state from step to step in place: the last inputs of each channel, and each
//! head's S x S matrix.

use super::{Dispatch, Op, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, Defines, Gpu, Slot};
use crate::{Error, Result};

/// The geometry of a gated delta-net layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaShape {
    /// Query and key heads (value heads use key head `h % key_heads`).
    pub key_heads: usize,
    pub value_heads: usize,
    /// Size of every query, key and value head (the state is head x head).
    pub head: usize,
    /// Width of the causal convolution.
    pub conv: usize,
}

impl DeltaShape {
    /// Convolved channels: queries, keys, values.
    pub fn channels(&self) -> usize {
        (2 * self.key_heads + self.value_heads) * self.head
    }
    pub fn value_dim(&self) -> usize {
        self.value_heads * self.head
    }
    /// A row of the fused input projection: the channels, the output gate z, beta and alpha.
    pub fn proj_width(&self) -> usize {
        self.channels() + self.value_dim() + 2 * self.value_heads
    }
    /// Floats of the sequence's state: the convolution's last inputs and the heads' matrices.
    pub fn state_floats(&self) -> (usize, usize) {
        (self.channels() * (self.conv - 1), self.value_heads * self.head * self.head)
    }
}

/// The per-layer parameters the recurrence reads (all f32).
pub struct DeltaWeights<'a> {
    /// `[channel][conv]`.
    pub conv: &'a wgpu::Buffer,
    /// dt bias per value head, then A (negative) per value head.
    pub decay: &'a wgpu::Buffer,
    /// The output norm's gamma, `[head]`.
    pub gamma: &'a wgpu::Buffer,
}

/// One sequence's recurrent state of one layer.
pub struct DeltaState {
    pub conv: wgpu::Buffer,
    pub matrices: wgpu::Buffer,
}

impl DeltaState {
    pub fn new(gpu: &Gpu, shape: &DeltaShape) -> Result<DeltaState> {
        let (conv, matrices) = shape.state_floats();
        Ok(DeltaState {
            conv: gpu.buffer("conv state", (conv.max(1) * 4) as u64)?,
            matrices: gpu.buffer("delta-rule state", (matrices * 4) as u64)?,
        })
    }

    pub fn bytes(&self) -> u64 {
        self.conv.size() + self.matrices.size()
    }

    /// Records a copy of this state into `to`, of the same shape.
    pub fn copy_to(&self, encoder: &mut wgpu::CommandEncoder, to: &DeltaState) {
        encoder.copy_buffer_to_buffer(&self.conv, 0, &to.conv, 0, self.conv.size());
        encoder.copy_buffer_to_buffer(&self.matrices, 0, &to.matrices, 0, self.matrices.size());
    }
}

pub struct DeltaNet {
    conv: Dispatch,
    rule: Dispatch,
    shape: DeltaShape,
}

impl DeltaNet {
    /// `proj` holds the fused projection's rows, `mixed` receives the convolved channels and
    /// `out` the gated, normalised output (`value_dim` per token).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        shape: DeltaShape,
        eps: f32,
        proj: &Activations,
        weights: &DeltaWeights,
        state: &DeltaState,
        mixed: &Activations,
        out: &Activations,
    ) -> Result<DeltaNet> {
        let s = shape;
        if s.key_heads == 0 || !s.value_heads.is_multiple_of(s.key_heads) || s.head == 0 || s.conv < 2 {
            return Err(Error::Unsupported(format!("a delta-net layer of {s:?}")));
        }
        if proj.width != s.proj_width() || mixed.width != s.channels() || out.width != s.value_dim() {
            return Err(Error::Gpu(format!(
                "delta-net rows of {}, {} and {} for {s:?}",
                proj.width, mixed.width, out.width
            )));
        }
        let conv_defines = Defines::new()
            .u32("CH", s.channels() as u32)
            .u32("K", s.conv as u32)
            .u32("PS", proj.stride as u32)
            .u32("MS", mixed.stride as u32);
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&proj.buffer)),
            (2, Slot::Read, Bind::Buffer(weights.conv)),
            (3, Slot::ReadWrite, Bind::Buffer(&state.conv)),
            (4, Slot::ReadWrite, Bind::Buffer(&mixed.buffer)),
        ];
        let groups = s.channels().div_ceil(64) as u32;
        let conv = Dispatch::new(gpu, "ssm_conv.wgsl", &conv_defines, &binds, move |_| [groups, 1, 1])?;

        let z0 = s.channels();
        let rule_defines = Defines::new()
            .u32("HK", s.key_heads as u32)
            .u32("HV", s.value_heads as u32)
            .u32("S", s.head as u32)
            .u32("PS", proj.stride as u32)
            .u32("MS", mixed.stride as u32)
            .u32("OS", out.stride as u32)
            .u32("Z0", z0 as u32)
            .u32("B0", (z0 + s.value_dim()) as u32)
            .u32("A0", (z0 + s.value_dim() + s.value_heads) as u32)
            .f32("EPS", eps)
            .u32("RPL", s.head.div_ceil(64) as u32);
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&proj.buffer)),
            (2, Slot::Read, Bind::Buffer(&mixed.buffer)),
            (3, Slot::ReadWrite, Bind::Buffer(&state.matrices)),
            (4, Slot::Read, Bind::Buffer(weights.decay)),
            (5, Slot::Read, Bind::Buffer(weights.gamma)),
            (6, Slot::ReadWrite, Bind::Buffer(&out.buffer)),
        ];
        let heads = s.value_heads as u32;
        let rule = Dispatch::new(gpu, "delta_net.wgsl", &rule_defines, &binds, move |_| [heads, 1, 1])?;
        Ok(DeltaNet { conv, rule, shape })
    }
}

impl Op for DeltaNet {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.conv.encode(pass, step, rec);
        self.rule.encode(pass, step, rec);
    }

    fn name(&self) -> String {
        let s = &self.shape;
        format!("delta net {}x{} heads of {}", s.key_heads, s.value_heads, s.head)
    }
}

/// CPU reference of both kernels for `n` tokens of `proj` rows (`proj_width` each), updating
/// `conv_state` (`[channel][conv - 1]`) and `matrices` (`[value head][row j][i]`) in place;
/// returns the output rows (`value_dim` each). `decay` is dt bias then A per value head.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    s: &DeltaShape,
    eps: f32,
    proj: &[f32],
    conv_weight: &[f32],
    decay: &[f32],
    gamma: &[f32],
    conv_state: &mut [f32],
    matrices: &mut [f32],
) -> Vec<f32> {
    let (ch, k, hd, hv) = (s.channels(), s.conv, s.head, s.value_heads);
    let width = s.proj_width();
    let mut out = Vec::new();
    for row in proj.chunks(width) {
        let mut mixed = vec![0.0f64; ch];
        for (c, m) in mixed.iter_mut().enumerate() {
            let past = &mut conv_state[c * (k - 1)..(c + 1) * (k - 1)];
            let acc: f64 = (0..k)
                .map(|j| {
                    let x = if j + 1 < k { past[j] } else { row[c] };
                    conv_weight[c * k + j] as f64 * x as f64
                })
                .sum();
            past.rotate_left(1);
            past[k - 2] = row[c];
            *m = acc / (1.0 + (-acc).exp());
        }
        let l2 = |v: &[f64]| {
            let norm = 1.0 / (v.iter().map(|x| x * x).sum::<f64>() + eps as f64).sqrt();
            v.iter().map(|x| x * norm).collect::<Vec<f64>>()
        };
        for h in 0..hv {
            let kh = h % s.key_heads;
            let q: Vec<f64> = l2(&mixed[kh * hd..(kh + 1) * hd]).iter().map(|x| x / (hd as f64).sqrt()).collect();
            let key = l2(&mixed[(s.key_heads + kh) * hd..(s.key_heads + kh + 1) * hd]);
            let v = &mixed[(2 * s.key_heads + h) * hd..(2 * s.key_heads + h + 1) * hd];
            let a = row[ch + s.value_dim() + hv + h] as f64 + decay[h] as f64;
            let softplus = if a > 20.0 { a } else { (1.0 + a.exp()).ln() };
            let g = (softplus * decay[hv + h] as f64).exp();
            let beta = 1.0 / (1.0 + (-(row[ch + s.value_dim() + h] as f64)).exp());
            let state = &mut matrices[h * hd * hd..(h + 1) * hd * hd];
            let mut o = vec![0.0f64; hd];
            for j in 0..hd {
                let r = &mut state[j * hd..(j + 1) * hd];
                let sk: f64 = r.iter().zip(&key).map(|(&m, &kk)| g * m as f64 * kk).sum();
                let d = (v[j] - sk) * beta;
                for (m, &kk) in r.iter_mut().zip(&key) {
                    *m = (g * *m as f64 + d * kk) as f32;
                }
                o[j] = r.iter().zip(&q).map(|(&m, &qq)| m as f64 * qq).sum();
            }
            let inv = 1.0 / (o.iter().map(|x| x * x).sum::<f64>() / hd as f64 + eps as f64).sqrt();
            for j in 0..hd {
                let z = row[ch + h * hd + j] as f64;
                out.push((o[j] * inv * gamma[j] as f64 * z / (1.0 + (-z).exp())) as f32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    fn check(shape: DeltaShape, steps_of: &[usize], seed: u64) {
        let eps = 1e-6;
        let n: usize = steps_of.iter().sum();
        let mut rng = rng(seed);
        let proj = random_vec(n * shape.proj_width(), &mut rng);
        let conv_weight = random_vec(shape.channels() * shape.conv, &mut rng);
        // dt bias, then A = -exp(A_log) (a decay below 1).
        let mut decay = random_vec(shape.value_heads, &mut rng);
        decay.extend(random_vec(shape.value_heads, &mut rng).iter().map(|a| -a.exp()));
        let gamma = random_vec(shape.head, &mut rng);
        let (conv_floats, matrix_floats) = shape.state_floats();
        let mut conv_state = random_vec(conv_floats, &mut rng);
        let mut matrices: Vec<f32> = random_vec(matrix_floats, &mut rng).iter().map(|x| 0.1 * x).collect();

        let g = gpu();
        let state = DeltaState::new(g, &shape).unwrap();
        g.queue.write_buffer(&state.conv, 0, bytemuck::cast_slice(&conv_state));
        g.queue.write_buffer(&state.matrices, 0, bytemuck::cast_slice(&matrices));
        let weights = DeltaWeights {
            conv: &g.buffer_with("conv", &conv_weight).unwrap(),
            decay: &g.buffer_with("decay", &decay).unwrap(),
            gamma: &g.buffer_with("gamma", &gamma).unwrap(),
        };
        let batch = *steps_of.iter().max().unwrap();
        let proj_rows = g.activations("proj", batch, shape.proj_width()).unwrap();
        let mixed = poisoned_rows(batch, shape.channels());
        let out = poisoned_rows(batch, shape.value_dim());
        let steps = step_buffers();
        let op = DeltaNet::new(g, &steps, shape, eps, &proj_rows, &weights, &state, &mixed, &out).unwrap();

        let mut got = Vec::new();
        let mut done = 0;
        for &len in steps_of {
            let rows = &proj[done * shape.proj_width()..(done + len) * shape.proj_width()];
            let padded: Vec<f32> = rows
                .chunks(shape.proj_width())
                .flat_map(|r| {
                    let mut r = r.to_vec();
                    r.resize(proj_rows.stride, 0.0);
                    r
                })
                .collect();
            g.queue.write_buffer(&proj_rows.buffer, 0, bytemuck::cast_slice(&padded));
            run(&steps, &[&op], Step { n_tokens: len as u32, pos0: done as u32, ..Default::default() });
            got.extend(read_rows(&out, len));
            done += len;
        }
        let want = reference(&shape, eps, &proj, &conv_weight, &decay, &gamma, &mut conv_state, &mut matrices);
        let what = format!("{shape:?} in steps of {steps_of:?}");
        assert_close(&got, &want, 2e-4, &what);
        let bytes = pollster::block_on(g.read(&state.matrices, state.matrices.size())).unwrap();
        let state_got: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
        assert_close(&state_got, &matrices, 2e-4, &format!("{what}: state"));
    }

    #[test]
    fn shapes_the_kernels_cannot_run_and_mismatched_rows_are_refused() {
        let g = gpu();
        let steps = step_buffers();
        let shape = DeltaShape { key_heads: 2, value_heads: 4, head: 16, conv: 4 };
        let buffer = g.buffer_with("w", &[0.0f32; 4]).unwrap();
        let weights = DeltaWeights { conv: &buffer, decay: &buffer, gamma: &buffer };
        let state = DeltaState::new(g, &shape).unwrap();
        let rows = |width| g.activations("rows", 1, width).unwrap();
        let (proj, mixed, out) = (rows(shape.proj_width()), rows(shape.channels()), rows(shape.value_dim()));
        let new = |s: DeltaShape, proj: &Activations| {
            DeltaNet::new(g, &steps, s, 1e-6, proj, &weights, &state, &mixed, &out).err().map(|e| e.to_string())
        };
        let odd = DeltaShape { key_heads: 3, ..shape };
        assert!(new(odd, &proj).unwrap_or_default().contains("a delta-net layer of"));
        let short = rows(shape.proj_width() - 4);
        assert!(new(shape, &short).unwrap_or_default().contains("delta-net rows of"));
    }

    #[test]
    fn one_token_steps_carry_the_state_as_the_reference_does() {
        let shape = DeltaShape { key_heads: 2, value_heads: 4, head: 32, conv: 4 };
        check(shape, &[1, 1, 1, 1, 1], 1);
    }

    #[test]
    fn batched_steps_equal_the_reference_token_by_token() {
        check(DeltaShape { key_heads: 2, value_heads: 2, head: 16, conv: 4 }, &[5, 3, 1], 2);
        // Heads wider than a workgroup: two rows per lane.
        check(DeltaShape { key_heads: 1, value_heads: 2, head: 96, conv: 3 }, &[4, 1], 3);
    }
}
