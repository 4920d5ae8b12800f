//! What the tests against the real default model share: the model file (fetched into the cache
//! on first use), one loaded model per test process, and the reference files in tests/fixtures.
#![allow(dead_code)]

use hearth::gpu::{AdapterChoice, Gpu};
use hearth::model::{Model, ModelFile};
use hearth::pull::{NoProgress, resolve_model};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| resolve_model(None, true, &NoProgress).expect("the default model (hearth pull)")).clone()
}

pub fn model() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    MODEL.get_or_init(|| load(&model_path())).clone()
}

/// The model at `path` on the adapter the environment chooses.
pub fn load(path: &Path) -> Arc<Model> {
    let gpu = Arc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).expect("a wgpu adapter"));
    let file = ModelFile::open(path).unwrap_or_else(|e| panic!("{} opens: {e}", path.display()));
    Arc::new(Model::load(gpu, &file).unwrap_or_else(|e| panic!("{} loads: {e}", path.display())))
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
