//! The default model (SmolLM2-135M-Instruct Q4_1) against independent references: llama.cpp's
//! tokenizer ids, and llama-perplexity and an exact float32 forward pass for perplexity.
//! (Greedy continuations are checked on every adapter, in adapters.rs.)

mod common;

use common::*;
use hearth::generate::Session;
use hearth::gpu::KvType;
use hearth::model::state::SessionOptions;
use hearth::perplexity::perplexity;

#[test]
fn tokenizer_ids_equal_llama_tokenize() {
    let model = model();
    for p in reference_prompts() {
        assert_eq!(model.tokenizer.encode(&p.prompt, true, true).unwrap(), p.prompt_ids, "{:?}", p.prompt);
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
    let options = SessionOptions { ctx: 128, batch: 128, logit_rows: 64, kv: KvType::F16 };
    let mut session = Session::new(model.clone(), options).unwrap();
    let result = pollster::block_on(perplexity(&mut session, &tokens, 128, None, None, |_, _| {})).unwrap();

    // llama-perplexity's Q4_1 figure (its first "Final estimate"), and the exact-math figure.
    let llama = parse_figure(&fixture("perplexity_c128.md"), "Final estimate: PPL =");
    let exact = parse_figure(json("greedy_f32_reference.json")["reference"].as_str().unwrap(), "ctx 128 is");
    assert_eq!(result.running.len(), 19);
    assert!((result.ppl - llama).abs() / llama < 0.01, "PPL {} vs llama.cpp {llama}", result.ppl);
    assert!((result.ppl - exact).abs() / exact < 0.001, "PPL {} vs exact {exact}", result.ppl);
}

#[test]
fn a_q8_0_cache_costs_under_a_thousandth_of_the_f16_caches_perplexity() {
    // Whole text: 24.8968 against 24.8870; here the first four chunks against f16's figure
    // over the same four.
    let model = model();
    let text = fixture("ppl_text.txt");
    let tokens = model.tokenizer.encode(&text, true, false).unwrap();
    let [f16, q8] = [KvType::F16, KvType::Q8_0].map(|kv| {
        let options = SessionOptions { ctx: 128, batch: 128, logit_rows: 64, kv };
        let mut session = Session::new(model.clone(), options).unwrap();
        pollster::block_on(perplexity(&mut session, &tokens, 128, None, Some(4), |_, _| {})).unwrap().ppl
    });
    assert!((q8 - f16).abs() / f16 < 0.001, "q8_0 KV: PPL {q8} vs f16's {f16}");
}
