//! `hearth bench`: llama-bench's measurements (prompt processing of `p` tokens, generation of
//! `n` tokens one at a time, each from an empty cache, warm-up excluded, repeated), with a
//! roofline measured on the adapter itself beside every figure.

#[cfg(not(target_arch = "wasm32"))]
pub mod chart;
pub mod compare;
pub mod profile;
pub mod report;
pub mod roofline;

use crate::generate::Session;
use crate::model::gguf::Value;
use crate::model::state::SessionOptions;
use crate::model::{Model, ModelFile};
use crate::quant::ggml_type::file_type_name;
use crate::{Error, Result};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;
use web_time::Instant;

/// One test: `n_prompt` tokens processed as a prompt, or `n_gen` generated one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Test {
    pub n_prompt: usize,
    pub n_gen: usize,
}

impl Test {
    pub fn name(&self) -> String {
        if self.n_gen == 0 { format!("pp{}", self.n_prompt) } else { format!("tg{}", self.n_gen) }
    }
    fn tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub prompts: Vec<usize>,
    pub gens: Vec<usize>,
    pub reps: usize,
    /// Prompt tokens per forward step.
    pub batch: usize,
}

impl Plan {
    pub fn tests(&self) -> Vec<Test> {
        let pp = self.prompts.iter().filter(|&&p| p > 0).map(|&p| Test { n_prompt: p, n_gen: 0 });
        let tg = self.gens.iter().filter(|&&n| n > 0).map(|&n| Test { n_prompt: 0, n_gen: n });
        pp.chain(tg).collect()
    }
}

pub struct Measured {
    pub test: Test,
    pub samples_ns: Vec<u64>,
    /// Host time (recording and submitting steps) of each sample, in ns.
    pub host_ns: Vec<u64>,
    /// Dispatches of the test's last step (one token's, for generation).
    pub dispatches: u32,
}

impl Measured {
    pub fn samples_ts(&self) -> Vec<f64> {
        let tokens = self.test.tokens() as f64;
        self.samples_ns.iter().map(|&ns| tokens / (ns as f64 / 1e9)).collect()
    }
}

/// Mean and sample standard deviation.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// One timed run: its wall time and its host time, in ns.
async fn run_once(session: &mut Session, test: Test, tokens: &[u32]) -> Result<(u64, u64)> {
    session.reset();
    let host_before = session.host_ns();
    let started = Instant::now();
    if test.n_prompt > 0 {
        session.next_greedy(&tokens[..test.n_prompt]).await?;
    } else {
        let mut next = tokens[0];
        for _ in 0..test.n_gen {
            next = session.next_greedy(&[next]).await?;
        }
    }
    Ok((started.elapsed().as_nanos() as u64, session.host_ns() - host_before))
}

/// Runs every test of `plan` (one warm-up run each, then `reps` timed ones), telling `progress`
/// what it is doing.
pub async fn run(model: &Arc<Model>, plan: &Plan, mut progress: impl FnMut(&str)) -> Result<Vec<Measured>> {
    let tests = plan.tests();
    if tests.is_empty() || plan.reps == 0 {
        return Err(Error::Input("nothing to measure: give -p and/or -n sizes above 0, and -r of at least 1".into()));
    }
    let ctx = tests.iter().map(|t| t.tokens()).max().unwrap_or(1) + 1;
    let batch = plan.batch.max(1).min(ctx);
    let mut session = Session::new(model.clone(), SessionOptions { ctx, batch, logit_rows: 1 })?;
    progress(&format!(
        "a session of {ctx} tokens: {:.1} MB per sequence (caches and recurrent states), {:.1} MB in all",
        session.memory_bytes() as f64 / 1e6,
        session.gpu_bytes() as f64 / 1e6
    ));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let vocab = model.config.n_vocab as u32;
    let tokens: Vec<u32> = (0..ctx).map(|_| rng.random_range(0..vocab)).collect();
    let mut out = Vec::with_capacity(tests.len());
    for test in tests {
        progress(&format!("{}: warm-up", test.name()));
        run_once(&mut session, test, &tokens).await?;
        let (mut samples_ns, mut host_ns) = (Vec::with_capacity(plan.reps), Vec::with_capacity(plan.reps));
        for rep in 0..plan.reps {
            progress(&format!("{}: run {}/{}", test.name(), rep + 1, plan.reps));
            let (wall, host) = run_once(&mut session, test, &tokens).await?;
            samples_ns.push(wall);
            host_ns.push(host);
        }
        out.push(Measured { test, samples_ns, host_ns, dispatches: session.last_dispatches() });
    }
    Ok(out)
}

/// What a report says about the model file.
#[derive(Clone, Debug)]
pub struct ModelSummary {
    pub filename: String,
    /// Bytes of tensor data.
    pub size: u64,
    pub n_params: u64,
    /// The file's quantization mix (`general.file_type`, e.g. Q4_K_M), else the tensor type
    /// holding the most bytes.
    pub quant: String,
    pub arch: String,
    pub sha256: String,
}

impl ModelSummary {
    pub fn of(filename: &str, file: &ModelFile, model: &Model, sha256: String) -> ModelSummary {
        let mut by_type: std::collections::HashMap<String, u64> = Default::default();
        for t in &file.header.tensors {
            *by_type.entry(t.ty.to_string()).or_default() += t.n_bytes;
        }
        let largest = by_type.into_iter().max_by_key(|(_, b)| *b).map(|(t, _)| t).unwrap_or_default();
        let named = file.header.get("general.file_type").and_then(Value::as_u64).and_then(file_type_name);
        let quant = named.map_or(largest, str::to_string);
        ModelSummary {
            filename: filename.to_string(),
            size: file.header.tensors.iter().map(|t| t.n_bytes).sum(),
            n_params: model.config.n_params(),
            quant,
            arch: model.config.arch.clone(),
            sha256,
        }
    }

    /// llama-bench's model_type: architecture, size and quantization.
    pub fn model_type(&self) -> String {
        format!("{} {:.0}M {}", self.arch, self.n_params as f64 / 1e6, self.quant)
    }
}
