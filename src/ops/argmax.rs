//! Greedy sampling on the GPU: the index of the largest logit of each logits row, 4 bytes a row
//! to read back (`shaders/argmax.wgsl`), among all tokens or among those a bitmask allows
//! (structured output, `grammar/`).

use super::{Dispatch, Recorder, Step, StepBuffers};
use crate::Result;
use crate::gpu::{Activations, Bind, Defines, Gpu, Slot};

pub struct Argmax(Dispatch);

impl Argmax {
    /// Picks from each logits row of the step (`logits` holds rows from `logits_from`): `result[r]`
    /// for row r. With `allowed` (a bit per token, `grammar::Constraint::allowed`, one such mask
    /// per row), only among the tokens it allows.
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        logits: &Activations,
        result: &wgpu::Buffer,
        allowed: Option<&wgpu::Buffer>,
    ) -> Result<Argmax> {
        let mut binds = vec![
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&logits.buffer)),
            (2, Slot::ReadWrite, Bind::Buffer(result)),
        ];
        binds.extend(allowed.map(|mask| (3, Slot::Read, Bind::Buffer(mask))));
        let defines = gpu
            .paths
            .defines(Defines::new())
            .u32("N", logits.width as u32)
            .u32("LS", logits.stride as u32)
            .flag("MASK", allowed.is_some())
            .u32("MW", logits.width.div_ceil(32) as u32);
        let grid = |s: &Step| [s.n_tokens.saturating_sub(s.logits_from), 1, 1];
        Ok(Argmax(Dispatch::new(gpu, "argmax.wgsl", &defines, &binds, grid)?))
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

/// CPU reference among the tokens `allowed` allows (None when it allows none).
pub fn reference_within(logits: &[f32], allowed: &[u32]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in logits.iter().enumerate() {
        if crate::grammar::is_allowed(allowed, i as u32) && !v.is_nan() && best.is_none_or(|b| v > logits[b]) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    /// The argmax of each of the step's logits rows.
    fn gpu_argmax(rows: &[f32], vocab: usize, n_tokens: u32, logits_from: u32) -> Vec<u32> {
        gpu_argmax_within(rows, vocab, n_tokens, logits_from, None)
    }

    fn gpu_argmax_within(
        rows: &[f32],
        vocab: usize,
        n_tokens: u32,
        logits_from: u32,
        mask: Option<&[u32]>,
    ) -> Vec<u32> {
        let g = gpu();
        let lb = g.activations_with("logits", vocab, rows).unwrap();
        let out = g.buffer_with("result", &[u32::MAX; 4]).unwrap();
        let mask = mask.map(|m| g.buffer_with("allowed", m).unwrap());
        let step = Step { n_tokens, logits_from, ..Default::default() };
        let steps = step_buffers();
        let op = Argmax::new(g, &steps, &lb, &out, mask.as_ref()).unwrap();
        run(&steps, &[&op], step);
        let kept = (n_tokens - logits_from) as usize;
        let bytes = pollster::block_on(g.read(&out, 16)).unwrap();
        let all: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        all[..kept].to_vec()
    }

    #[test]
    fn picks_the_first_maximum_of_each_row() {
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
            let want: Vec<u32> = rows.chunks(vocab).map(|row| reference(row) as u32).collect();
            assert_eq!(gpu_argmax(&rows, vocab, 3, 0), want, "trial {trial}");
            assert_eq!(gpu_argmax(&rows[vocab..], vocab, 3, 1), want[1..], "trial {trial} with logits_from");
            assert_eq!(gpu_argmax(&rows[2 * vocab..], vocab, 3, 2), want[2..], "trial {trial}: the last row");
        }
    }

    #[test]
    fn picks_only_among_the_tokens_a_mask_allows() {
        let mut rng = rng(11);
        let vocab = 49152 + 17;
        let rows = random_vec(2 * vocab, &mut rng);
        let last = &rows[vocab..];
        let words = vocab.div_ceil(32);
        let set = |ids: &[usize]| {
            let mut mask = vec![0u32; words];
            ids.iter().for_each(|&i| mask[i / 32] |= 1 << (i % 32));
            mask
        };
        let unmasked = reference(last);
        // Every token but the overall winner; a sparse few; the very last one alone; a
        // word's worth with one bit off; every token.
        let mut all_but_best = vec![u32::MAX; words];
        all_but_best[unmasked / 32] &= !(1 << (unmasked % 32));
        let masks = [
            all_but_best,
            set(&[3, 700, 31_000, 49_000, vocab - 2]),
            set(&[vocab - 1]),
            set(&(64..96).filter(|&i| i != 70).collect::<Vec<_>>()),
            vec![u32::MAX; words],
        ];
        for (k, mask) in masks.iter().enumerate() {
            let want = reference_within(last, mask).unwrap();
            assert!(crate::grammar::is_allowed(mask, want as u32));
            assert_eq!(gpu_argmax_within(&rows[vocab..], vocab, 2, 1, Some(mask)), [want as u32], "mask {k}");
        }
        assert_ne!(reference_within(last, &masks[0]), Some(unmasked));
    }
}
