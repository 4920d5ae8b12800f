//! What the tests against the real default model share: the model file (fetched into the cache
//! on first use), one loaded model per test process, and the reference files in tests/fixtures.
#![allow(dead_code)]

pub mod server;

use hearth::generate::{Generation, Session};
use hearth::gpu::{AdapterChoice, Gpu};
use hearth::model::{Model, ModelFile};
use hearth::pull::{NoProgress, resolve_model};
use hearth::quant::GgmlType;
use hearth::sample::{Sampler, SamplerConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

pub fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| resolve_model(None, true, &NoProgress).expect("the default model (hearth pull)")).clone()
}

/// The greedy answer (at most `max_new` tokens) to `prompt`, whose first `cached` ids
/// `session` holds, with how many prompt tokens were processed.
pub fn greedy_answer(
    model: &Arc<Model>,
    session: &mut Session,
    prompt: &[u32],
    cached: usize,
    max_new: usize,
) -> (Vec<u32>, usize) {
    let greedy = Sampler::new(SamplerConfig { temperature: 0.0, ..SamplerConfig::default() });
    let mut generation = Generation::new(prompt, cached, max_new, greedy).unwrap();
    let mut ids = Vec::new();
    while let Some(id) = pollster::block_on(generation.next(session, |t| model.tokenizer.is_eog(t))).unwrap() {
        ids.push(id);
    }
    (ids, generation.stats().prompt_tokens)
}

pub fn model() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    MODEL.get_or_init(|| load(&model_path(), None)).clone()
}

/// The model at `path` (a folder's weights quantized to `quant`) on the adapter the
/// environment chooses.
pub fn load(path: &Path, quant: Option<GgmlType>) -> Arc<Model> {
    let gpu = Arc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).expect("a wgpu adapter"));
    let file = ModelFile::open_as(path, quant).unwrap_or_else(|e| panic!("{} opens: {e}", path.display()));
    Arc::new(Model::load(gpu, &file).unwrap_or_else(|e| panic!("{} loads: {e}", path.display())))
}

/// The `hearth` binary with `args`, as the tests run it.
pub fn hearth_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
    // Without a runtime dir the GL backend prints an error at every start.
    command.args(args).env("XDG_RUNTIME_DIR", std::env::temp_dir());
    command
}

/// Sends `signal` (INT, TERM) to a process, as a terminal or a service manager would, with
/// the shell's own `kill` (no procps package needed).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("sh").args(["-c", &format!("kill -{signal} {pid}")]).status().expect("sh runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A scratch path (file or folder) under the system's temporary directory, removed when
/// dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("hearth-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Scratch(path)
    }

    pub fn file(name: &str, bytes: &[u8]) -> Scratch {
        let scratch = Scratch::new(name);
        std::fs::write(&scratch.0, bytes).unwrap();
        scratch
    }

    pub fn arg(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(name)).expect("fixture is JSON")
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("an array of ids").iter().map(|x| x.as_u64().expect("an id") as u32).collect()
}

/// One reference prompt: llama.cpp's CPU Q4_1 ids, and how many of them every llama.cpp
/// configuration agrees on (greedy_divergence.md).
pub struct ReferencePrompt {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub gen_ids: Vec<u32>,
    pub agreed: usize,
}

/// The first index where any two llama.cpp configurations differ, per prompt, read from the
/// tables of greedy_divergence.md (every cell is "=" or a first-difference index).
fn divergence_points() -> Vec<(String, usize)> {
    let md = fixture("greedy_divergence.md");
    let mut out = Vec::new();
    for section in md.split("\n## '").skip(1) {
        let Some((prompt, body)) = section.split_once("'\n") else { continue };
        let first = body
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| |") && !l.starts_with("| ---"))
            .flat_map(|l| {
                l.split('|').skip(2).take(6).filter_map(|c| c.trim().parse::<usize>().ok()).collect::<Vec<_>>()
            })
            .min()
            .unwrap_or(usize::MAX);
        out.push((prompt.to_string(), first));
    }
    out
}

pub fn reference_prompts() -> Vec<ReferencePrompt> {
    let points = divergence_points();
    json("greedy_q4_1.json")["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let prompt = r["prompt"].as_str().expect("prompt").to_string();
            let gen_ids = ids(&r["gen_ids"]);
            let agreed =
                points.iter().find(|(p, _)| *p == prompt).map(|p| p.1).expect("a divergence table for every prompt");
            ReferencePrompt { prompt_ids: ids(&r["prompt_ids"]), agreed: agreed.min(gen_ids.len()), gen_ids, prompt }
        })
        .collect()
}
