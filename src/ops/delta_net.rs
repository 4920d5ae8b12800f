//! A gated delta-net layer's recurrence (Qwen 3.5's linear attention), after its fused input
//! projection and before its output projection: the short causal convolution of the query,
//! key and value channels (`shaders/ssm_conv.wgsl`), then the gated delta rule over each value
//! head's state with the gated RMSNorm of its output. Both carry the sequence's state from
//! step to step in place: the last inputs of each channel, and each head's S x S matrix.
//!
//! A one-token step (decode) updates the state directly (`shaders/delta_net.wgsl`). A longer
//! step runs the chunked form of the same recurrence: every chunk of `CHUNK` tokens solves its
//! own triangular system at once, independent of the state (`shaders/delta_chunk.wgsl`), then
//! one pass per chunk carries the state across the chunks (`shaders/delta_chunk_state.wgsl`),
//! reading it once per chunk instead of twice per token. (The one-token kernel looping over a
//! step's tokens was faster on lavapipe, but lost the state to NaNs after ~120 tokens of a
//! 128-wide head in one dispatch there, where the same tokens in shorter steps were right.)

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

/// Tokens per chunk of the chunked delta rule. Its workgroup memory grows with the square
/// (delta_chunk.wgsl's triangular system) and with 64x (delta_chunk_state.wgsl's per-lane
/// squares): 32 is the most that stays within WebGPU's 16 KiB.
pub const CHUNK: usize = 16;

/// What a gated delta-net layer computes per token between its projections: the fused input
/// projection, the convolved channels, the gated output, and the chunked rule's scratch.
pub struct DeltaBuffers {
    pub proj: Activations,
    pub mixed: Activations,
    pub out: Activations,
    chunks: wgpu::Buffer,
}

impl DeltaBuffers {
    pub fn new(gpu: &Gpu, shape: &DeltaShape, batch: usize) -> Result<DeltaBuffers> {
        Ok(DeltaBuffers {
            proj: gpu.activations("delta-net projection", batch, shape.proj_width())?,
            mixed: gpu.activations("delta-net channels", batch, shape.channels())?,
            out: gpu.activations("delta-net output", batch, shape.value_dim())?,
            chunks: gpu.buffer("delta-net chunks", Self::chunk_bytes(shape, batch))?,
        })
    }

    fn chunk_bytes(shape: &DeltaShape, batch: usize) -> u64 {
        (Self::chunk_floats(shape) * batch.div_ceil(CHUNK) * 4) as u64
    }

    /// Floats of the chunked rule's scratch per chunk of tokens: for each value head, four
    /// CHUNK x head matrices, a CHUNK x CHUNK one and the CHUNK cumulative decays.
    pub fn chunk_floats(shape: &DeltaShape) -> usize {
        shape.value_heads * (4 * CHUNK * shape.head + CHUNK * CHUNK + CHUNK)
    }

    /// The largest batch whose scratch fits one binding of `binding` bytes.
    pub fn max_batch(shape: &DeltaShape, binding: u64) -> usize {
        (binding / (Self::chunk_floats(shape) as u64 * 4)) as usize * CHUNK
    }

    /// Bytes of GPU memory for a batch of `batch` tokens (before it is allocated).
    pub fn bytes_for(shape: &DeltaShape, batch: usize) -> u64 {
        let rows = shape.proj_width() + shape.channels() + shape.value_dim();
        (batch * rows * 4) as u64 + Self::chunk_bytes(shape, batch)
    }

    pub fn bytes(&self) -> u64 {
        self.proj.buffer.size() + self.mixed.buffer.size() + self.out.buffer.size() + self.chunks.size()
    }
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
    /// One-token steps.
    rule: Dispatch,
    /// Longer steps: the chunks' triangular systems, then the state carried across them.
    solve: Dispatch,
    carry: Dispatch,
    shape: DeltaShape,
}

impl DeltaNet {
    /// Reads the fused projection's rows from `buffers.proj`; leaves the convolved channels in
    /// `buffers.mixed` and the gated, normalised output (`value_dim` per token) in `buffers.out`.
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        shape: DeltaShape,
        eps: f32,
        buffers: &DeltaBuffers,
        weights: &DeltaWeights,
        state: &DeltaState,
    ) -> Result<DeltaNet> {
        let s = shape;
        let (proj, mixed, out) = (&buffers.proj, &buffers.mixed, &buffers.out);
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
        let one_token = move |step: &Step| step.n_tokens == 1;
        let rule =
            Dispatch::new(gpu, "delta_net.wgsl", &rule_defines, &binds, move |t| [heads * one_token(t) as u32, 1, 1])?;

        let defines = rule_defines.u32("C", CHUNK as u32);
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&proj.buffer)),
            (2, Slot::Read, Bind::Buffer(&mixed.buffer)),
            (3, Slot::Read, Bind::Buffer(weights.decay)),
            (4, Slot::ReadWrite, Bind::Buffer(&buffers.chunks)),
        ];
        let solve = Dispatch::new(gpu, "delta_chunk.wgsl", &defines, &binds, move |t| {
            [heads, if one_token(t) { 0 } else { t.n_tokens.div_ceil(CHUNK as u32) }, 1]
        })?;
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&proj.buffer)),
            (2, Slot::Read, Bind::Buffer(&buffers.chunks)),
            (3, Slot::ReadWrite, Bind::Buffer(&state.matrices)),
            (4, Slot::Read, Bind::Buffer(weights.gamma)),
            (5, Slot::ReadWrite, Bind::Buffer(&out.buffer)),
        ];
        let carry = Dispatch::new(gpu, "delta_chunk_state.wgsl", &defines, &binds, move |t| {
            [heads * !one_token(t) as u32, 1, 1]
        })?;
        Ok(DeltaNet { conv, rule, solve, carry, shape })
    }
}

impl Op for DeltaNet {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.conv.encode(pass, step, rec);
        self.rule.encode(pass, step, rec);
        self.solve.encode(pass, step, rec);
        self.carry.encode(pass, step, rec);
    }

    fn name(&self) -> String {
        let s = &self.shape;
        format!("delta net {}x{} heads of {}", s.key_heads, s.value_heads, s.head)
    }
}

/// CPU reference of both kernels for `n` tokens of `proj` rows (`proj_width` each), updating
/// `conv_state` (`[channel][conv - 1]`) and `matrices` (`[value head][key i][value j]`) in place;
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
            // M[i][j] at i * head + j.
            let state = &mut matrices[h * hd * hd..(h + 1) * hd * hd];
            let mut o = vec![0.0f64; hd];
            for j in 0..hd {
                let sk: f64 = (0..hd).map(|i| g * state[i * hd + j] as f64 * key[i]).sum();
                let d = (v[j] - sk) * beta;
                for (i, &kk) in key.iter().enumerate() {
                    let m = &mut state[i * hd + j];
                    *m = (g * *m as f64 + d * kk) as f32;
                }
                o[j] = (0..hd).map(|i| state[i * hd + j] as f64 * q[i]).sum();
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

    const EPS: f32 = 1e-6;

    /// Random weights, inputs and starting state for `n` tokens; `decay_rate` scales every
    /// head's A (a large one makes each chunk's cumulative decay underflow).
    struct Case {
        shape: DeltaShape,
        proj: Vec<f32>,
        conv_weight: Vec<f32>,
        /// dt bias, then A = -exp(A_log) (a decay below 1).
        decay: Vec<f32>,
        gamma: Vec<f32>,
        conv_state: Vec<f32>,
        matrices: Vec<f32>,
    }

    impl Case {
        fn new(shape: DeltaShape, n: usize, decay_rate: f32, seed: u64) -> Case {
            let mut rng = rng(seed);
            let proj = random_vec(n * shape.proj_width(), &mut rng);
            let conv_weight = random_vec(shape.channels() * shape.conv, &mut rng);
            let mut decay = random_vec(shape.value_heads, &mut rng);
            decay.extend(random_vec(shape.value_heads, &mut rng).iter().map(|a| -a.exp() * decay_rate));
            let gamma = random_vec(shape.head, &mut rng);
            let (conv_floats, matrix_floats) = shape.state_floats();
            let conv_state = random_vec(conv_floats, &mut rng);
            let matrices = random_vec(matrix_floats, &mut rng).iter().map(|x| 0.1 * x).collect();
            Case { shape, proj, conv_weight, decay, gamma, conv_state, matrices }
        }

        /// The kernels' outputs over steps of `steps_of` tokens, and the state they leave.
        fn run_gpu(&self, steps_of: &[usize]) -> (Vec<f32>, Vec<f32>) {
            let shape = self.shape;
            let g = gpu();
            let state = DeltaState::new(g, &shape).unwrap();
            g.queue.write_buffer(&state.conv, 0, bytemuck::cast_slice(&self.conv_state));
            g.queue.write_buffer(&state.matrices, 0, bytemuck::cast_slice(&self.matrices));
            let weights = DeltaWeights {
                conv: &g.buffer_with("conv", &self.conv_weight).unwrap(),
                decay: &g.buffer_with("decay", &self.decay).unwrap(),
                gamma: &g.buffer_with("gamma", &self.gamma).unwrap(),
            };
            let batch = *steps_of.iter().max().unwrap();
            let buffers = DeltaBuffers {
                mixed: poisoned_rows(batch, shape.channels()),
                out: poisoned_rows(batch, shape.value_dim()),
                ..DeltaBuffers::new(g, &shape, batch).unwrap()
            };
            let steps = step_buffers();
            let op = DeltaNet::new(g, &steps, shape, EPS, &buffers, &weights, &state).unwrap();

            let mut got = Vec::new();
            let mut done = 0;
            for &len in steps_of {
                let rows = &self.proj[done * shape.proj_width()..(done + len) * shape.proj_width()];
                let padded: Vec<f32> = rows
                    .chunks(shape.proj_width())
                    .flat_map(|r| {
                        let mut r = r.to_vec();
                        r.resize(buffers.proj.stride, 0.0);
                        r
                    })
                    .collect();
                g.queue.write_buffer(&buffers.proj.buffer, 0, bytemuck::cast_slice(&padded));
                run(&steps, &[&op], Step { n_tokens: len as u32, pos0: done as u32, ..Default::default() });
                got.extend(read_rows(&buffers.out, len));
                done += len;
            }
            let bytes = pollster::block_on(g.read(&state.matrices, state.matrices.size())).unwrap();
            (got, bytemuck::pod_collect_to_vec(&bytes))
        }
    }

    /// Runs the kernels over steps of `steps_of` tokens and compares outputs and the final state
    /// with the reference.
    fn check(shape: DeltaShape, steps_of: &[usize], decay_rate: f32, seed: u64) {
        let mut case = Case::new(shape, steps_of.iter().sum(), decay_rate, seed);
        let (got, state_got) = case.run_gpu(steps_of);
        let c = &mut case;
        let want =
            reference(&shape, EPS, &c.proj, &c.conv_weight, &c.decay, &c.gamma, &mut c.conv_state, &mut c.matrices);
        let what = format!("{shape:?} in steps of {steps_of:?}");
        assert_close(&got, &want, 2e-4, &what);
        assert_close(&state_got, &case.matrices, 2e-4, &format!("{what}: state"));
    }

    #[test]
    fn shapes_the_kernels_cannot_run_and_mismatched_rows_are_refused() {
        let g = gpu();
        let steps = step_buffers();
        let shape = DeltaShape { key_heads: 2, value_heads: 4, head: 16, conv: 4 };
        let buffer = g.buffer_with("w", &[0.0f32; 4]).unwrap();
        let weights = DeltaWeights { conv: &buffer, decay: &buffer, gamma: &buffer };
        let state = DeltaState::new(g, &shape).unwrap();
        let new = |s: DeltaShape, buffers: &DeltaBuffers| {
            DeltaNet::new(g, &steps, s, EPS, buffers, &weights, &state).err().map(|e| e.to_string())
        };
        let buffers = DeltaBuffers::new(g, &shape, 1).unwrap();
        let odd = DeltaShape { key_heads: 3, ..shape };
        assert!(new(odd, &buffers).unwrap_or_default().contains("a delta-net layer of"));
        let short = DeltaBuffers { proj: g.activations("rows", 1, shape.proj_width() - 4).unwrap(), ..buffers };
        assert!(new(shape, &short).unwrap_or_default().contains("delta-net rows of"));
    }

    #[test]
    fn one_token_steps_carry_the_state_as_the_reference_does() {
        let shape = DeltaShape { key_heads: 2, value_heads: 4, head: 32, conv: 4 };
        check(shape, &[1, 1, 1, 1, 1], 1.0, 1);
    }

    #[test]
    fn batched_steps_equal_the_reference_token_by_token() {
        check(DeltaShape { key_heads: 2, value_heads: 2, head: 16, conv: 4 }, &[5, 3, 1], 1.0, 2);
        // Heads wider than a workgroup: two rows per lane.
        check(DeltaShape { key_heads: 1, value_heads: 2, head: 96, conv: 3 }, &[4, 1], 1.0, 3);
    }

    #[test]
    fn chunked_steps_carry_the_state_across_chunks_as_the_reference_does() {
        let shape = DeltaShape { key_heads: 2, value_heads: 4, head: 32, conv: 4 };
        // Whole and partial chunks, then a decode step from the state they leave.
        check(shape, &[2 * CHUNK + 7, 1, CHUNK], 1.0, 4);
        check(DeltaShape { key_heads: 1, value_heads: 2, head: 80, conv: 4 }, &[CHUNK + 3, 2], 1.0, 5);
        // Decays so strong that e^L underflows within a chunk.
        check(shape, &[CHUNK + 5, 1], 60.0, 6);
        // Long steps of wide heads (where lavapipe once lost the state partway through).
        check(DeltaShape { key_heads: 1, value_heads: 1, head: 128, conv: 4 }, &[300, 1], 1.0, 8);
        check(DeltaShape { key_heads: 2, value_heads: 4, head: 128, conv: 4 }, &[7 * CHUNK], 1.0, 9);
    }

    #[test]
    fn a_chunked_step_equals_the_same_tokens_one_at_a_time() {
        let shape = DeltaShape { key_heads: 1, value_heads: 2, head: 32, conv: 4 };
        let n = CHUNK + 9;
        let case = Case::new(shape, n, 1.0, 7);
        let (chunked, chunked_state) = case.run_gpu(&[n]);
        let (tokens, token_state) = case.run_gpu(&vec![1; n]);
        assert_close(&chunked, &tokens, 1e-5, "outputs of one step against one token at a time");
        assert_close(&chunked_state, &token_state, 1e-5, "states of one step against one token at a time");
    }
}
