//! A mixture-of-experts matrix product: for every (token, slot) pair of the step, the matrix of
//! the expert the router picked for it (`ops/route.rs`) times that pair's input. The expert ids
//! stay on the GPU: grids are fixed by the step and each workgroup reads its expert from a
//! buffer.
//!
//! Decoding (one token): `shaders/linear.wgsl` with `EXPERTS`, a grid of an expert's octets ×
//! the token's pairs, so only the selected experts' weights are read. A batch: the pairs are
//! first grouped by expert (`ExpertGroups`, `shaders/expert_groups.wgsl`), then
//! `shaders/linear_batch.wgsl` with `EXPERTS` runs a chunk of up to 8 pairs of one expert per
//! workgroup row, each weight read once for all of them.
//!
//! A pair's result depends on its own input and expert alone, never on which other tokens
//! share the step (each of a chunk's pairs has its own sums, in the same order).

use super::linear::{Epilogue, GpuMatrix, LinearSpec};
use super::{Bound, Dispatch, Op, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, DecodeShape, Defines, Gpu, Slot};
use crate::quant::layout::{OCTET, TILE_ROWS};
use crate::{Error, Result};

/// The router's choice for each (token, slot) pair of a step: `ids[t * used + k]` is token t's
/// k-th expert and `weights[..]` its weight; and, for a batch, the pairs grouped by expert
/// (`ExpertGroups`).
pub struct RouteBuffers {
    pub ids: wgpu::Buffer,
    pub weights: wgpu::Buffer,
    pub used: usize,
    pub experts: usize,
    /// The pairs, expert by expert.
    pub order: wgpu::Buffer,
    /// (expert, first index into `order`, pairs, 0) per chunk of up to 8 pairs of one expert.
    pub chunks: wgpu::Buffer,
    /// Per expert, a count and then an insertion point.
    cursor: wgpu::Buffer,
    /// Per token, the weight of the shared expert every token also uses (Qwen 3.5 MoE), for
    /// families that have one (`with_shared_gate`).
    pub shared: Option<wgpu::Buffer>,
}

/// Chunks of up to 8 pairs one step can need: each expert's last chunk may be partial.
fn max_chunks(pairs: usize, experts: usize) -> usize {
    pairs.div_ceil(8) + experts
}

impl RouteBuffers {
    /// Bytes the buffers for `tokens` tokens ask for (before any padding): ids, weights and
    /// order (a u32 per pair), the chunks (16 bytes each) and a cursor per expert.
    pub fn bytes_for(tokens: usize, used: usize, experts: usize) -> u64 {
        (3 * tokens * used * 4 + max_chunks(tokens * used, experts) * 16 + experts * 4) as u64
    }

    /// Bytes of GPU memory these buffers take.
    pub fn bytes(&self) -> u64 {
        let shared = self.shared.as_ref().map_or(0, |b| b.size());
        shared
            + [&self.ids, &self.weights, &self.order, &self.chunks, &self.cursor].iter().map(|b| b.size()).sum::<u64>()
    }

    /// These buffers with a shared expert's weight for each of `tokens` tokens.
    pub fn with_shared_gate(self, gpu: &Gpu, tokens: usize) -> Result<RouteBuffers> {
        Ok(RouteBuffers { shared: Some(gpu.buffer("shared expert weights", tokens as u64 * 4)?), ..self })
    }

    pub fn new(gpu: &Gpu, tokens: usize, used: usize, experts: usize) -> Result<RouteBuffers> {
        let bytes = (tokens * used * 4) as u64;
        Ok(RouteBuffers {
            ids: gpu.buffer("expert ids", bytes)?,
            weights: gpu.buffer("expert weights", bytes)?,
            used,
            experts,
            order: gpu.buffer("expert order", bytes)?,
            chunks: gpu.buffer("expert chunks", max_chunks(tokens * used, experts) as u64 * 16)?,
            cursor: gpu.buffer("expert cursors", experts as u64 * 4)?,
            shared: None,
        })
    }
}

/// Groups a batch's pairs by expert for the batched expert kernels (nothing to do for one token).
pub struct ExpertGroups(Dispatch);

impl ExpertGroups {
    pub fn new(gpu: &Gpu, steps: &StepBuffers, route: &RouteBuffers) -> Result<ExpertGroups> {
        let binds = [
            (0, Slot::Uniform, Bind::Buffer(&steps.step)),
            (1, Slot::Read, Bind::Buffer(&route.ids)),
            (2, Slot::ReadWrite, Bind::Buffer(&route.order)),
            (3, Slot::ReadWrite, Bind::Buffer(&route.chunks)),
            (4, Slot::ReadWrite, Bind::Buffer(&route.cursor)),
        ];
        let defines = Defines::new().u32("E", route.experts as u32).u32("USED", route.used as u32);
        let grid = |s: &Step| if s.n_tokens > 1 { [1, 1, 1] } else { [0, 0, 0] };
        Ok(ExpertGroups(Dispatch::new(gpu, "expert_groups.wgsl", &defines, &binds, grid)?))
    }
}

impl Op for ExpertGroups {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        self.0.encode(pass, step, rec)
    }

    fn name(&self) -> String {
        "expert groups".into()
    }
}

/// What the input of each pair is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpertInput {
    /// Row t of x for all of token t's pairs (the gate|up projection of the normed stream).
    Token,
    /// Row p of x for pair p (the down projection of each pair's activations).
    Pair,
}

struct PartKernel {
    single: Bound,
    batch: Bound,
    /// Workgroups along x for one expert: of the one-token kernel, and of the batched one.
    single_groups: u32,
    tiles: u32,
}

pub struct ExpertLinear {
    parts: Vec<PartKernel>,
    used: u32,
    experts: u32,
    name: String,
}

impl ExpertLinear {
    /// `w` stacks the route's experts' matrices, `w.rows / route.experts` rows each (whole
    /// tiles), a bias likewise; the epilogue is `Store` or a gated one (rows in (gate, up) pairs).
    pub fn new(
        gpu: &Gpu,
        w: &GpuMatrix,
        route: &RouteBuffers,
        (x, input): (&Activations, ExpertInput),
        y: &Activations,
        spec: &LinearSpec,
    ) -> Result<ExpertLinear> {
        let LinearSpec { norm, bias, epilogue, shape, .. } = *spec;
        let n_expert = route.experts;
        if spec.logits || spec.cache.is_some() {
            return Err(Error::Gpu("expert products have no logits rows or cache writes".into()));
        }
        let rows = w.rows / n_expert.max(1);
        let out_width = if epilogue.is_gated() { rows / 2 } else { rows };
        if n_expert == 0 || rows * n_expert != w.rows || !rows.is_multiple_of(TILE_ROWS) {
            return Err(Error::Unsupported(format!(
                "{} expert rows over {n_expert} experts: each expert needs whole tiles of {TILE_ROWS} rows",
                w.rows
            )));
        }
        if x.width != w.cols || y.width != out_width || matches!(epilogue, Epilogue::Add) {
            return Err(Error::Gpu(format!(
                "experts {rows}x{}: input width {} / output width {} / {epilogue:?} do not fit",
                w.cols, x.width, y.width
            )));
        }
        let split = shape.unwrap_or_else(|| gpu.decode_shape()) == DecodeShape::Split;
        let x_pairs = match input {
            ExpertInput::Token => route.used,
            ExpertInput::Pair => 1,
        };
        let base = spec
            .defines(gpu)
            .flag("EXPERTS", true)
            .flag("X_STORAGE", true)
            .u32("XV", 1)
            .u32("XS", (x.stride / 4) as u32)
            .u32("YS", y.stride as u32)
            .u32("X_PAIRS", x_pairs as u32)
            .u32("N_EXPERT", n_expert as u32)
            .u32("EXPERT_OCTETS", (rows / OCTET) as u32);
        let mut parts = Vec::with_capacity(w.parts.len());
        for part in &w.parts {
            if !part.first_row.is_multiple_of(rows) || !part.rows.is_multiple_of(rows) {
                return Err(Error::Unsupported("experts of different tensor types in one matrix".into()));
            }
            // Each part holds whole experts; its defines count rows within one expert.
            let defines = part.defines(gpu, w.cols, base.clone()).u32("N", rows as u32).u32("ROW0", 0);
            let mut binds = part.bindings();
            binds.extend([(3, Slot::ReadWrite, Bind::Buffer(&y.buffer)), (6, Slot::Read, Bind::Buffer(&x.buffer))]);
            if let Some((gamma, _)) = norm {
                binds.push((5, Slot::Read, Bind::Buffer(gamma)));
            }
            if let Some(b) = bias {
                binds.push((7, Slot::Read, Bind::Buffer(b)));
            }
            let bound = |shader: &str, defines: &Defines, extra: &[(u32, Slot, Bind)]| {
                let all: Vec<(u32, Slot, Bind)> = binds.iter().chain(extra).copied().collect();
                Bound::new(gpu, shader, defines, &all)
            };
            let single = bound(
                "linear.wgsl",
                &defines.clone().flag("SPLIT", split),
                &[(11, Slot::Read, Bind::Buffer(&route.ids))],
            )?;
            let batch = bound(
                "linear_batch.wgsl",
                &defines.clone().u32("TOKENS", 8),
                &[(11, Slot::Read, Bind::Buffer(&route.order)), (12, Slot::Read, Bind::Buffer(&route.chunks))],
            )?;
            let tiles = (rows / TILE_ROWS) as u32;
            parts.push(PartKernel { single, batch, single_groups: if split { tiles * 8 } else { tiles }, tiles });
        }
        Ok(ExpertLinear {
            parts,
            used: route.used as u32,
            experts: n_expert as u32,
            name: format!(
                "experts {} {n_expert}x{rows}x{}{}{}",
                w.parts.first().map_or(String::new(), |p| format!("{:?}", p.format)),
                w.cols,
                if norm.is_some() { " +norm" } else { "" },
                if epilogue.is_gated() { " +glu" } else { "" }
            ),
        })
    }
}

impl Op for ExpertLinear {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        let pairs = step.n_tokens * self.used;
        if pairs == 0 {
            return;
        }
        for part in &self.parts {
            if step.n_tokens == 1 {
                part.single.dispatch(pass, &[], rec, [part.single_groups, pairs, 1]);
            } else {
                // A chunk per workgroup row: as many as the grouping can make (ExpertGroups).
                let chunks = max_chunks(pairs as usize, self.experts as usize) as u32;
                part.batch.dispatch(pass, &[], rec, [part.tiles, chunks, 1]);
            }
        }
    }
}

/// CPU reference: `w[expert][row][col]` (and `bias[expert][row]`), `ids` and `x` as the GPU
/// has them; y per pair.
#[allow(clippy::too_many_arguments)]
pub fn reference(
    w: &[Vec<Vec<f32>>],
    bias: Option<&[Vec<f32>]>,
    ids: &[u32],
    used: usize,
    x: &[f32],
    input: ExpertInput,
    norm: Option<(&[f32], f32)>,
    epilogue: Epilogue,
) -> Vec<f32> {
    let cols = w.first().and_then(|e| e.first()).map_or(0, Vec::len);
    let mut y = Vec::new();
    for (p, &e) in ids.iter().enumerate() {
        let row = match input {
            ExpertInput::Token => p / used,
            ExpertInput::Pair => p,
        };
        let x_row = &x[row * cols..][..cols];
        let rows = &w[e as usize];
        let out = if epilogue.is_gated() { rows.len() / 2 } else { rows.len() };
        let b = bias.map(|b| &b[e as usize][..]);
        y.extend(super::linear::reference(rows, x_row, 1, norm, b, epilogue, &vec![0.0; out]));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::testing::{random_tensor, random_vec};
    use crate::quant::{GgmlType, RowOrder, SourceRows, pack};

    /// Packs `n_expert` random experts (gate|up interleaved when gated) and returns the GPU
    /// matrix and each expert's rows as the layout holds them.
    fn experts(
        ty: GgmlType,
        n_expert: usize,
        rows: usize,
        cols: usize,
        gated: bool,
        seed: u64,
    ) -> (GpuMatrix, Vec<Vec<Vec<f32>>>) {
        let mut rng = rng(seed);
        let halves = if gated { 2 } else { 1 };
        let tensors: Vec<Vec<u8>> =
            (0..halves).map(|_| random_tensor(ty, n_expert * rows / halves, cols, &mut rng)).collect();
        let sources: Vec<SourceRows> =
            tensors.iter().map(|b| SourceRows { ty, bytes: b, rows: n_expert * rows / halves }).collect();
        let order = if gated { RowOrder::Interleave } else { RowOrder::Concat };
        let packed = pack(&sources, cols, order).unwrap();
        let per_expert = (0..n_expert)
            .map(|e| (0..rows).map(|r| (0..cols).map(|c| packed.get(e * rows + r, c)).collect()).collect())
            .collect();
        (GpuMatrix::upload(gpu(), "experts", &packed).unwrap(), per_expert)
    }

    fn check(ty: GgmlType, shape: DecodeShape, n_tokens: usize, input: ExpertInput, epilogue: Epilogue, seed: u64) {
        let gated = epilogue.is_gated();
        let (n_expert, used, rows, cols) = (6, 3, 128, 256);
        let (w, w_ref) = experts(ty, n_expert, rows, cols, gated, seed);
        let mut r = rng(seed + 1);
        let pairs = n_tokens * used;
        let ids: Vec<u32> = (0..pairs).map(|p| ((p * 7 + seed as usize) % n_expert) as u32).collect();
        let x_rows = if input == ExpertInput::Token { n_tokens } else { pairs };
        let x = random_vec(x_rows * cols, &mut r);
        let gamma = random_vec(cols, &mut r);
        let norm = (input == ExpertInput::Token).then_some((&gamma[..], 1e-5));
        let bias: Vec<Vec<f32>> = (0..n_expert).map(|_| random_vec(rows, &mut r)).collect();
        let with_bias = seed.is_multiple_of(2);
        let want = reference(&w_ref, with_bias.then_some(&bias[..]), &ids, used, &x, input, norm, epilogue);

        let g = gpu();
        let route = RouteBuffers::new(g, n_tokens, used, n_expert).unwrap();
        g.queue.write_buffer(&route.ids, 0, bytemuck::cast_slice(&ids));
        let xb = g.activations_with("x", cols, &x).unwrap();
        let out = if gated { rows / 2 } else { rows };
        let yb = poisoned_rows(pairs, out);
        let gb = g.buffer_with("gamma", &gamma).unwrap();
        let bb = g.buffer_with("bias", &bias.concat()).unwrap();
        let steps = step_buffers();
        let spec = LinearSpec {
            bias: with_bias.then_some(&bb),
            shape: Some(shape),
            ..LinearSpec::new(norm.map(|(_, eps)| (&gb, eps)), epilogue)
        };
        let op = ExpertLinear::new(g, &w, &route, (&xb, input), &yb, &spec).unwrap();
        let groups = ExpertGroups::new(g, &steps, &route).unwrap();
        run(&steps, &[&groups, &op], Step { n_tokens: n_tokens as u32, ..Default::default() });
        let got = read_rows(&yb, pairs);
        let what = format!("{ty} {shape:?} T={n_tokens} {input:?} {epilogue:?} bias={with_bias}");
        if g.paths.f16 {
            assert_close_to_scale(&got, &want, 1e-2, &what);
        } else {
            assert_close(&got, &want, 1e-4, &what);
        }
    }

    #[test]
    fn each_pair_is_its_own_experts_product_in_both_shapes() {
        // A superblock format, MXFP4 and a 32-weight format (the rest share these shaders' paths
        // with the dense kernels, tested there for every type).
        let types = [GgmlType::Q4K, GgmlType::MXFP4, GgmlType::Q8_0];
        for (i, ty) in types.into_iter().enumerate() {
            let glu = if i % 2 == 0 { Epilogue::SwiGlu } else { Epilogue::SwiGluOai };
            for shape in [DecodeShape::Rows, DecodeShape::Split] {
                check(ty, shape, 1, ExpertInput::Token, glu, 2 * i as u64);
                check(ty, shape, 1, ExpertInput::Pair, Epilogue::Store, 11 + 2 * i as u64);
            }
            // Batches, grouped by expert: partial chunks, and experts of several chunks.
            check(ty, DecodeShape::Rows, 3, ExpertInput::Pair, Epilogue::Store, 20 + 2 * i as u64);
            check(ty, DecodeShape::Rows, 30, ExpertInput::Token, glu, 30 + 2 * i as u64);
        }
    }

    #[test]
    fn experts_of_partial_tiles_are_refused() {
        let (w, _) = experts(GgmlType::Q8_0, 2, 64, 64, false, 3);
        let g = gpu();
        let route = RouteBuffers::new(g, 1, 1, 4).unwrap();
        let x = g.activations("x", 1, 64).unwrap();
        let y = g.activations("y", 1, 32).unwrap();
        let spec = LinearSpec::new(None, Epilogue::Store);
        let err = ExpertLinear::new(g, &w, &route, (&x, ExpertInput::Pair), &y, &spec)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("whole tiles"), "{err}");
        let route = RouteBuffers::new(g, 1, 1, 2).unwrap();
        let y = g.activations("y", 1, 64).unwrap();
        let logits = LinearSpec { logits: true, ..LinearSpec::new(None, Epilogue::Store) };
        let err = ExpertLinear::new(g, &w, &route, (&x, ExpertInput::Pair), &y, &logits)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no logits rows"), "{err}");
    }
}
