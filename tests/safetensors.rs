//! The Hugging Face folder path against the GGUF one: the default model and Gemma 3 written out
//! as folders of float safetensors shards (their dequantized weights in Hugging Face's
//! conventions: Llama's Q/K rows in rotate-half order, Gemma's norms without their 1, a
//! tokenizer.json written from the GGUF vocabulary) and loaded back must tokenize the same and
//! give the same logits — exactly the same weights with `--quant f32`, near them with the
//! default Q8_0.

mod common;

use common::{Scratch, load};

use hearth::generate::Session;
use hearth::model::hf::export::write_folder;
use hearth::model::state::SessionOptions;
use hearth::model::{Model, ModelFile};
use hearth::quant::GgmlType;
use safetensors::Dtype;
use std::path::Path;
use std::sync::Arc;

/// Logits of every position of `tokens`, one row per position.
fn logits(model: &Arc<Model>, tokens: &[u32]) -> Vec<Vec<f32>> {
    let options = SessionOptions { ctx: 64, batch: 32, logit_rows: 32, kv: Default::default() };
    let mut session = Session::new(model.clone(), options).unwrap();
    let all = pollster::block_on(session.logits_from(tokens, 0)).unwrap();
    all.chunks(model.config.n_vocab).map(<[f32]>::to_vec).collect()
}

/// The largest difference between two runs' logits, relative to the largest logit.
fn largest_difference(got: &[Vec<f32>], want: &[Vec<f32>]) -> f32 {
    let scale = want.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = got.iter().flatten().zip(want.iter().flatten()).fold(0.0f32, |m, (g, w)| m.max((g - w).abs()));
    diff / scale
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0)
}

#[test]
fn a_folder_written_from_the_default_model_runs_like_it() {
    let gguf_path = common::model_path();
    let dir = Scratch::new("folder");
    write_folder(&ModelFile::open(&gguf_path).unwrap(), &dir.0, Dtype::F32, 2).unwrap();
    assert!(dir.0.join("model-00002-of-00002.safetensors").exists());

    let gguf = common::model();
    let exact = load(&dir.0, Some(GgmlType::F32));
    assert_eq!(exact.config, gguf.config);
    let prompt = &common::reference_prompts()[0];
    let tokens = exact.tokenizer.encode(&prompt.prompt, true, true).unwrap();
    assert_eq!(tokens, prompt.prompt_ids, "the folder's tokenizer.json gives llama.cpp's ids");
    assert_eq!(exact.chat_template.is_some(), gguf.chat_template.is_some());

    // The prompt and llama.cpp's continuation: every position's logits.
    let tokens: Vec<u32> = tokens.iter().chain(&prompt.gen_ids).copied().collect();
    let want = logits(&gguf, &tokens);
    let same = largest_difference(&logits(&exact, &tokens), &want);
    assert!(same < 2e-3, "F32 folder vs GGUF: logits differ by {same} of the largest");

    // Q8_0 re-quantizes the dequantized Q4_1 weights: close, not equal.
    let q8 = load(&dir.0, None);
    let got = logits(&q8, &tokens);
    let near = largest_difference(&got, &want);
    assert!(near < 5e-2, "Q8_0 folder vs GGUF: logits differ by {near} of the largest");
    let agree = got.iter().zip(&want).filter(|(g, w)| argmax(g) == argmax(w)).count();
    assert!(agree * 10 >= want.len() * 9, "Q8_0 folder: top tokens agree at {agree} of {} positions", want.len());
    eprintln!("F32 folder: {same:.2e}; Q8_0 folder: {near:.2e}, top-1 agreement {agree}/{}", want.len());
}

#[test]
fn a_gemma_folder_runs_like_its_gguf() {
    let gguf_path = hearth::pull::resolve_model(Some("gemma3-270m-q4_k_m"), true, &hearth::pull::NoProgress)
        .expect("hearth pull gemma3");
    let dir = Scratch::new("gemma-folder");
    write_folder(&ModelFile::open(&gguf_path).unwrap(), &dir.0, Dtype::F32, 3).unwrap();
    let (gguf, folder) = (load(&gguf_path, None), load(&dir.0, Some(GgmlType::F32)));
    assert_eq!(folder.config, gguf.config);

    let reference = &common::json("gemma3/greedy_llamacpp.json")["results"][0];
    let prompt = reference["prompt"].as_str().expect("a prompt");
    let tokens = folder.tokenizer.encode(prompt, true, true).unwrap();
    assert_eq!(tokens, common::ids(&reference["prompt_ids"]), "the SentencePiece tokenizer.json gives llama.cpp's ids");
    let tokens: Vec<u32> = tokens.into_iter().chain(common::ids(&reference["gen_ids"])).collect();
    let same = largest_difference(&logits(&folder, &tokens), &logits(&gguf, &tokens));
    assert!(same < 2e-3, "F32 Gemma folder vs GGUF: logits differ by {same} of the largest");
}

#[test]
fn broken_folders_are_refused_with_the_reason() {
    let dir = Scratch::new("broken");
    std::fs::create_dir_all(&dir.0).unwrap();
    let open = |dir: &Path| ModelFile::open(dir).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(open(&dir.0).contains("config.json"), "{}", open(&dir.0));
    write_folder(&ModelFile::open(&common::model_path()).unwrap(), &dir.0, Dtype::BF16, 1).unwrap();
    assert!(ModelFile::open(&dir.0).is_ok());

    let shard = dir.0.join("model-00001-of-00001.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    assert!(open(&dir.0).contains("not a valid safetensors file"), "{}", open(&dir.0));
    std::fs::write(&shard, &bytes).unwrap();

    let config = dir.0.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"llama\"", "\"mamba\"")).unwrap();
    assert!(open(&dir.0).contains("mamba"), "{}", open(&dir.0));
    std::fs::write(&config, &text).unwrap();

    let quant = ModelFile::open_as(&common::model_path(), Some(GgmlType::Q8_0)).err().map(|e| e.to_string());
    assert!(quant.unwrap_or_default().contains("applies to Hugging Face folders"));
}
