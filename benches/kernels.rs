//! Kernel micro-benchmarks at SmolLM2-135M's shapes: time per dispatch and achieved GB/s of
//! weight reads, as a share of the adapter's own copy and shader-streaming bandwidth (measured
//! first, as `hearth bench` does), on the adapter hearth picks (HEARTH_DEVICE / HEARTH_BACKEND
//! to choose). Then a Qwen 3.5 delta-net layer's recurrence: time per token one token per step
//! (decode) and in one step of BENCH_TOKENS (the chunked rule). Then attention of a prompt of
//! BENCH_TOKENS at SmolLM2-135M's heads after 0 and 2048 cached positions, through the flash
//! kernel and the per-token one, interleaved.
//!
//!     cargo bench --bench kernels [-- FILTER]

use hearth::gpu::{AdapterChoice, Gpu, KvType};
use hearth::ops::attention::{Attention, AttentionOptions};
use hearth::ops::delta_net::{DeltaBuffers, DeltaNet, DeltaShape, DeltaState, DeltaWeights};
use hearth::ops::kv_write::{RopeScaling, rope_table};
use hearth::ops::linear::{Epilogue, GpuMatrix, Linear, LinearSpec};
use hearth::ops::{Heads, Op, Step, StepBuffers};
use hearth::quant::GgmlType;
use hearth::quant::testing::{random_tensor, random_vec};
use hearth::quant::{RowOrder, SourceRows, pack};
use rand::SeedableRng;
use std::time::Instant;

struct Shape {
    name: &'static str,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    epilogue: Epilogue,
    norm: bool,
}

const SHAPES: &[Shape] = &[
    Shape { name: "qkv", ty: GgmlType::Q4_1, rows: 960, cols: 576, epilogue: Epilogue::Store, norm: true },
    Shape { name: "attn_out", ty: GgmlType::Q4_1, rows: 576, cols: 576, epilogue: Epilogue::Add, norm: false },
    Shape { name: "gate_up", ty: GgmlType::Q4_1, rows: 3072, cols: 576, epilogue: Epilogue::SwiGlu, norm: true },
    Shape { name: "down", ty: GgmlType::Q4_1, rows: 576, cols: 1536, epilogue: Epilogue::Add, norm: false },
    Shape { name: "lm_head", ty: GgmlType::Q8_0, rows: 49152, cols: 576, epilogue: Epilogue::Store, norm: true },
    // Gemma 3 270M Q4_K_M's own types at its shapes.
    Shape { name: "g3_gate_up", ty: GgmlType::Q5_0, rows: 4096, cols: 640, epilogue: Epilogue::GeGlu, norm: true },
    Shape { name: "g3_down", ty: GgmlType::Q6K, rows: 640, cols: 2048, epilogue: Epilogue::Store, norm: false },
    Shape { name: "g3_attn_out", ty: GgmlType::Q4K, rows: 640, cols: 1024, epilogue: Epilogue::Store, norm: false },
];

fn time_op(gpu: &Gpu, op: &dyn Op, step: Step, steps: &StepBuffers, reps: usize) -> f64 {
    let run = |n: usize| {
        let ops: Vec<&dyn Op> = (0..n).map(|_| op).collect();
        let commands = steps.record(gpu, &ops, &step, &step.one_sequence_rows()).unwrap();
        gpu.queue.submit([commands]);
        gpu.wait().unwrap();
    };
    run(2);
    let started = Instant::now();
    run(reps);
    started.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let gpu = pollster::block_on(Gpu::new(&AdapterChoice::from_env())).expect("an adapter");
    println!("adapter: {} ({:?})", gpu.info.name, gpu.info.backend);
    let roof = hearth::bench::roofline::measure(&gpu).expect("the roofline");
    println!(
        "roofline: copy {:.2} GB/s (read + written), streaming read {:.2} GB/s ({}), {:.1} µs per dispatch",
        roof.copy_gbps, roof.stream_gbps, roof.stream_shape, roof.dispatch_us
    );
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(1);
    let tokens: usize = std::env::var("BENCH_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    println!(
        "{:<10} {:>6} {:>12} {:>10} {:>14} {:>7} {:>9} {:>25} {:>12}",
        "kernel",
        "type",
        "shape",
        "µs/token1",
        "GB/s (decode)",
        "% copy",
        "% stream",
        "% stream, net of dispatch",
        "GFLOP/s (T)"
    );
    for s in SHAPES {
        if filter.as_deref().is_some_and(|f| !s.name.contains(f)) {
            continue;
        }
        let bytes = random_tensor(s.ty, s.rows, s.cols, &mut rng);
        let order = if s.epilogue.is_gated() { RowOrder::Interleave } else { RowOrder::Concat };
        let packed = pack(&[SourceRows { ty: s.ty, bytes: &bytes, rows: s.rows }], s.cols, order).unwrap();
        let w = GpuMatrix::upload(&gpu, s.name, &packed).unwrap();
        let x = gpu.activations_with("x", s.cols, &random_vec(tokens * s.cols, &mut rng)).unwrap();
        let out_width = if s.epilogue.is_gated() { s.rows / 2 } else { s.rows };
        let y = gpu.activations("y", tokens, out_width).unwrap();
        let gamma = gpu.buffer_with("g", &random_vec(s.cols, &mut rng)).unwrap();
        let steps = StepBuffers::new(&gpu, tokens, 4 * (tokens + 1)).unwrap();
        let spec = LinearSpec::new(s.norm.then_some((&gamma, 1e-5)), s.epilogue);
        let op = Linear::new(&gpu, &steps, &w, &x, &y, &spec).unwrap();
        let single = time_op(&gpu, &op, Step { n_tokens: 1, ..Default::default() }, &steps, 50);
        let batch = time_op(&gpu, &op, Step { n_tokens: tokens as u32, ..Default::default() }, &steps, 3);
        let gbs = bytes.len() as f64 / single / 1e9;
        // The same read rate without the adapter's fixed cost per dispatch: what the kernel
        // itself achieves, apart from what fusing dispatches could recover.
        let net_gbs = bytes.len() as f64 / (single - roof.dispatch_us * 1e-6).max(1e-9) / 1e9;
        let gflops = 2.0 * (s.rows * s.cols * tokens) as f64 / batch / 1e9;
        println!(
            "{:<10} {:>6} {:>12} {:>10.1} {:>14.2} {:>6.0}% {:>8.0}% {:>24.0}% {:>12.2}",
            s.name,
            s.ty.to_string(),
            format!("{}x{}", s.rows, s.cols),
            single * 1e6,
            gbs,
            100.0 * gbs / roof.copy_gbps,
            100.0 * gbs / roof.stream_gbps,
            100.0 * net_gbs / roof.stream_gbps,
            gflops
        );
    }
    if filter.as_deref().is_none_or(|f| "delta_net".contains(f)) {
        bench_delta_net(&gpu, tokens, &mut rng);
    }
    if filter.as_deref().is_none_or(|f| "attention".contains(f)) {
        bench_attention(&gpu, tokens, &mut rng);
    }
}

/// A prompt step's attention, one layer of SmolLM2-135M's heads, after `depth` cached
/// positions, flash and per-token kernels interleaved (the best of three rounds each); then a
/// decoding token's at the end of that context, for each KV cache type.
fn bench_attention(gpu: &Gpu, tokens: usize, rng: &mut rand::rngs::Xoshiro256PlusPlus) {
    let heads = Heads { n_head: 9, n_head_kv: 3, head_dim: 64, rope_dims: 64, neox: false, gated: false };
    for depth in [0, 2048] {
        let positions = depth + tokens;
        let qkv = gpu.activations_with("qkv", heads.qkv_dim(), &random_vec(tokens * heads.qkv_dim(), rng)).unwrap();
        let rope =
            gpu.buffer_with("rope", &rope_table(positions, heads.rope_dims, 1e4, RopeScaling::None, &[])).unwrap();
        let out = gpu.activations("out", tokens, heads.q_dim()).unwrap();
        let steps = StepBuffers::new(gpu, tokens, 4).unwrap();
        let step = Step { n_tokens: tokens as u32, pos0: depth as u32, ..Default::default() };
        let decode = Step { n_tokens: 1, pos0: (positions - 1) as u32, ..Default::default() };
        let mut decode_ms = Vec::new();
        for kind in KvType::ALL {
            let data = random_vec(positions * heads.kv_dim(), rng);
            let cache = || gpu.kv_texture_holding("kv", kind, heads.n_head_kv, heads.head_dim, &data).unwrap();
            let (k, v) = (cache(), cache());
            let op = |flash| {
                let options = AttentionOptions { flash, ..Default::default() };
                Attention::new(gpu, &steps, heads, 0.125, &qkv, &rope, &k, &v, &out, options).unwrap()
            };
            let (flash, per_token) = (op(true), op(false));
            let (mut best_flash, mut best_per_token, mut best_decode) = (f64::MAX, f64::MAX, f64::MAX);
            for _ in 0..3 {
                if kind == KvType::default() {
                    best_per_token = best_per_token.min(time_op(gpu, &per_token, step, &steps, 2));
                }
                best_flash = best_flash.min(time_op(gpu, &flash, step, &steps, 2));
                best_decode = best_decode.min(time_op(gpu, &per_token, decode, &steps, 8));
            }
            decode_ms.push(format!("{} {:.2}", kind.name(), best_decode * 1e3));
            // Query-key pairs the causal mask keeps, each a dot product and a weighted sum of a head.
            let pairs = (tokens * depth + tokens * (tokens + 1) / 2) as f64;
            let flop = pairs * heads.n_head as f64 * heads.head_dim as f64 * 4.0;
            let versus = if kind == KvType::default() {
                format!(
                    ", per-token {:.1} ms ({:.2} GFLOP/s): flash {:.2}x",
                    best_per_token * 1e3,
                    flop / best_per_token / 1e9,
                    best_per_token / best_flash
                )
            } else {
                String::new()
            };
            println!(
                "attention {tokens} tokens @ depth {depth}, {} KV: flash {:.1} ms ({:.2} GFLOP/s){versus}",
                kind.name(),
                best_flash * 1e3,
                flop / best_flash / 1e9
            );
        }
        println!("attention of one decoding token after {positions} positions, ms: {}", decode_ms.join(", "));
    }
}

/// Qwen3.5-0.8B's delta-net geometry, one step of `tokens` (chunked) against as many one-token
/// steps.
fn bench_delta_net(gpu: &Gpu, tokens: usize, rng: &mut rand::rngs::Xoshiro256PlusPlus) {
    let shape = DeltaShape { key_heads: 16, value_heads: 16, head: 128, conv: 4 };
    let buffers = DeltaBuffers::new(gpu, &shape, tokens).unwrap();
    let proj = random_vec(tokens * buffers.proj.stride, rng);
    gpu.queue.write_buffer(&buffers.proj.buffer, 0, bytemuck::cast_slice(&proj));
    let mut decay = random_vec(shape.value_heads, rng);
    decay.extend(random_vec(shape.value_heads, rng).iter().map(|a| -a.exp()));
    let conv = gpu.buffer_with("conv", &random_vec(shape.channels() * shape.conv, rng)).unwrap();
    let decay = gpu.buffer_with("decay", &decay).unwrap();
    let gamma = gpu.buffer_with("gamma", &random_vec(shape.head, rng)).unwrap();
    let weights = DeltaWeights { conv: &conv, decay: &decay, gamma: &gamma };
    let state = DeltaState::new(gpu, &shape).unwrap();
    let steps = StepBuffers::new(gpu, tokens, 4 * (tokens + 1)).unwrap();
    let op = DeltaNet::new(gpu, &steps, shape, 1e-6, &buffers, &weights, &state).unwrap();
    let single = time_op(gpu, &op, Step { n_tokens: 1, ..Default::default() }, &steps, tokens.min(64));
    let batch = time_op(gpu, &op, Step { n_tokens: tokens as u32, ..Default::default() }, &steps, 2) / tokens as f64;
    let out = pollster::block_on(gpu.read_activations(&buffers.out, tokens)).unwrap();
    assert!(out.iter().all(|x| x.is_finite()), "the delta rule's outputs are not all finite");
    println!(
        "delta_net {}x{} heads of {}: µs per token, one-token steps {:.1}, steps of {tokens} {:.1} ({:.2}x)",
        shape.key_heads,
        shape.value_heads,
        shape.head,
        single * 1e6,
        batch * 1e6,
        single / batch
    );
}
