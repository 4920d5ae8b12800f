//! Gemma 4's per-layer inputs (E2B, E4B; `shaders/per_layer.wgsl`): each token carries a small
//! vector for every layer, from a second embedding table and a projection of its embedding,
//! and each layer gates a branch of its own with its vector.

use super::linear::gelu;
use super::rms_norm::rms_norm;
use super::{Dispatch, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, Defines, Gpu, Slot};
use crate::{Error, Result};

/// The per-layer inputs' buffers of a batch: `inputs` and `proj` hold each token's slices for
/// every layer (`[token][layer * width + i]`), `gate` one layer's gate rows.
pub struct PerLayerBuffers {
    pub inputs: Activations,
    pub proj: Activations,
    pub gate: Activations,
}

impl PerLayerBuffers {
    pub fn new(gpu: &Gpu, batch: usize, width: usize, layers: usize) -> Result<PerLayerBuffers> {
        Ok(PerLayerBuffers {
            inputs: gpu.activations("per-layer inputs", batch, width * layers)?,
            proj: gpu.activations("per-layer projection", batch, width * layers)?,
            gate: gpu.activations("per-layer gate", batch, width)?,
        })
    }

    /// Floats per token, before anything is allocated.
    pub fn floats_per_token(width: usize, layers: usize) -> usize {
        2 * width * layers + width
    }

    pub fn bytes(&self) -> u64 {
        self.inputs.buffer.size() + self.proj.buffer.size() + self.gate.buffer.size()
    }
}

/// One dispatch of `shaders/per_layer.wgsl`.
pub struct PerLayerInputs {
    dispatch: Dispatch,
    name: &'static str,
}

impl PerLayerInputs {
    /// Each slice of `b.inputs` (the per-layer token embedding, already scaled) becomes
    /// `(slice + rmsnorm(b.proj's slice / sqrt(n_embd)) * gamma) / sqrt(2)`.
    pub fn combine(
        gpu: &Gpu,
        steps: &StepBuffers,
        b: &PerLayerBuffers,
        gamma: &wgpu::Buffer,
        eps: f32,
        n_embd: usize,
    ) -> Result<PerLayerInputs> {
        let (inputs, proj, width) = (&b.inputs, &b.proj, b.gate.width);
        let layers = slices(inputs, width)?;
        if proj.width != inputs.width || proj.stride != inputs.stride {
            return Err(Error::Gpu(format!(
                "per-layer projection rows of {} for inputs of {}",
                proj.width, inputs.width
            )));
        }
        let defines = Defines::new()
            .flag("COMBINE", true)
            .u32("P", width as u32)
            .u32("IS", inputs.stride as u32)
            .f32("PROJ_SCALE", 1.0 / (n_embd as f32).sqrt())
            .f32("INPUT_SCALE", std::f32::consts::FRAC_1_SQRT_2)
            .f32("EPS", eps);
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&proj.buffer)),
            (2, Slot::Read, Bind::Buffer(gamma)),
            (3, Slot::ReadWrite, Bind::Buffer(&inputs.buffer)),
        ];
        let grid = move |s: &Step| [layers, s.n_tokens, 1];
        let dispatch = Dispatch::new(gpu, "per_layer.wgsl", &defines, &binds, grid)?;
        Ok(PerLayerInputs { dispatch, name: "per-layer inputs" })
    }

    /// `b.gate` (layer `layer`'s gate rows) becomes `gelu(gate) * ` the layer's slice of
    /// `b.inputs`.
    pub fn gate(gpu: &Gpu, steps: &StepBuffers, b: &PerLayerBuffers, layer: usize) -> Result<PerLayerInputs> {
        let (inputs, gate) = (&b.inputs, &b.gate);
        let width = gate.width;
        if layer >= slices(inputs, width)? as usize {
            return Err(Error::Gpu(format!("no per-layer input for layer {layer} in rows of {}", inputs.width)));
        }
        let defines = Defines::new()
            .flag("GELU", true)
            .u32("P", width as u32)
            .u32("IS", inputs.stride as u32)
            .u32("GS", gate.stride as u32)
            .u32("LAYER", layer as u32);
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (3, Slot::Read, Bind::Buffer(&inputs.buffer)),
            (4, Slot::ReadWrite, Bind::Buffer(&gate.buffer)),
        ];
        let groups = (width as u32 / 4).div_ceil(64);
        let grid = move |s: &Step| [groups, s.n_tokens, 1];
        let dispatch = Dispatch::new(gpu, "per_layer.wgsl", &defines, &binds, grid)?;
        Ok(PerLayerInputs { dispatch, name: "per-layer gate" })
    }
}

/// How many `width`-wide slices make a row of `inputs`, refusing widths that do not divide it
/// or are not whole vec4s.
fn slices(inputs: &Activations, width: usize) -> Result<u32> {
    if width == 0 || !width.is_multiple_of(4) || !inputs.width.is_multiple_of(width) {
        return Err(Error::Gpu(format!("per-layer slices of {width} in rows of {}", inputs.width)));
    }
    Ok((inputs.width / width) as u32)
}

impl super::Op for PerLayerInputs {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.dispatch.encode(pass, step, rec)
    }

    fn name(&self) -> String {
        self.name.into()
    }
}

/// CPU reference of `combine` for one token's row.
pub fn combine_reference(embedded: &[f32], proj: &[f32], gamma: &[f32], eps: f32, n_embd: usize) -> Vec<f32> {
    let width = gamma.len();
    let scale = 1.0 / (n_embd as f64).sqrt();
    embedded
        .chunks(width)
        .zip(proj.chunks(width))
        .flat_map(|(e, p)| {
            let scaled: Vec<f32> = p.iter().map(|&v| (v as f64 * scale) as f32).collect();
            let normed = rms_norm(&scaled, gamma, eps);
            e.iter().zip(normed).map(|(&e, n)| ((e as f64 + n as f64) * std::f64::consts::FRAC_1_SQRT_2) as f32)
        })
        .collect()
}

/// CPU reference of `gate` for one token: `gelu(gate) * input`.
pub fn gate_reference(gate: &[f32], input: &[f32]) -> Vec<f32> {
    gate.iter().zip(input).map(|(&g, &x)| (gelu(g as f64) * x as f64) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::random_vec;

    #[test]
    fn slices_are_normalised_added_and_gated_per_layer() {
        let mut rng = rng(71);
        let (n_tokens, width, layers, n_embd, eps) = (5, 96, 3, 640, 1e-6);
        let embedded = random_vec(n_tokens * width * layers, &mut rng);
        // Projections of a width-640 embedding scaled by sqrt(640), as in the model.
        let proj: Vec<f32> = random_vec(n_tokens * width * layers, &mut rng).iter().map(|v| v * 25.0).collect();
        let gamma = random_vec(width, &mut rng);
        let gates: Vec<f32> = random_vec(n_tokens * width, &mut rng).iter().map(|v| 3.0 * v).collect();
        let row = width * layers;
        let combined: Vec<f32> = (0..n_tokens)
            .flat_map(|t| combine_reference(&embedded[t * row..][..row], &proj[t * row..][..row], &gamma, eps, n_embd))
            .collect();

        let g = gpu();
        let steps = step_buffers();
        let mut b = PerLayerBuffers {
            inputs: g.activations_with("inputs", row, &embedded).unwrap(),
            proj: g.activations_with("proj", row, &proj).unwrap(),
            gate: g.activations_with("gate", width, &gates).unwrap(),
        };
        let gb = g.buffer_with("gamma", &gamma).unwrap();
        let op = PerLayerInputs::combine(g, &steps, &b, &gb, eps, n_embd).unwrap();
        let step = Step { n_tokens: n_tokens as u32, ..Default::default() };
        run(&steps, &[&op], step);
        assert_close(&read_rows(&b.inputs, n_tokens), &combined, 1e-5, "combined per-layer inputs");

        for layer in 0..layers {
            b.gate = g.activations_with("gate", width, &gates).unwrap();
            let want: Vec<f32> = (0..n_tokens)
                .flat_map(|t| {
                    gate_reference(&gates[t * width..][..width], &combined[t * row + layer * width..][..width])
                })
                .collect();
            let op = PerLayerInputs::gate(g, &steps, &b, layer).unwrap();
            run(&steps, &[&op], step);
            assert_close(&read_rows(&b.gate, n_tokens), &want, 1e-5, &format!("layer {layer}'s gate"));
        }
    }

    #[test]
    fn slices_that_do_not_divide_the_rows_are_refused() {
        let g = gpu();
        let steps = step_buffers();
        let gamma = g.buffer_with("gamma", &[1.0f32; 64]).unwrap();
        let buffers = |row: usize, width: usize| PerLayerBuffers {
            inputs: g.activations("inputs", 1, row).unwrap(),
            proj: g.activations("proj", 1, row).unwrap(),
            gate: g.activations("gate", 1, width).unwrap(),
        };
        assert!(PerLayerInputs::combine(g, &steps, &buffers(96 * 3, 64), &gamma, 1e-6, 64).is_err());
        assert!(PerLayerInputs::gate(g, &steps, &buffers(96 * 3, 96), 3).is_err());
        assert!(PerLayerInputs::gate(g, &steps, &buffers(90 * 3, 90), 0).is_err());
        assert!(PerLayerInputs::gate(g, &steps, &buffers(96 * 3, 96), 2).is_ok());
    }
}
