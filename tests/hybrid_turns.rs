//! Chat turns on a hybrid recurrent model (a random `qwen35` with a ChatML template), whose
//! delta-net states cannot be rewound: the next turn resumes from the state checkpointed after
//! the last prompt instead of starting over, in `hearth chat`'s conversation and in
//! `hearth serve`, and answers exactly as a fresh session given the whole conversation does.

mod common;

use common::server::Server;
use common::{Scratch, greedy_answer};
use hearth::conversation::Conversation;
use hearth::generate::Session;
use hearth::model::state::SessionOptions;
use hearth::model::testing::TinyLlama;
use hearth::ops::delta_net::DeltaShape;

const CHATML: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

fn hybrid_model() -> Scratch {
    let spec = TinyLlama {
        arch: "qwen35",
        n_layer: 4,
        n_head: 2,
        n_head_kv: 1,
        head_dim: Some(32),
        rope_dims: Some(16),
        delta_net: Some(DeltaShape { key_heads: 1, value_heads: 2, head: 32, conv: 4 }),
        // States that still remember the last turn's prompt after the next one's new tokens.
        state_decay: 0.01,
        chat_template: Some(CHATML),
        seed: 27,
        ..Default::default()
    };
    Scratch::file("hybrid.gguf", &spec.to_gguf())
}

#[test]
fn a_chat_turn_resumes_the_recurrent_state_and_answers_as_a_fresh_session() {
    let file = hybrid_model();
    let model = common::load(&file.0, None);
    // Prompts of about 90 tokens: two steps of chunks each.
    let options = SessionOptions { ctx: 256, batch: 64, logit_rows: 1, kv: Default::default() };
    let mut session = Session::new(model.clone(), options).unwrap();
    let mut chat = Conversation::new(Some("You are brief.".into()));

    let first = chat.ask(&model, "What is the capital of France?", 256, 12).unwrap();
    assert_eq!(session.reuse_prefix(&first.ids), 0);
    let (ids, _) = greedy_answer(&model, &mut session, &first.ids, 0, 12);
    chat.answer(&model.tokenizer.decode(&ids).unwrap());

    let second = chat.ask(&model, "And of Germany?", 256, 12).unwrap();
    let cached = session.reuse_prefix(&second.ids);
    assert!(cached >= first.ids.len(), "the first turn's prompt is resumed ({cached} of {})", first.ids.len());
    let (resumed, processed) = greedy_answer(&model, &mut session, &second.ids, cached, 12);
    assert_eq!(processed, second.ids.len() - cached);

    let mut fresh = Session::new(model.clone(), options).unwrap();
    let (whole, _) = greedy_answer(&model, &mut fresh, &second.ids, 0, 12);
    assert!(!whole.is_empty());
    assert_eq!(resumed, whole, "the resumed state answers as a fresh session does");
}

#[test]
fn a_server_conversation_resumes_the_recurrent_state_and_answers_as_from_scratch() {
    let file = hybrid_model();
    let server = Server::start_with(&file.0, &[]);
    let ask = |messages: serde_json::Value| {
        let body = serde_json::json!({"messages": messages, "temperature": 0, "max_tokens": 6});
        let cached_before = server.health()["prompt_tokens_cached"].as_u64().expect("a count");
        let (status, reply) = server.json("/v1/chat/completions", &body.to_string());
        assert_eq!(status, 200, "{reply}");
        let cached = server.health()["prompt_tokens_cached"].as_u64().expect("a count") - cached_before;
        let content = reply["choices"][0]["message"]["content"].as_str().expect("an answer").to_string();
        (content, reply["usage"]["prompt_tokens"].as_u64().expect("a count"), cached)
    };
    let question = serde_json::json!({"role": "user", "content": "What is the capital of France?"});
    let (answer, first_prompt, _) = ask(serde_json::json!([question]));
    let next_turn = serde_json::json!([
        question,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "And of Germany?"}]);
    let (resumed, _, cached) = ask(next_turn.clone());
    assert!(cached >= first_prompt, "{cached} of the first turn's {first_prompt} prompt tokens resumed");

    // Another conversation in between: the next turn's state cannot come back, so it starts over.
    ask(serde_json::json!([{"role": "user", "content": "Name a colour."}]));
    let (from_scratch, _, cached) = ask(next_turn);
    assert_eq!(cached, 0, "nothing of another conversation's state is reused");
    assert_eq!(resumed, from_scratch, "the resumed state answers as a fresh one does");
}
