//! The default model (SmolLM2-135M-Instruct Q4_1) against independent references: llama.cpp's
//! tokenizer ids and greedy continuations, an exact float32 forward pass, and llama-perplexity.

mod common;

use common::*;
use hearth::generate::{Session, generate};
use hearth::model::state::SessionOptions;
use hearth::perplexity::perplexity;
use hearth::sample::{Sampler, SamplerConfig};

#[test]
fn tokenizer_ids_equal_llama_tokenize() {
    let model = model();
    for p in reference_prompts() {
        assert_eq!(model.tokenizer.encode(&p.prompt, true, true).unwrap(), p.prompt_ids, "{:?}", p.prompt);
    }
}

fn greedy(prompt_ids: &[u32], n: usize) -> Vec<u32> {
    let model = model();
    let mut session = Session::new(model.clone(), SessionOptions { ctx: 256, batch: 64, logit_rows: 1 }).unwrap();
    let mut out = Vec::new();
    let mut sampler = Sampler::new(SamplerConfig::greedy());
    let tok = &model.tokenizer;
    pollster::block_on(generate(
        &mut session,
        prompt_ids,
        n,
        &mut sampler,
        |t| tok.is_eog(t),
        |id| {
            out.push(id);
            true
        },
    ))
    .unwrap();
    out
}

#[test]
fn greedy_ids_equal_llama_cpp_and_the_float32_reference() {
    let exact = json("greedy_f32_reference.json");
    let exact = exact["results"].as_array().unwrap();
    for p in reference_prompts() {
        let got = greedy(&p.prompt_ids, 32);
        let n = p.agreed;
        assert_eq!(
            got.get(..n),
            p.gen_ids.get(..n),
            "{:?}: llama.cpp's ids up to its own first divergence ({n})",
            p.prompt
        );

        // Before its first near-tie (top-2 margin < 0.1) the exact reference leaves no choice.
        let r = exact.iter().find(|r| r["prompt"] == p.prompt.as_str()).unwrap();
        let ref_ids = ids(&r["ref_ids"]);
        let sure = r["first_step_margin_lt_0.1"].as_u64().map_or(ref_ids.len(), |s| s as usize);
        let sure = sure.min(ref_ids.len());
        // The reference lists an end-of-generation token as its last id; generation stops there.
        let want: Vec<u32> = ref_ids[..sure].iter().copied().take_while(|&t| !model().tokenizer.is_eog(t)).collect();
        assert_eq!(&got[..want.len()], &want[..], "{:?}: float32 reference up to step {sure}", p.prompt);
    }
}

fn parse_figure(text: &str, after: &str) -> f64 {
    let start = text.find(after).unwrap_or_else(|| panic!("{after:?} in the reference")) + after.len();
    let number: String = text[start..].trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    number.parse().unwrap()
}

#[test]
fn perplexity_at_ctx_128_matches_llama_perplexity() {
    let model = model();
    let text = fixture("ppl_text.txt");
    let tokens = model.tokenizer.encode(&text, true, false).unwrap();
    assert_eq!(tokens.len(), 2537, "the reference tokenizes the text to 2,537 tokens");
    let mut session = Session::new(model, SessionOptions { ctx: 128, batch: 128, logit_rows: 64 }).unwrap();
    let result = pollster::block_on(perplexity(&mut session, &tokens, 128, None, None, |_, _| {})).unwrap();

    // llama-perplexity's Q4_1 figure (its first "Final estimate"), and the exact-math figure.
    let llama = parse_figure(&fixture("perplexity_c128.md"), "Final estimate: PPL =");
    let exact = parse_figure(json("greedy_f32_reference.json")["reference"].as_str().unwrap(), "ctx 128 is");
    assert_eq!(result.running.len(), 19);
    assert!((result.ppl - llama).abs() / llama < 0.01, "PPL {} vs llama.cpp {llama}", result.ppl);
    assert!((result.ppl - exact).abs() / exact < 0.001, "PPL {} vs exact {exact}", result.ppl);
}
