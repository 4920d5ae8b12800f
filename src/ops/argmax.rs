//! Greedy sampling on the GPU: the index of the largest logit, 4 bytes to read back
//! (`shaders/argmax.wgsl`).

use super::{Dispatch, Recorder, Step, StepBuffers};
use crate::Result;
use crate::gpu::{Activations, Bind, Defines, Gpu, Slot};

pub struct Argmax(Dispatch);

impl Argmax {
    /// Picks from the logits row of the step's last token; `logits` holds rows from `logits_from`.
    pub fn new(gpu: &Gpu, steps: &StepBuffers, logits: &Activations, result: &wgpu::Buffer) -> Result<Argmax> {
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&logits.buffer)),
            (2, Slot::ReadWrite, Bind::Buffer(result)),
        ];
        let defines = gpu.paths.defines(Defines::new()).u32("N", logits.width as u32).u32("LS", logits.stride as u32);
        Ok(Argmax(Dispatch::new(gpu, "argmax.wgsl", &defines, &binds, |_| [1, 1, 1])?))
    }
}

impl super::Op for Argmax {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.0.encode(pass, step, rec)
    }

    fn name(&self) -> String {
        "argmax".into()
    }
}

/// CPU reference: first index of the maximum, NaN never chosen.
pub fn reference(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] || logits[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    fn gpu_argmax(rows: &[f32], vocab: usize, n_tokens: u32, logits_from: u32) -> u32 {
        let g = gpu();
        let lb = g.activations_with("logits", vocab, rows).unwrap();
        let out = g.buffer_with("result", &[u32::MAX; 4]).unwrap();
        let step = Step { n_tokens, logits_from, ..Default::default() };
        let steps = step_buffers();
        let op = Argmax::new(g, &steps, &lb, &out).unwrap();
        run(&steps, &[&op], step);
        let bytes = pollster::block_on(g.read(&out, 4)).unwrap();
        u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    #[test]
    fn picks_the_first_maximum_of_the_last_row() {
        let mut rng = rng(7);
        let vocab = 49152 + 17;
        for trial in 0..4 {
            let mut rows = random_vec(3 * vocab, &mut rng);
            let last = &mut rows[2 * vocab..];
            if trial == 1 {
                // A tie: the lower index wins.
                last[1000] = 5.0;
                last[40000] = 5.0;
            }
            if trial == 2 {
                last[vocab - 1] = 9.0;
                last[0] = f32::NAN;
            }
            let want = reference(&rows[2 * vocab..]);
            assert_eq!(gpu_argmax(&rows, vocab, 3, 0) as usize, want, "trial {trial}");
            assert_eq!(gpu_argmax(&rows[vocab..], vocab, 3, 1) as usize, want, "trial {trial} with logits_from");
        }
    }
}
