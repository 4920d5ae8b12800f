//! `y = W x` over a batch of tokens with W in its quantized texture layout
//! (`shaders/linear.wgsl` for one token, `shaders/linear_batch.wgsl` for several), with the
//! RMSNorm of x, the residual add and SwiGLU fused in as variants.

use super::kv_write::rope_defines;
use super::{Bound, Heads, Op, Recorder, Step, StepBuffers};
use crate::gpu::{Activations, Bind, DecodeShape, Defines, Gpu, KvTexture, KvType, Slot, Texels};
use crate::quant::layout::{PackedMatrix, TILE_ROWS, WeightFormat};
use crate::{Error, Result};

/// Tokens per invocation in the batched kernel.
/// Tokens per invocation of the batched kernel's variants (`TOKENS` in linear_batch.wgsl): a
/// step of a few rows (several sequences decoding together) takes the smallest that holds
/// them, since on CPU adapters the eight-token form costs as much for two tokens as for eight.
const BATCH_TOKENS: [u32; 3] = [2, 4, 8];

/// The variant for a window of `count` tokens: its index and its tokens per invocation.
fn batch_variant(count: u32) -> (usize, u32) {
    BATCH_TOKENS.iter().copied().enumerate().find(|&(_, t)| count <= t).unwrap_or((2, 8))
}

/// A weight matrix resident on the GPU: one part, or several row ranges of one format each
/// where fused tensors differ in type (Q4_K_M's Q4_K Q|K and Q6_K V keep their own sizes).
pub struct GpuMatrix {
    pub rows: usize,
    pub cols: usize,
    pub parts: Vec<MatrixPart>,
}

/// Rows `first_row..first_row + rows` of a matrix, in one format.
pub struct MatrixPart {
    pub first_row: usize,
    pub rows: usize,
    pub format: WeightFormat,
    pub quants: Texels,
    pub scales: Option<Texels>,
}

impl GpuMatrix {
    pub fn upload(gpu: &Gpu, label: &str, m: &PackedMatrix) -> Result<GpuMatrix> {
        Self::upload_parts(gpu, label, std::slice::from_ref(m))
    }

    /// Packed row ranges, in order, as one matrix.
    pub fn upload_parts(gpu: &Gpu, label: &str, parts: &[PackedMatrix]) -> Result<GpuMatrix> {
        let cols = parts.first().map_or(0, |m| m.cols);
        let mut uploaded = Vec::with_capacity(parts.len());
        let mut first_row = 0usize;
        for m in parts {
            if m.cols != cols || !first_row.is_multiple_of(8) {
                return Err(Error::Gpu(format!(
                    "{label}: parts of a matrix must share columns and start at whole octets"
                )));
            }
            uploaded.push(MatrixPart {
                first_row,
                rows: m.rows,
                format: m.format,
                quants: gpu.texels(label, &m.quants)?,
                scales: if m.scales.is_empty() { None } else { Some(gpu.texels(label, &m.scales)?) },
            });
            first_row += m.rows;
        }
        Ok(GpuMatrix { rows: first_row, cols, parts: uploaded })
    }

    /// The one part of a matrix that has one (the embedding table).
    pub(crate) fn single_part(&self) -> Result<&MatrixPart> {
        match &self.parts[..] {
            [part] => Ok(part),
            _ => Err(Error::Gpu(format!(
                "a {}x{} matrix of {} parts where one was expected",
                self.rows,
                self.cols,
                self.parts.len()
            ))),
        }
    }

    fn formats(&self) -> String {
        self.parts.iter().map(|p| format!("{:?}", p.format)).collect::<Vec<_>>().join(" + ")
    }
}

impl MatrixPart {
    pub fn tiles(&self) -> u32 {
        self.rows.div_ceil(TILE_ROWS) as u32
    }

    /// The defines every kernel reading this part of a `cols`-wide matrix shares.
    pub(crate) fn defines(&self, gpu: &Gpu, cols: usize, d: Defines) -> Defines {
        let [quants, scales] = self.format.shader_flags();
        let levels = self.format.level_words().unwrap_or_default();
        self.quants
            .defines(d)
            .u32("LV0", levels[0])
            .u32("LV1", levels[1])
            .u32("LV2", levels[2])
            .u32("LV3", levels[3])
            .flag(quants, true)
            .flag(scales, true)
            .flag("SCALED", self.scales.is_some())
            .u32("WQ", self.format.quants.words() as u32)
            .u32("ST", self.format.scales.half_words() as u32)
            .u32("SB", self.format.scales.unit_blocks() as u32)
            .f32("S_OFFSET", self.format.offset())
            .u32("TEXEL_ROW", gpu.texel_row())
            .u32("K", cols as u32)
            .u32("N", self.rows as u32)
            .u32("ROW0", self.first_row as u32)
            .u32("WQ_H", self.quants.height())
            .u32("WS_H", self.scales.as_ref().map_or(1, |s| s.height()))
    }

    /// Its texels, in slots 2 (quants) and 4 (scales).
    pub(crate) fn bindings(&self) -> Vec<(u32, Slot, Bind<'_>)> {
        let mut b = vec![(2, self.quants.slot(), self.quants.bind())];
        if let Some(s) = &self.scales {
            b.push((4, s.slot(), s.bind()));
        }
        b
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// y = W x
    Store,
    /// y += W x
    Add,
    /// Rows are (gate, up) pairs: y[i] = silu(gate_i) * up_i.
    SwiGlu,
    /// Rows are (gate, up) pairs: y[i] = gelu(gate_i) * up_i (tanh approximation).
    GeGlu,
    /// Rows are (gate, up) pairs: gpt-oss's clamped SwiGLU, g * sigmoid(1.702 g) * (u + 1) with
    /// g = min(gate_i, 7) and u = clamp(up_i, -7, 7).
    SwiGluOai,
}

impl Epilogue {
    /// Whether rows come in (gate, up) pairs that become one output.
    pub fn is_gated(self) -> bool {
        matches!(self, Epilogue::SwiGlu | Epilogue::GeGlu | Epilogue::SwiGluOai)
    }

    /// The activation of one (gate, up) pair, in f64 (the CPU references').
    pub fn activate(self, g: f64, u: f64) -> f64 {
        match self {
            Epilogue::GeGlu => gelu(g) * u,
            Epilogue::SwiGluOai => {
                let (g, u) = (g.min(7.0), u.clamp(-7.0, 7.0));
                g / (1.0 + (-1.702 * g).exp()) * (u + 1.0)
            }
            _ => g / (1.0 + (-g).exp()) * u,
        }
    }
}

/// GELU in the tanh form Gemma was trained with.
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + (0.7978845608028654 * (x + 0.044715 * x * x * x)).tanh())
}

/// A layer's KV cache, for the Q|K|V kernel to write this step's keys (rotated) and values into
/// as it computes them (`shaders/cache_write.wgsl`), in place of a `KvWrite` dispatch.
#[derive(Clone, Copy)]
pub struct CacheWrite<'a> {
    pub heads: Heads,
    /// The RoPE table of this layer.
    pub rope: &'a wgpu::Buffer,
    pub k: &'a KvTexture,
    pub v: &'a KvTexture,
}

impl CacheWrite<'_> {
    /// Whether an octet of output rows holds whole rotation pairs of one head: neighbour pairs
    /// (not GPT-NeoX's (i, i + d/2)) and heads of whole octets; and whether the cache stores
    /// floats (a quantized block needs all 32 of its elements at once: kv_write.wgsl).
    pub fn fits(heads: &Heads, kind: KvType) -> bool {
        !heads.neox && heads.head_dim.is_multiple_of(8) && !kind.is_quantized()
    }
}

pub struct LinearSpec<'a> {
    /// RMSNorm x with this gamma and epsilon before the product.
    pub norm: Option<(&'a wgpu::Buffer, f32)>,
    /// Added to each row's result (with gated epilogues, to gate and up before the activation).
    pub bias: Option<&'a wgpu::Buffer>,
    pub epilogue: Epilogue,
    /// Only tokens from `Step::logits_from` on are computed, into rows 0.. of y.
    pub logits: bool,
    /// The one-token kernel's shape; the adapter's (`Gpu::decode_shape`) when None.
    pub shape: Option<DecodeShape>,
    /// Rows are Q|K|V: K and V also go into this cache.
    pub cache: Option<CacheWrite<'a>>,
    /// Products in f32 even on the f16 path (a router's logits: the experts chosen from them
    /// are a discrete choice that f16 rounding would flip).
    pub f32: bool,
    /// Each result becomes `cap * tanh(result / cap)` (Gemma's final logit softcapping).
    pub softcap: Option<f32>,
}

impl<'a> LinearSpec<'a> {
    pub fn new(norm: Option<(&'a wgpu::Buffer, f32)>, epilogue: Epilogue) -> Self {
        LinearSpec { norm, bias: None, epilogue, logits: false, shape: None, cache: None, f32: false, softcap: None }
    }

    /// The defines of the arithmetic path, the fused norm, the bias and the epilogue, which
    /// every matrix kernel (dense or experts) takes from its spec.
    pub(crate) fn defines(&self, gpu: &Gpu) -> Defines {
        let d = gpu
            .paths
            .defines(Defines::new())
            .flag("F16", gpu.paths.f16 && !self.f32)
            .flag("ADD", self.epilogue == Epilogue::Add)
            .flag("GLU", self.epilogue.is_gated())
            .flag("GELU", self.epilogue == Epilogue::GeGlu)
            .flag("OAI", self.epilogue == Epilogue::SwiGluOai)
            .flag("BIAS", self.bias.is_some());
        let d = match self.softcap {
            Some(cap) => d.flag("SOFTCAP", true).f32("CAP", cap),
            None => d,
        };
        match self.norm {
            Some((_, eps)) => d.flag("NORM", true).f32("EPS", eps),
            None => d,
        }
    }
}

/// The kernels of one part of the matrix.
struct PartKernels {
    single: Bound,
    /// One per `BATCH_TOKENS` variant.
    batch: Vec<Bound>,
    /// Workgroups of the one-token kernel.
    single_groups: u32,
    tiles: u32,
}

pub struct Linear {
    parts: Vec<PartKernels>,
    logits: bool,
    /// Tokens per uniform window of x, and the byte stride of x rows.
    window_tokens: u32,
    x_row_bytes: u32,
    name: String,
}

impl Linear {
    pub fn new(
        gpu: &Gpu,
        steps: &StepBuffers,
        w: &GpuMatrix,
        x: &Activations,
        y: &Activations,
        spec: &LinearSpec,
    ) -> Result<Linear> {
        let out_width = if spec.epilogue.is_gated() { w.rows / 2 } else { w.rows };
        if x.width != w.cols || y.width != out_width {
            return Err(Error::Gpu(format!(
                "linear {}x{}: input width {} / output width {} do not match",
                w.rows, w.cols, x.width, y.width
            )));
        }
        if spec.epilogue.is_gated() && (!w.rows.is_multiple_of(8) || w.parts.len() > 1) {
            return Err(Error::Gpu("gated activations need whole groups of 8 rows in one part".into()));
        }
        let window_tokens = x.window_rows(gpu) as u32;
        let window_bytes = x.window_bytes(gpu);
        let mut base = spec
            .defines(gpu)
            .u32("XV", (window_bytes / 16) as u32)
            .u32("XS", (x.stride / 4) as u32)
            .u32("YS", y.stride as u32);
        let mut common = vec![(3, Slot::ReadWrite, Bind::Buffer(&y.buffer))];
        if let Some(bias) = spec.bias {
            common.push((7, Slot::Read, Bind::Buffer(bias)));
        }
        if let Some(cache) = &spec.cache {
            let h = &cache.heads;
            if !CacheWrite::fits(h, cache.k.kind)
                || w.rows != h.qkv_dim()
                || spec.epilogue != Epilogue::Store
                || spec.logits
            {
                return Err(Error::Gpu(format!(
                    "a cache write needs Q|K|V rows ({} for {h:?}, not {}), a plain store, neighbour-pair RoPE and a float cache",
                    h.qkv_dim(),
                    w.rows
                )));
            }
            base = rope_defines(base, h)
                .flag("CACHE", true)
                .u32("Q_ROWS", h.q_dim() as u32)
                .u32("KV_ROWS", h.kv_dim() as u32)
                .u32("HD", h.head_dim as u32);
            base = cache.k.slot_defines(base);
            common.extend([
                (0, Slot::Uniform, Bind::Buffer(&steps.step)),
                (10, Slot::Read, Bind::Buffer(cache.rope)),
                (14, Slot::Read, Bind::Buffer(&steps.rows)),
            ]);
            common.extend(cache.k.write_binds(8, 0));
            common.extend(cache.v.write_binds(9, 0));
        }
        let shape = spec.shape.unwrap_or_else(|| gpu.decode_shape());
        let split = shape == DecodeShape::Split;
        let narrow = x.fits_uniform_window(gpu);
        let mut parts = Vec::with_capacity(w.parts.len());
        for part in &w.parts {
            let defines = part.defines(gpu, w.cols, base.clone());
            // x (and gamma) come through uniform bindings where every lane reads the same
            // address and a row fits; otherwise through storage (see shaders/linear.wgsl).
            let bound = |shader: &str, defines: &Defines, x_storage: bool, windows: bool| {
                let mut all = part.bindings();
                all.extend(common.iter().copied());
                let (window, whole) =
                    if x_storage { (Slot::StorageWindow, Slot::Read) } else { (Slot::UniformWindow, Slot::Uniform) };
                all.push((6, window, Bind::Window(&x.buffer, window_bytes)));
                if let Some((gamma, _)) = spec.norm {
                    all.push((5, whole, Bind::Buffer(gamma)));
                }
                if windows {
                    all.push((1, Slot::UniformWindow, Bind::Window(&steps.windows, 16)));
                }
                Bound::new(gpu, shader, &defines.clone().flag("X_STORAGE", x_storage), &all)
            };
            parts.push(PartKernels {
                single: bound("linear.wgsl", &defines.clone().flag("SPLIT", split), split || !narrow, false)?,
                single_groups: if split { part.tiles() * 8 } else { part.tiles() },
                batch: BATCH_TOKENS
                    .iter()
                    .map(|&t| bound("linear_batch.wgsl", &defines.clone().u32("TOKENS", t), !narrow, true))
                    .collect::<Result<Vec<_>>>()?,
                tiles: part.tiles(),
            });
        }
        Ok(Linear {
            parts,
            logits: spec.logits,
            window_tokens,
            x_row_bytes: (x.stride * 4) as u32,
            name: format!(
                "linear {} {}x{}{}{}",
                w.formats(),
                w.rows,
                w.cols,
                if spec.norm.is_some() { " +norm" } else { "" },
                match spec.epilogue {
                    Epilogue::Store if spec.cache.is_some() => " +kv cache",
                    Epilogue::Store => "",
                    Epilogue::Add => " +add",
                    Epilogue::SwiGlu => " +swiglu",
                    Epilogue::GeGlu => " +geglu",
                    Epilogue::SwiGluOai => " +swiglu-oai",
                }
            ),
        })
    }
}

impl Op for Linear {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        let first = if self.logits { step.logits_from } else { 0 };
        let n = step.n_tokens.saturating_sub(first);
        if n == 0 {
            return;
        }
        for part in &self.parts {
            if n == 1 {
                part.single.dispatch(pass, &[first * self.x_row_bytes], rec, [part.single_groups, 1, 1]);
                continue;
            }
            let mut done = 0;
            while done < n {
                let count = self.window_tokens.min(n - done);
                let offsets = [rec.window(count, done), (first + done) * self.x_row_bytes];
                let (variant, tokens) = batch_variant(count);
                part.batch[variant].dispatch(pass, &offsets, rec, [part.tiles, count.div_ceil(tokens), 1]);
                done += count;
            }
        }
    }
}

/// CPU reference: the same computation in f64 on dequantized weights (`w[row][col]`).
pub fn reference(
    w: &[Vec<f32>],
    x: &[f32],
    n_tokens: usize,
    norm: Option<(&[f32], f32)>,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    y_before: &[f32],
) -> Vec<f32> {
    let k = w.first().map_or(0, |r| r.len());
    let rows = w.len();
    let out_stride = if epilogue.is_gated() { rows / 2 } else { rows };
    let mut y = y_before.to_vec();
    for t in 0..n_tokens {
        let mut xt: Vec<f64> = x[t * k..][..k].iter().map(|&v| v as f64).collect();
        if let Some((gamma, eps)) = norm {
            let ms = xt.iter().map(|v| v * v).sum::<f64>() / k as f64;
            let inv = 1.0 / (ms + eps as f64).sqrt();
            for (v, g) in xt.iter_mut().zip(gamma) {
                *v *= inv * *g as f64;
            }
        }
        let dot = |row: &Vec<f32>| row.iter().zip(&xt).map(|(&a, b)| a as f64 * b).sum::<f64>();
        let b = |i: usize| bias.map_or(0.0, |b| b[i] as f64);
        match epilogue {
            Epilogue::SwiGlu | Epilogue::GeGlu | Epilogue::SwiGluOai => {
                for i in 0..out_stride {
                    let g = dot(&w[2 * i]) + b(2 * i);
                    let u = dot(&w[2 * i + 1]) + b(2 * i + 1);
                    y[t * out_stride + i] = epilogue.activate(g, u) as f32;
                }
            }
            Epilogue::Store | Epilogue::Add => {
                for (i, row) in w.iter().enumerate() {
                    let v = (dot(row) + bias.map_or(0.0, |b| b[i] as f64)) as f32;
                    let slot = &mut y[t * out_stride + i];
                    *slot = if epilogue == Epilogue::Add { *slot + v } else { v };
                }
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::*;
    use crate::quant::GgmlType;
    use crate::quant::testing::{random_tensor, random_vec};
    use crate::quant::{RowOrder, SourceRows, pack, pack_parts};

    const TYPES: [GgmlType; 16] = crate::quant::layout::SUPPORTED_TYPES;

    #[derive(Clone, Copy)]
    struct Case {
        shape: DecodeShape,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        n_tokens: usize,
        norm: bool,
        bias: bool,
        epilogue: Epilogue,
        logits_from: usize,
        softcap: Option<f32>,
    }

    fn check(case: Case, seed: u64) {
        let mut rng = rng(seed);
        let Case { shape, ty, rows, cols, n_tokens, norm, bias, epilogue, logits_from, softcap } = case;
        let (sources, order): (Vec<Vec<u8>>, RowOrder) = if epilogue.is_gated() {
            let gate = random_tensor(ty, rows / 2, cols, &mut rng);
            let up = random_tensor(ty, rows / 2, cols, &mut rng);
            (vec![gate, up], RowOrder::Interleave)
        } else {
            (vec![random_tensor(ty, rows, cols, &mut rng)], RowOrder::Concat)
        };
        let parts: Vec<SourceRows> =
            sources.iter().map(|b| SourceRows { ty, bytes: b, rows: rows / sources.len() }).collect();
        let packed = pack(&parts, cols, order).unwrap();
        // Reference rows as the packed layout holds them (the layout's own tests tie it to each
        // format's definition; for K-quants it rounds sub-block scales to f16).
        let w: Vec<Vec<f32>> = (0..rows).map(|r| (0..cols).map(|c| packed.get(r, c)).collect()).collect();

        let x = random_vec(n_tokens * cols, &mut rng);
        let gamma = random_vec(cols, &mut rng);
        let bias_values = random_vec(rows, &mut rng);
        let out_stride = if epilogue.is_gated() { rows / 2 } else { rows };
        let wanted = n_tokens - logits_from;
        let y_before = if epilogue == Epilogue::Add {
            random_vec(wanted * out_stride, &mut rng)
        } else {
            vec![f32::NAN; wanted * out_stride]
        };
        let norm_ref = norm.then_some((&gamma[..], 1e-5));
        let bias_ref = bias.then_some(&bias_values[..]);
        let mut want = reference(&w, &x[logits_from * cols..], wanted, norm_ref, bias_ref, epilogue, &y_before);
        if let Some(cap) = softcap {
            want.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
        }

        let g = gpu();
        let wm = GpuMatrix::upload(g, "w", &packed).unwrap();
        let xb = g.activations_with("x", cols, &x).unwrap();
        let yb = g.activations_with("y", out_stride, &y_before).unwrap();
        let gb = g.buffer_with("gamma", &gamma).unwrap();
        let bb = g.buffer_with("bias", &bias_values).unwrap();
        let step = Step { n_tokens: n_tokens as u32, pos0: 0, logits_from: logits_from as u32, pad: 0 };
        let steps = step_buffers();
        let spec = LinearSpec {
            norm: norm.then_some((&gb, 1e-5)),
            bias: bias.then_some(&bb),
            epilogue,
            logits: logits_from > 0,
            shape: Some(shape),
            cache: None,
            f32: false,
            softcap,
        };
        let op = Linear::new(g, &steps, &wm, &xb, &yb, &spec).unwrap();
        run(&steps, &[&op], step);
        let got = read_rows(&yb, wanted);
        let what = format!("{shape:?} {ty} {rows}x{cols} T={n_tokens} norm={norm} bias={bias} {epilogue:?}");
        if g.paths.f16 {
            // f16 products carry 11-bit mantissas (the sums stay f32).
            assert_close_to_scale(&got, &want, 1e-2, &what);
        } else {
            assert_close(&got, &want, 1e-4, &what);
        }
    }

    /// `cols` rounded up to whole blocks of `ty` (256 for K-quants).
    fn whole_blocks(ty: GgmlType, cols: usize) -> usize {
        cols.next_multiple_of(ty.block_elements() as usize)
    }

    const SHAPES: [DecodeShape; 2] = [DecodeShape::Rows, DecodeShape::Split];

    #[test]
    fn matvec_matches_reference_for_every_format_and_shape() {
        for (i, (ty, shape)) in TYPES.into_iter().flat_map(|t| SHAPES.map(|s| (t, s))).enumerate() {
            let case = Case {
                shape,
                ty,
                rows: 96,
                cols: whole_blocks(ty, 160),
                n_tokens: 1,
                norm: false,
                bias: false,
                epilogue: Epilogue::Store,
                logits_from: 0,
                softcap: None,
            };
            check(case, i as u64);
        }
    }

    #[test]
    fn batched_tokens_with_a_partial_tile_match_reference() {
        let shape = DecodeShape::Rows;
        for (i, ty) in TYPES.into_iter().enumerate() {
            let case = Case {
                shape,
                ty,
                rows: 72,
                cols: whole_blocks(ty, 96),
                n_tokens: 7,
                norm: false,
                bias: false,
                epilogue: Epilogue::Store,
                logits_from: 0,
                softcap: None,
            };
            check(case, 100 + i as u64);
        }
    }

    #[test]
    fn a_few_tokens_take_the_smaller_batched_variants_and_match_reference() {
        // 2 tokens: the two-token variant; 3 and 4: the four-token one (every format, both
        // shapes' bindings, the fused norm); 18 rows of 2048 floats: windows of 8, 8 and 2.
        assert_eq!([1, 2, 3, 4, 5, 8, 9].map(|n| batch_variant(n).1), [2, 2, 4, 4, 8, 8, 8]);
        for (i, ty) in TYPES.into_iter().enumerate() {
            for (n_tokens, shape) in [(2, DecodeShape::Rows), (3, DecodeShape::Split), (4, DecodeShape::Rows)] {
                let case = Case {
                    shape,
                    ty,
                    rows: 72,
                    cols: whole_blocks(ty, 96),
                    n_tokens,
                    norm: n_tokens != 3,
                    bias: false,
                    epilogue: Epilogue::Add,
                    logits_from: 0,
                    softcap: None,
                };
                check(case, 500 + 10 * i as u64 + n_tokens as u64);
            }
        }
        let windows = Case {
            shape: DecodeShape::Split,
            ty: GgmlType::Q4_1,
            rows: 64,
            cols: 2048,
            n_tokens: 18,
            norm: true,
            bias: false,
            epilogue: Epilogue::Store,
            logits_from: 0,
            softcap: None,
        };
        check(windows, 599);
    }

    #[test]
    fn batches_wider_than_one_uniform_window_match_reference() {
        let shape = DecodeShape::Split;
        // 2048 floats per row: 8 rows per 64 KiB window, so 21 tokens take three windows.
        let case = Case {
            shape,
            ty: GgmlType::Q4_1,
            rows: 64,
            cols: 2048,
            n_tokens: 21,
            norm: true,
            bias: false,
            epilogue: Epilogue::Add,
            logits_from: 0,
            softcap: None,
        };
        check(case, 150);
        let logits = Case {
            shape,
            ty: GgmlType::Q8_0,
            rows: 64,
            cols: 2048,
            n_tokens: 21,
            norm: true,
            bias: false,
            epilogue: Epilogue::Store,
            logits_from: 5,
            softcap: None,
        };
        check(logits, 151);
        // Gemma's logit softcapping, on logits rows (batched) and on one token.
        check(Case { softcap: Some(2.0), ..logits }, 152);
        check(Case { softcap: Some(2.0), n_tokens: 6, ..logits }, 153);
    }

    #[test]
    fn rows_wider_than_a_uniform_window_match_reference() {
        // Qwen2.5-7B's FFN width (18,944) and 32,768: x and gamma come through storage windows
        // of one row, in every shape, one token and several.
        for (i, (cols, shape, n_tokens, ty)) in [
            (18944, DecodeShape::Rows, 1, GgmlType::Q4K),
            (18944, DecodeShape::Split, 1, GgmlType::Q4_1),
            (32768, DecodeShape::Rows, 3, GgmlType::Q8_0),
        ]
        .into_iter()
        .enumerate()
        {
            let case = Case {
                shape,
                ty,
                rows: 16,
                cols,
                n_tokens,
                norm: true,
                bias: false,
                epilogue: Epilogue::Add,
                logits_from: 0,
                softcap: None,
            };
            check(case, 160 + i as u64);
        }
    }

    #[test]
    fn fused_norm_bias_residual_and_gated_activations_match_reference() {
        for (i, (n_tokens, shape)) in
            [(1, DecodeShape::Rows), (1, DecodeShape::Split), (6, DecodeShape::Rows)].into_iter().enumerate()
        {
            let base = |epilogue, norm, bias| Case {
                shape,
                ty: GgmlType::Q4_1,
                rows: 128,
                cols: 64,
                n_tokens,
                norm,
                bias,
                epilogue,
                logits_from: 0,
                softcap: None,
            };
            check(base(Epilogue::Store, true, false), 200 + i as u64);
            check(base(Epilogue::Add, false, false), 210 + i as u64);
            check(base(Epilogue::SwiGlu, true, false), 220 + i as u64);
            check(base(Epilogue::GeGlu, true, false), 230 + i as u64);
            check(base(Epilogue::Store, true, true), 240 + i as u64);
            check(base(Epilogue::Add, false, true), 250 + i as u64);
            check(base(Epilogue::SwiGluOai, true, true), 260 + i as u64);
            check(base(Epilogue::SwiGlu, false, true), 270 + i as u64);
        }
    }

    #[test]
    fn logits_rows_start_at_logits_from() {
        for (i, (n_tokens, shape)) in [(3, DecodeShape::Split), (9, DecodeShape::Rows)].into_iter().enumerate() {
            let case = Case {
                shape,
                ty: GgmlType::Q8_0,
                rows: 200,
                cols: 64,
                n_tokens,
                norm: true,
                bias: false,
                epilogue: Epilogue::Store,
                logits_from: 2,
                softcap: None,
            };
            check(case, 300 + i as u64);
        }
    }

    /// Q|K|V rows of `heads` from random weights (Q and K in `qk`, V in `v`: two parts when
    /// they differ), with a bias for each row.
    fn qkv_rows(
        heads: &Heads,
        cols: usize,
        (qk, v): (GgmlType, GgmlType),
        rng: &mut rand::rngs::Xoshiro256PlusPlus,
    ) -> (Vec<PackedMatrix>, Vec<f32>) {
        let (q_and_k, kv) = (heads.q_dim() + heads.kv_dim(), heads.kv_dim());
        let (a, b) = (random_tensor(qk, q_and_k, cols, rng), random_tensor(v, kv, cols, rng));
        let sources = [SourceRows { ty: qk, bytes: &a, rows: q_and_k }, SourceRows { ty: v, bytes: &b, rows: kv }];
        (pack_parts(&sources, cols, RowOrder::Concat).unwrap(), random_vec(heads.qkv_dim(), rng))
    }

    /// Row r of parts stacked in order, dequantized.
    fn stacked_rows(parts: &[PackedMatrix]) -> Vec<Vec<f32>> {
        parts.iter().flat_map(|m| (0..m.rows).map(move |r| (0..m.cols).map(|c| m.get(r, c)).collect())).collect()
    }

    #[test]
    fn the_qkv_kernel_writes_rotated_keys_and_values_into_the_cache() {
        use crate::ops::kv_write::{RopeScaling, rope_table, rotate};
        // Partial rotation (24 of 32 dimensions), two KV heads for four query heads.
        let heads = Heads { n_head: 4, n_head_kv: 2, head_dim: 32, rope_dims: 24, neox: false, gated: false };
        let (cols, ctx, pos0, base) = (64, 16, 5, 10000.0);
        let (q, kv) = (heads.q_dim(), heads.kv_dim());
        let (same, mixed) = ((GgmlType::Q8_0, GgmlType::Q8_0), (GgmlType::Q5_0, GgmlType::Q8_0));
        for (i, (shape, n_tokens, bias, types)) in [
            (DecodeShape::Rows, 1, true, same),
            (DecodeShape::Split, 1, false, mixed),
            (DecodeShape::Rows, 6, true, mixed),
            (DecodeShape::Split, 3, false, same),
        ]
        .into_iter()
        .enumerate()
        {
            let mut rng = rng(500 + i as u64);
            let (parts, bias_values) = qkv_rows(&heads, cols, types, &mut rng);
            let w = stacked_rows(&parts);
            let x = random_vec(n_tokens * cols, &mut rng);
            let bias_ref = bias.then_some(&bias_values[..]);
            let y_before = vec![f32::NAN; n_tokens * heads.qkv_dim()];
            let want = reference(&w, &x, n_tokens, None, bias_ref, Epilogue::Store, &y_before);

            let g = gpu();
            let wm = GpuMatrix::upload_parts(g, "w", &parts).unwrap();
            assert_eq!(wm.parts.len(), if types == mixed { 2 } else { 1 });
            let xb = g.activations_with("x", cols, &x).unwrap();
            let yb = poisoned_rows(n_tokens, heads.qkv_dim());
            let bb = g.buffer_with("bias", &bias_values).unwrap();
            let rope = g.buffer_with("rope", &rope_table(ctx, heads.rope_dims, base, RopeScaling::None, &[])).unwrap();
            let empty = vec![0.0; ctx * kv];
            // Float caches: f32, and f16 every other case.
            let kind = if i % 2 == 0 { KvType::F32 } else { KvType::F16 };
            let (k, v) = (kv_with(&empty, kind, &heads), kv_with(&empty, kind, &heads));
            let steps = step_buffers();
            let spec = LinearSpec {
                bias: bias.then_some(&bb),
                shape: Some(shape),
                cache: Some(CacheWrite { heads, rope: &rope, k: &k, v: &v }),
                ..LinearSpec::new(None, Epilogue::Store)
            };
            let op = Linear::new(g, &steps, &wm, &xb, &yb, &spec).unwrap();
            let step = Step { n_tokens: n_tokens as u32, pos0: pos0 as u32, ..Default::default() };
            run(&steps, &[&op], step);

            let what = format!("{shape:?} T={n_tokens} bias={bias} {types:?} {kind:?}");
            // f16 products carry 11-bit mantissas (the sums stay f32).
            let close = |got: &[f32], want: &[f32], what: &str| {
                if g.paths.f16 {
                    assert_close_to_scale(got, want, 1e-2, what)
                } else {
                    assert_close(got, want, 1e-4, what)
                }
            };
            close(&read_rows(&yb, n_tokens), &want, &what);
            let got_k = pollster::block_on(g.read_kv(&k, ctx as u32, heads.head_dim)).unwrap();
            let got_v = pollster::block_on(g.read_kv(&v, ctx as u32, heads.head_dim)).unwrap();
            for t in 0..n_tokens {
                let row = &want[t * heads.qkv_dim()..][..heads.qkv_dim()];
                let mut want_k = row[q..q + kv].to_vec();
                want_k.chunks_mut(heads.head_dim).for_each(|h| rotate(h, pos0 + t, &heads, base));
                let mut want_v = row[q + kv..].to_vec();
                kind.round_trip(&mut want_k, heads.head_dim);
                kind.round_trip(&mut want_v, heads.head_dim);
                let p = pos0 + t;
                // An f16 cache may round the GPU's key, a few bits off the CPU's, the other way.
                let cached = |got: &[f32], want: &[f32], what: &str| match kind {
                    KvType::F16 if !g.paths.f16 => assert_close(got, want, 2e-3, what),
                    _ => close(got, want, what),
                };
                cached(&got_k[p * kv..][..kv], &want_k, &format!("cached k, {what}"));
                cached(&got_v[p * kv..][..kv], &want_v, &format!("cached v, {what}"));
            }
            assert!(got_k[..pos0 * kv].iter().all(|&v| v == 0.0), "positions before pos0 untouched");
            assert!(got_k[(pos0 + n_tokens) * kv..].iter().all(|&v| v == 0.0), "positions after the step untouched");
        }
    }

    #[test]
    fn parts_that_do_not_start_at_an_octet_are_refused_and_so_is_an_embedding_of_parts() {
        let mut rng = rng(610);
        let part = |rows: usize, rng: &mut rand::rngs::Xoshiro256PlusPlus| {
            let bytes = random_tensor(GgmlType::Q8_0, rows, 64, rng);
            pack(&[SourceRows { ty: GgmlType::Q8_0, bytes: &bytes, rows }], 64, RowOrder::Concat).unwrap()
        };
        let g = gpu();
        let odd = [part(12, &mut rng), part(8, &mut rng)];
        let err = GpuMatrix::upload_parts(g, "w", &odd).err().expect("refused").to_string();
        assert!(err.contains("whole octets"), "{err}");

        let two = GpuMatrix::upload_parts(g, "w", &[part(16, &mut rng), part(8, &mut rng)]).unwrap();
        let (ids, out) = (g.buffer_with("ids", &[0u32]).unwrap(), g.activations("x", 1, 64).unwrap());
        let err = crate::ops::embed::Embed::new(g, &step_buffers(), &two, &ids, &out, 1.0).err().expect("refused");
        assert!(err.to_string().contains("2 parts where one was expected"), "{err}");
    }

    #[test]
    fn a_cache_write_with_neox_pairs_or_a_quantized_cache_is_refused() {
        let neox = Heads { n_head: 2, n_head_kv: 1, head_dim: 32, rope_dims: 32, neox: true, gated: false };
        let pairs = Heads { neox: false, ..neox };
        for (heads, kind) in [(neox, KvType::F32), (pairs, KvType::Q8_0)] {
            let (parts, _) = qkv_rows(&heads, 32, (GgmlType::Q8_0, GgmlType::Q8_0), &mut rng(600));
            let g = gpu();
            let w = GpuMatrix::upload_parts(g, "w", &parts).unwrap();
            let (x, y) = (g.activations("x", 1, 32).unwrap(), g.activations("y", 1, heads.qkv_dim()).unwrap());
            let rope = g.buffer_with("rope", &[0.0f32; 64]).unwrap();
            let (k, v) = (kv_with(&[0.0; 64], kind, &heads), kv_with(&[0.0; 64], kind, &heads));
            let spec = LinearSpec {
                cache: Some(CacheWrite { heads, rope: &rope, k: &k, v: &v }),
                ..LinearSpec::new(None, Epilogue::Store)
            };
            let err = Linear::new(g, &step_buffers(), &w, &x, &y, &spec).err().expect("refused").to_string();
            assert!(err.contains("neighbour-pair RoPE and a float cache"), "{err}");
        }
    }
}
