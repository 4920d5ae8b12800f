//! Token embedding: one dequantized row of the embedding matrix per token, times a constant
//! (`shaders/embed.wgsl`).

use super::linear::GpuMatrix;
use super::{Dispatch, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, Defines, Gpu, Slot};
use crate::{Error, Result};

pub struct Embed(Dispatch);

impl Embed {
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        table: &GpuMatrix,
        ids: &wgpu::Buffer,
        out: &Activations,
        scale: f32,
    ) -> Result<Embed> {
        if out.width != table.cols {
            return Err(Error::Gpu(format!("embedding rows of {} into activations of {}", table.cols, out.width)));
        }
        let part = table.single_part()?;
        let mut binds = part.bindings();
        binds.extend([
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(ids)),
            (3, Slot::ReadWrite, Bind::Buffer(&out.buffer)),
        ]);
        let defines = part.defines(gpu, table.cols, Defines::new()).u32("YS", out.stride as u32).f32("SCALE", scale);
        let blocks = (table.cols / 32) as u32;
        let grid = move |s: &Step| [(s.n_tokens * blocks).div_ceil(64), 1, 1];
        Ok(Embed(Dispatch::new(gpu, "embed.wgsl", &defines, &binds, grid)?))
    }
}

impl super::Op for Embed {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.0.encode(pass, step, rec)
    }

    fn name(&self) -> String {
        "embed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_tensor;
    use crate::quant::{RowOrder, SourceRows, pack};
    use rand::RngExt;

    #[test]
    fn rows_match_the_packed_table() {
        for (i, ty) in crate::quant::layout::SUPPORTED_TYPES.into_iter().enumerate() {
            let mut rng = rng(i as u64);
            let (vocab, dim) = (300, 96usize.next_multiple_of(ty.block_elements() as usize));
            let bytes = random_tensor(ty, vocab, dim, &mut rng);
            let packed = pack(&[SourceRows { ty, bytes: &bytes, rows: vocab }], dim, RowOrder::Concat).unwrap();
            let ids: Vec<u32> = (0..5).map(|_| rng.random_range(0..vocab as u32)).collect();
            // Rows as the layout holds them (its own tests tie it to each format's definition).
            let want: Vec<f32> =
                ids.iter().flat_map(|&id| (0..dim).map(|c| packed.get(id as usize, c)).collect::<Vec<_>>()).collect();

            let g = gpu();
            let m = GpuMatrix::upload(g, "embd", &packed).unwrap();
            let idb = g.buffer_with("ids", &ids).unwrap();
            let out = poisoned_rows(ids.len(), dim);
            let step = Step { n_tokens: ids.len() as u32, ..Default::default() };
            let steps = step_buffers();
            // Gemma scales its embeddings; a power of two keeps the comparison exact.
            let scale = if i % 2 == 0 { 1.0 } else { 4.0 };
            let want: Vec<f32> = want.iter().map(|w| w * scale).collect();
            let op = Embed::new(g, &steps, &m, &idb, &out, scale).unwrap();
            run(&steps, &[&op], step);
            assert_close(&read_rows(&out, ids.len()), &want, 0.0, &format!("{ty} embedding"));
        }
    }
}
