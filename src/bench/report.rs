//! Benchmark results as records (fields named as llama-bench names them where they mean the
//! same, so tools that read llama-bench's JSON read hearth's), and their markdown, JSON and CSV
//! forms.

use super::roofline::Roofline;
use super::{Measured, ModelSummary, Test, mean_sd};
use crate::model::Model;
use crate::model::memory::LayerMemory;
use serde::{Deserialize, Serialize};

/// Everything about the run that is the same for every test.
pub struct RunInfo {
    pub model: ModelSummary,
    pub adapter: String,
    pub driver: String,
    pub backend: String,
    pub paths: String,
    pub os: String,
    pub roofline: Roofline,
    /// Bytes of weights read per generated token.
    pub weight_bytes: u64,
    pub batch: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchRecord {
    pub hearth_version: String,
    pub test_time: String,
    pub model_filename: String,
    pub model_type: String,
    pub model_size: u64,
    pub model_n_params: u64,
    pub model_sha256: String,
    pub quant: String,
    pub backends: String,
    pub gpu_info: String,
    pub driver: String,
    pub paths: String,
    pub os: String,
    pub n_batch: usize,
    pub n_prompt: usize,
    pub n_gen: usize,
    /// Tokens already in the cache when the test ran (0 in files from before it).
    #[serde(default)]
    pub n_depth: usize,
    /// Sequences decoded together (0 in files from before it: one).
    #[serde(default)]
    pub n_parallel: usize,
    /// The KV cache's key and value types, as llama-bench names them (empty in files from
    /// before them, whose caches were f32).
    #[serde(default)]
    pub type_k: String,
    #[serde(default)]
    pub type_v: String,
    pub test: String,
    pub avg_ns: u64,
    pub stddev_ns: u64,
    pub avg_ts: f64,
    pub stddev_ts: f64,
    pub samples_ns: Vec<u64>,
    pub samples_ts: Vec<f64>,
    pub copy_gbps: f64,
    pub stream_gbps: f64,
    pub stream_shape: String,
    /// Fixed cost of one small dispatch on this adapter, in µs (0 in files from before it).
    #[serde(default)]
    pub dispatch_us: f64,
    /// Bytes read per generated token (weights and the average KV cache); 0 for prompt tests.
    pub bytes_per_token: u64,
    pub effective_gbps: f64,
    pub pct_copy: f64,
    pub pct_stream: f64,
    /// Arithmetic rate of prompt processing; 0 for generation tests.
    pub gflops: f64,
    /// Dispatches in one generated token's step; 0 for prompt tests (and older files).
    #[serde(default)]
    pub dispatches_per_token: u32,
    /// Host (CPU) time per generated token spent recording and submitting its step, apart
    /// from waiting for the GPU, in ms; 0 for prompt tests (and older files).
    #[serde(default)]
    pub host_ms_per_token: f64,
}

/// Floating-point operations to process a prompt of `p` tokens after `depth` in the cache
/// (matrices and attention; the head only for the last token, as a prompt needs).
fn prompt_flops(model: &Model, p: usize, depth: usize) -> f64 {
    let c = &model.config;
    let per_token: usize = (0..c.n_layer)
        .map(|l| c.n_embd * c.heads(l).qkv_dim() + c.heads(l).q_dim() * c.n_embd + 3 * c.n_embd * c.ffn_width(l))
        .sum();
    let attention: usize = (0..c.n_layer).map(|l| 4 * c.heads(l).q_dim() * (p * depth + p * (p + 1) / 2)).sum();
    2.0 * (p * per_token) as f64 + 2.0 * (c.n_vocab * c.n_embd) as f64 + attention as f64
}

/// Bytes read per token by a generation test of `n` tokens after `depth` in the cache, in `parallel`
/// sequences at once: every weight (once per step, so shared by the sequences), and the keys
/// and values each layer attends to, on average over the `n` steps (for full attention, the
/// depth and half the generated tokens; at most the window for a sliding-window layer; a
/// recurrent state read and written back).
fn generation_bytes(model: &Model, info: &RunInfo, test: &Test) -> u64 {
    let (n, depth, parallel, kv) = (test.n_gen, test.n_depth, test.n_parallel, test.kv);
    let c = &model.config;
    let memory: u64 = (0..c.n_layer)
        .map(|l| {
            let heads = c.heads(l);
            let per_position = 2 * kv.row_bytes(heads.n_head_kv, heads.head_dim);
            let seen = |w: usize| (0..n).map(|i| (depth + i + 1).min(w)).sum::<usize>() as u64 * per_position;
            match c.layer_memory(l) {
                LayerMemory::Keys => seen(usize::MAX),
                LayerMemory::Window(w) => seen(w),
                // The state is read and written back at every token.
                LayerMemory::Recurrent(s) => {
                    let (conv, matrices) = s.state_floats();
                    2 * (conv + matrices) as u64 * 4 * n as u64
                }
            }
        })
        .sum();
    info.weight_bytes / parallel.max(1) as u64 + memory / n.max(1) as u64
}

pub fn record(model: &Model, info: &RunInfo, m: &Measured, test_time: &str) -> BenchRecord {
    let samples_ts = m.samples_ts();
    let (avg_ts, stddev_ts) = mean_sd(&samples_ts);
    let ns: Vec<f64> = m.samples_ns.iter().map(|&v| v as f64).collect();
    let (avg_ns, stddev_ns) = mean_sd(&ns);
    let r = &info.roofline;
    let (bytes_per_token, gflops) = if m.test.n_gen > 0 {
        (generation_bytes(model, info, &m.test), 0.0)
    } else {
        (0, prompt_flops(model, m.test.n_prompt, m.test.n_depth) / (avg_ns / 1e9) / 1e9)
    };
    let effective_gbps = bytes_per_token as f64 * avg_ts / 1e9;
    let pct = |of: f64| if of > 0.0 { 100.0 * effective_gbps / of } else { 0.0 };
    BenchRecord {
        hearth_version: env!("CARGO_PKG_VERSION").to_string(),
        test_time: test_time.to_string(),
        model_filename: info.model.filename.clone(),
        model_type: info.model.model_type(),
        model_size: info.model.size,
        model_n_params: info.model.n_params,
        model_sha256: info.model.sha256.clone(),
        quant: info.model.quant.clone(),
        backends: info.backend.clone(),
        gpu_info: info.adapter.clone(),
        driver: info.driver.clone(),
        paths: info.paths.clone(),
        os: info.os.clone(),
        n_batch: info.batch,
        n_prompt: m.test.n_prompt,
        n_gen: m.test.n_gen,
        n_depth: m.test.n_depth,
        n_parallel: m.test.n_parallel,
        type_k: m.test.kv.name().into(),
        type_v: m.test.kv.name().into(),
        test: m.test.name(),
        avg_ns: avg_ns as u64,
        stddev_ns: stddev_ns as u64,
        avg_ts,
        stddev_ts,
        samples_ns: m.samples_ns.clone(),
        samples_ts,
        copy_gbps: r.copy_gbps,
        stream_gbps: r.stream_gbps,
        stream_shape: r.stream_shape.clone(),
        dispatch_us: r.dispatch_us,
        bytes_per_token,
        effective_gbps,
        pct_copy: if bytes_per_token > 0 { pct(r.copy_gbps) } else { 0.0 },
        pct_stream: if bytes_per_token > 0 { pct(r.stream_gbps) } else { 0.0 },
        gflops,
        dispatches_per_token: if m.test.n_gen > 0 { m.dispatches } else { 0 },
        host_ms_per_token: if m.test.n_gen > 0 {
            m.host_ns.iter().sum::<u64>() as f64 / 1e6 / (m.host_ns.len().max(1) * m.test.timed_tokens()) as f64
        } else {
            0.0
        },
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

pub fn markdown(records: &[BenchRecord]) -> String {
    let mut out = String::new();
    if let Some(r) = records.first() {
        out += &format!(
            "adapter: {} ({}, {}) — roofline: copy {:.2} GB/s (read + written), streaming read {:.2} GB/s ({}), {:.1} µs per dispatch\n\n",
            r.gpu_info, r.driver, r.paths, r.copy_gbps, r.stream_gbps, r.stream_shape, r.dispatch_us
        );
    }
    out += "| model | size | params | quant | backend | adapter | driver | test | t/s | GB/s | % copy | % stream | GFLOP/s | dispatches/token | host ms/token |\n";
    out += "| --- | ---: | ---: | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for r in records {
        let (gbps, copy, stream, gflops, dispatches, host) = if r.n_gen > 0 {
            (
                format!("{:.2}", r.effective_gbps),
                format!("{:.0}%", r.pct_copy),
                format!("{:.0}%", r.pct_stream),
                "-".into(),
                r.dispatches_per_token.to_string(),
                format!("{:.2}", r.host_ms_per_token),
            )
        } else {
            ("-".into(), "-".into(), "-".into(), format!("{:.1}", r.gflops), "-".into(), "-".into())
        };
        out += &format!(
            "| {} | {} | {:.1} M | {} | {} | {} | {} | {} | {:.2} ± {:.2} | {gbps} | {copy} | {stream} | {gflops} | {dispatches} | {host} |\n",
            r.model_type,
            human_size(r.model_size),
            r.model_n_params as f64 / 1e6,
            r.quant,
            r.backends,
            r.gpu_info,
            r.driver,
            r.test,
            r.avg_ts,
            r.stddev_ts
        );
    }
    out
}

pub fn json(records: &[BenchRecord]) -> String {
    serde_json::to_string_pretty(records).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

const CSV_FIELDS: &[&str] = &[
    "hearth_version",
    "test_time",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "model_sha256",
    "quant",
    "backends",
    "gpu_info",
    "driver",
    "paths",
    "os",
    "n_batch",
    "n_prompt",
    "n_gen",
    "n_depth",
    "n_parallel",
    "type_k",
    "type_v",
    "test",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "copy_gbps",
    "stream_gbps",
    "stream_shape",
    "dispatch_us",
    "bytes_per_token",
    "effective_gbps",
    "pct_copy",
    "pct_stream",
    "gflops",
    "dispatches_per_token",
    "host_ms_per_token",
];

pub fn csv(records: &[BenchRecord]) -> String {
    let quote = |v: &serde_json::Value| -> String {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
    };
    let mut out = CSV_FIELDS.join(",") + "\n";
    for r in records {
        let v = serde_json::to_value(r).unwrap_or_default();
        let row: Vec<String> = CSV_FIELDS.iter().map(|f| quote(&v[*f])).collect();
        out += &(row.join(",") + "\n");
    }
    out
}
