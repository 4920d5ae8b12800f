//! `hearth bench`: llama-bench's measurements (prompt processing of `p` tokens, generation of
//! `n` tokens one at a time, each from an empty cache or after `d` tokens already in it,
//! warm-up excluded, repeated), with a roofline measured on the adapter itself beside every
//! figure.

#[cfg(not(target_arch = "wasm32"))]
pub mod chart;
pub mod compare;
pub mod profile;
pub mod report;
pub mod roofline;

use crate::generate::{Batch, Session};
use crate::gpu::KvType;
use crate::model::gguf::Value;
use crate::model::state::SessionOptions;
use crate::model::{Model, ModelFile};
use crate::quant::ggml_type::file_type_name;
use crate::{Error, Result};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;
use web_time::Instant;

/// One test: `n_prompt` tokens processed as a prompt, or `n_gen` generated one by one, after
/// `n_depth` tokens already in the cache (llama-bench's `-d`); generation in `n_parallel`
/// sequences decoded together (llama-batched-bench's parallel prompts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Test {
    pub n_prompt: usize,
    pub n_gen: usize,
    pub n_depth: usize,
    pub n_parallel: usize,
    /// How the KV cache stores keys and values.
    pub kv: KvType,
}

impl Test {
    /// As llama-bench names it: `pp512`, `tg128`, `pp512 @ d2048`; `tg128 x8` for 8 sequences;
    /// `tg128 kv q8_0` for a KV cache of another type than the default.
    pub fn name(&self) -> String {
        let mut name = if self.n_gen == 0 { format!("pp{}", self.n_prompt) } else { format!("tg{}", self.n_gen) };
        if self.n_parallel > 1 {
            name += &format!(" x{}", self.n_parallel);
        }
        if self.n_depth > 0 {
            name += &format!(" @ d{}", self.n_depth);
        }
        if self.kv != KvType::default() {
            name += &format!(" kv {}", self.kv.name());
        }
        name
    }

    /// The positions one sequence's test takes.
    fn tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }

    /// The tokens timed, all sequences together.
    fn timed_tokens(&self) -> usize {
        self.tokens() * self.n_parallel.max(1)
    }
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub prompts: Vec<usize>,
    pub gens: Vec<usize>,
    /// Tokens in the cache before each test (each test runs at every depth).
    pub depths: Vec<usize>,
    /// Sequences decoded together in generation tests (each runs at every count).
    pub parallel: Vec<usize>,
    /// KV cache types (every test runs with each).
    pub kv_types: Vec<KvType>,
    pub reps: usize,
    /// Prompt tokens per forward step.
    pub batch: usize,
}

impl Plan {
    pub fn tests(&self) -> Vec<Test> {
        let depths = if self.depths.is_empty() { &[0][..] } else { &self.depths[..] };
        let parallel = if self.parallel.is_empty() { &[1][..] } else { &self.parallel[..] };
        let kv_types = if self.kv_types.is_empty() { &[KvType::default()][..] } else { &self.kv_types[..] };
        kv_types
            .iter()
            .flat_map(|&kv| {
                let pp = self.prompts.iter().filter(|&&p| p > 0).flat_map(move |&n_prompt| {
                    depths.iter().map(move |&n_depth| Test { n_prompt, n_gen: 0, n_depth, n_parallel: 1, kv })
                });
                let tg = self.gens.iter().filter(|&&n| n > 0).flat_map(move |&n_gen| {
                    parallel.iter().flat_map(move |&n_parallel| {
                        depths.iter().map(move |&n_depth| Test { n_prompt: 0, n_gen, n_depth, n_parallel, kv })
                    })
                });
                pp.chain(tg)
            })
            .collect()
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
        let tokens = self.test.timed_tokens() as f64;
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

/// Fills the cache with the test's depth of `tokens`, untimed, a batch at a time (telling
/// `progress` how far it is): kept from the run before where the memory can come back to
/// them. Whether it had to process any.
async fn fill_depth(
    session: &mut Session,
    test: Test,
    tokens: &[u32],
    progress: &mut impl FnMut(&str),
) -> Result<bool> {
    let depth = test.n_depth;
    if depth == 0 {
        for seq in 0..test.n_parallel.max(1) {
            session.reset_sequence(seq);
        }
        return Ok(false);
    }
    let kept = session.reuse_prefix(&tokens[..=depth]);
    if kept == depth {
        return Ok(false);
    }
    let batch = session.options().batch;
    for start in (kept..depth).step_by(batch) {
        let end = (start + batch).min(depth);
        session.next_greedy(&tokens[start..end]).await?;
        progress(&format!("{}: {end}/{depth} tokens in the cache", test.name()));
    }
    session.checkpoint();
    Ok(true)
}

/// One timed run (after its depth is in the cache): its wall time and its host time, in ns.
async fn run_once(session: &mut Session, test: Test, tokens: &[u32]) -> Result<(u64, u64)> {
    let depth = test.n_depth;
    let host_before = session.host_ns();
    let started = Instant::now();
    if test.n_prompt > 0 {
        session.next_greedy(&tokens[depth..depth + test.n_prompt]).await?;
    } else if test.n_parallel > 1 {
        // Each sequence from a token of its own.
        let mut next: Vec<(usize, u32)> =
            (0..test.n_parallel).map(|s| (s, tokens[(depth + s) % tokens.len()])).collect();
        for _ in 0..test.n_gen {
            let ids = session.decode_greedy(Batch::decode(&next)).await?;
            for (entry, id) in next.iter_mut().zip(ids) {
                entry.1 = id;
            }
        }
    } else {
        let mut next = tokens[depth];
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
    if tests.iter().any(|t| t.n_parallel == 0 || (t.n_parallel > 1 && t.n_depth > 0)) {
        return Err(Error::Input(
            "sequences decoded together (--parallel) must be at least 1, and more than 1 at depth 0 only (-d)".into(),
        ));
    }
    let sequences = tests.iter().map(|t| t.n_parallel).max().unwrap_or(1);
    let ctx = tests.iter().map(|t| t.n_depth + t.tokens()).max().unwrap_or(1) + 1;
    if ctx > model.config.n_ctx_train {
        progress(&format!(
            "note: a test needs {ctx} tokens of context (depth, prompt and generated tokens), beyond the {} the \
             model was trained for (timed all the same)",
            model.config.n_ctx_train
        ));
    }
    let batch = plan.batch.max(1).min(ctx);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let vocab = model.config.n_vocab as u32;
    let tokens: Vec<u32> = (0..ctx).map(|_| rng.random_range(0..vocab)).collect();
    let mut out = Vec::with_capacity(tests.len());
    // One session per KV cache type, made when its first test comes (tests come grouped by it).
    let mut current: Option<(KvType, Session)> = None;
    for test in tests {
        if current.as_ref().map(|(kv, _)| *kv) != Some(test.kv) {
            drop(current.take()); // the last type's caches go before the next ones are made
            let options = SessionOptions { ctx, batch, logit_rows: 1, kv: test.kv };
            let session = Session::with_sequences(model.clone(), options, sequences)?;
            progress(&format!(
                "a session of {ctx} tokens, {} KV cache: {:.1} MB per sequence (caches and recurrent states), {:.1} MB in all",
                test.kv.name(),
                session.memory_bytes() as f64 / 1e6,
                session.gpu_bytes() as f64 / 1e6
            ));
            current = Some((test.kv, session));
        }
        let Some((_, session)) = current.as_mut() else { continue };
        if test.n_depth > 0 {
            progress(&format!("{}: filling the cache with {} tokens", test.name(), test.n_depth));
        }
        fill_depth(session, test, &tokens, &mut progress).await?;
        progress(&format!("{}: warm-up", test.name()));
        run_once(session, test, &tokens).await?;
        let (mut samples_ns, mut host_ns) = (Vec::with_capacity(plan.reps), Vec::with_capacity(plan.reps));
        for rep in 0..plan.reps {
            if fill_depth(session, test, &tokens, &mut progress).await? {
                progress(&format!("{}: filled the cache again (its memory cannot come back)", test.name()));
            }
            progress(&format!("{}: run {}/{}", test.name(), rep + 1, plan.reps));
            let (wall, host) = run_once(session, test, &tokens).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::{AdapterChoice, Gpu};
    use crate::model::testing::TinyLlama;

    fn session(spec: TinyLlama) -> Session {
        let gpu = Arc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).expect("an adapter"));
        let model = Model::load(gpu, &ModelFile::from_bytes(spec.to_gguf()).expect("a file")).expect("a model");
        Session::new(Arc::new(model), SessionOptions { ctx: 64, batch: 8, logit_rows: 1, kv: Default::default() })
            .expect("a session")
    }

    #[test]
    fn each_test_runs_at_every_depth_named_as_llama_bench_names_it() {
        let plan = Plan {
            prompts: vec![16, 0],
            gens: vec![4],
            depths: vec![0, 32],
            parallel: vec![],
            kv_types: vec![],
            reps: 1,
            batch: 8,
        };
        let names: Vec<String> = plan.tests().iter().map(Test::name).collect();
        assert_eq!(names, ["pp16", "pp16 @ d32", "tg4", "tg4 @ d32"]);
        assert_eq!(Plan { depths: vec![], ..plan.clone() }.tests().len(), 2, "no depth given: from an empty cache");
        let parallel = Plan { depths: vec![], parallel: vec![1, 8], ..plan.clone() };
        let names: Vec<String> = parallel.tests().iter().map(Test::name).collect();
        assert_eq!(names, ["pp16", "tg4", "tg4 x8"], "sequences together: generation only");
        let kv = Plan { depths: vec![], kv_types: vec![KvType::F16, KvType::Q8_0], ..plan };
        let names: Vec<String> = kv.tests().iter().map(Test::name).collect();
        assert_eq!(names, ["pp16", "tg4", "pp16 kv q8_0", "tg4 kv q8_0"], "each type's tests together");
    }

    #[test]
    fn a_test_at_depth_runs_after_its_depth_which_later_repetitions_keep() {
        let tokens: Vec<u32> = (0..64).map(|i| 3 + (i * 7) % 250).collect();
        // Full attention, and rings of a 4-token window (which come back through the checkpoint).
        let windows = TinyLlama {
            arch: "gpt-oss",
            experts: Some((4, 2)),
            tied: false,
            sliding_window: Some(4),
            head_dim: Some(32),
            ..Default::default()
        };
        for spec in [TinyLlama::default(), windows] {
            let mut session = session(spec);
            let pp = Test { n_prompt: 12, n_gen: 0, n_depth: 20, n_parallel: 1, kv: KvType::F16 };
            assert!(
                pollster::block_on(fill_depth(&mut session, pp, &tokens, &mut |_| ())).unwrap(),
                "the first fill processes"
            );
            pollster::block_on(run_once(&mut session, pp, &tokens)).unwrap();
            // The prompt went in after the depth, as one sequence of the tokens.
            assert_eq!(session.held_prefix(0, &tokens), 32);
            assert!(
                !pollster::block_on(fill_depth(&mut session, pp, &tokens, &mut |_| ())).unwrap(),
                "kept for the next run"
            );
            assert_eq!(session.position(), 20);
            let tg = Test { n_prompt: 0, n_gen: 3, n_depth: 20, n_parallel: 1, kv: KvType::F16 };
            pollster::block_on(run_once(&mut session, tg, &tokens)).unwrap();
            assert_eq!((session.position(), session.held_prefix(0, &tokens)), (23, 21));
            let empty = Test { n_prompt: 12, n_gen: 0, n_depth: 0, n_parallel: 1, kv: KvType::F16 };
            pollster::block_on(fill_depth(&mut session, empty, &tokens, &mut |_| ())).unwrap();
            assert_eq!(session.position(), 0);
        }
    }

    #[test]
    fn sequences_decoded_together_each_take_their_tokens() {
        let tokens: Vec<u32> = (0..64).map(|i| 3 + (i * 7) % 250).collect();
        let gpu = Arc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).expect("an adapter"));
        let model = Model::load(gpu, &ModelFile::from_bytes(TinyLlama::default().to_gguf()).expect("a file")).unwrap();
        let options = SessionOptions { ctx: 64, batch: 8, logit_rows: 1, kv: Default::default() };
        let mut session = Session::with_sequences(Arc::new(model), options, 3).unwrap();
        let tg = Test { n_prompt: 0, n_gen: 5, n_depth: 0, n_parallel: 3, kv: KvType::F16 };
        pollster::block_on(fill_depth(&mut session, tg, &tokens, &mut |_| ())).unwrap();
        pollster::block_on(run_once(&mut session, tg, &tokens)).unwrap();
        let positions: Vec<usize> = (0..3).map(|s| session.position_of(s)).collect();
        assert_eq!(positions, [5, 5, 5]);
        // Each from a token of its own.
        let firsts: Vec<usize> = (0..3).map(|s| session.held_prefix(s, &tokens[s..s + 1])).collect();
        assert_eq!(firsts, [1, 1, 1]);
        pollster::block_on(fill_depth(&mut session, tg, &tokens, &mut |_| ())).unwrap();
        assert_eq!((0..3).map(|s| session.position_of(s)).sum::<usize>(), 0, "a new run starts them all over");
    }
}
