//! Greedy output of the default model on every adapter this machine shows (lavapipe, GL on
//! llvmpipe, SwiftShader with VK_ICD_FILENAMES listing it): on each, llama.cpp's ids up to where
//! llama.cpp's own configurations disagree, and the exact float32 reference's ids up to its
//! first near-tie. Where adapters differ from the reference later, the test reports where and
//! by how much the reference's top two logits were apart there.

mod common;

use common::*;
use hearth::generate::Session;
use hearth::gpu::{AdapterChoice, Gpu, list_adapters};
use hearth::model::state::SessionOptions;
use hearth::model::{Model, ModelFile};
use std::sync::Arc;

fn greedy(model: &Arc<Model>, prompt: &[u32]) -> Vec<u32> {
    let mut session =
        Session::new(model.clone(), SessionOptions { ctx: 256, batch: 64, logit_rows: 1, kv: Default::default() })
            .unwrap();
    greedy_answer(model, &mut session, prompt, 0, 32).0
}

#[test]
fn every_adapter_matches_the_references_up_to_their_near_ties() {
    let env = AdapterChoice::from_env();
    let adapters = pollster::block_on(list_adapters(&AdapterChoice { device: None, ..env.clone() })).unwrap();
    let exact = json("greedy_f32_reference.json");
    let exact = exact["results"].as_array().unwrap().clone();
    let file = ModelFile::open(&model_path()).unwrap();
    let mut report = Vec::new();
    for a in &adapters {
        let choice = AdapterChoice { device: Some(a.index.to_string()), ..env.clone() };
        let gpu = Arc::new(pollster::block_on(Gpu::new(&choice)).unwrap());
        let name = format!("{} ({}, {})", a.info.name, a.info.backend, gpu.paths.describe());
        let model = Arc::new(Model::load(gpu, &file).unwrap());
        for p in reference_prompts() {
            let got = greedy(&model, &p.prompt_ids);
            let n = p.agreed;
            assert_eq!(got.get(..n), p.gen_ids.get(..n), "{name}, {:?}: llama.cpp's ids up to {n}", p.prompt);

            let r = exact.iter().find(|r| r["prompt"] == p.prompt.as_str()).unwrap();
            let ref_ids = ids(&r["ref_ids"]);
            let margins: Vec<f64> = r["ref_margins"].as_array().unwrap().iter().map(|m| m.as_f64().unwrap()).collect();
            let sure = r["first_step_margin_lt_0.1"].as_u64().map_or(ref_ids.len(), |s| s as usize);
            let differs = got.iter().zip(&ref_ids).position(|(a, b)| a != b);
            match differs {
                Some(i) => {
                    assert!(
                        i >= sure,
                        "{name}, {:?}: differs from the float32 reference at step {i}, before its first near-tie ({sure})",
                        p.prompt
                    );
                    report.push(format!("{name}, {:?}: first differs from the float32 reference at step {i}, where its top two logits are {:.3} apart", p.prompt, margins[i]));
                }
                None => report.push(format!(
                    "{name}, {:?}: equal to the float32 reference for all {} steps",
                    p.prompt,
                    got.len()
                )),
            }
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(!adapters.is_empty());
}
