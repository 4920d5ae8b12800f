//! Structured output on the default model: whatever the model would rather say, a generation
//! held to a JSON schema or a grammar gives text that parses and validates, greedy (masked on
//! the GPU) and sampled (masked on the CPU), and ends where the grammar is complete.

mod common;

use hearth::generate::{Generation, Session, StopReason};
use hearth::grammar::Grammar;
use hearth::model::Model;
use hearth::model::state::SessionOptions;
use hearth::prompt::encode_user_prompt;
use hearth::sample::{Sampler, SamplerConfig};
use serde_json::{Value, json};
use std::sync::Arc;

/// The text generated for `prompt` under `grammar`, and why generation stopped.
fn constrained(model: &Arc<Model>, prompt: &str, grammar: &Grammar, sampler: SamplerConfig) -> (String, StopReason) {
    let options = SessionOptions { ctx: 512, batch: 64, logit_rows: 1, kv: Default::default() };
    let mut session = Session::new(model.clone(), options).unwrap();
    let ids = encode_user_prompt(model, prompt, None).unwrap();
    let mut generation = Generation::new(&ids, 0, 120, Sampler::new(sampler)).unwrap();
    generation.constrain(model.constraint(grammar).unwrap());
    let mut out = Vec::new();
    while let Some(id) = pollster::block_on(generation.next(&mut session, |t| model.tokenizer.is_eog(t))).unwrap() {
        out.push(id);
    }
    (model.tokenizer.decode(&out).unwrap(), generation.stats().stop)
}

fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "city": {"enum": ["Paris", "Oslo", "Lima"]}
        },
        "required": ["name", "age", "city"],
        "additionalProperties": false
    })
}

/// Checks `text` against `person_schema` by hand.
fn assert_person(text: &str) {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
    let object = value.as_object().unwrap_or_else(|| panic!("{text:?} is not an object"));
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 3, "{text}");
    assert!(object["name"].as_str().is_some_and(|n| n.chars().count() <= 12), "{text}");
    assert!(object["age"].as_u64().is_some_and(|a| a <= 120), "{text}");
    assert!(["Paris", "Oslo", "Lima"].contains(&object["city"].as_str().unwrap_or("")), "{text}");
}

#[test]
fn greedy_and_sampled_answers_follow_a_json_schema() {
    let model = common::model();
    let grammar = Grammar::JsonSchema(person_schema());
    let prompt = "Describe a person.";
    let (text, stop) = constrained(&model, prompt, &grammar, SamplerConfig::greedy());
    assert_person(&text);
    assert_eq!(stop, StopReason::EndOfGeneration, "{text}");
    for seed in 1..=3 {
        let sampler = SamplerConfig { temperature: 1.5, top_k: 0, top_p: 1.0, min_p: 0.0, seed, ..Default::default() };
        let (text, _) = constrained(&model, prompt, &grammar, sampler);
        assert_person(&text);
    }
    // Unconstrained, the same model says something else entirely.
    let ids = encode_user_prompt(&model, prompt, None).unwrap();
    let mut session =
        Session::new(model.clone(), SessionOptions { ctx: 512, batch: 64, logit_rows: 1, kv: Default::default() })
            .unwrap();
    let (free, _) = common::greedy_answer(&model, &mut session, &ids, 0, 16);
    assert!(serde_json::from_str::<Value>(&model.tokenizer.decode(&free).unwrap()).is_err());
}

#[test]
fn json_object_and_lark_grammars_hold_and_bad_ones_are_refused() {
    let model = common::model();
    let (text, _) = constrained(&model, "Say hello.", &Grammar::JsonObject, SamplerConfig::greedy());
    assert!(serde_json::from_str::<Value>(&text).is_ok_and(|v| v.is_object()), "{text:?}");

    let lark = Grammar::Lark("start: answer \".\"\nanswer: \"yes\" | \"no\"".into());
    let (text, stop) = constrained(&model, "Is the sky green?", &lark, SamplerConfig::greedy());
    assert!(text == "yes." || text == "no.", "{text:?}");
    assert_eq!(stop, StopReason::EndOfGeneration);

    for bad in [
        Grammar::Lark("start: (".into()),
        Grammar::JsonSchema(json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}})),
    ] {
        let refused = model.constraint(&bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("cannot be used"), "{bad:?}: {refused}");
    }
}
