//! Conversations across turns on the default model: the second turn reuses the KV cache of the
//! first (processing only its new tokens) and answers exactly as a fresh session given the whole
//! conversation would; a full context drops the oldest exchanges and keeps the system prompt.

mod common;

use hearth::conversation::Conversation;
use hearth::generate::Session;
use hearth::model::Model;
use hearth::model::state::SessionOptions;
use std::sync::Arc;

fn answer(model: &Arc<Model>, session: &mut Session, prompt: &[u32], cached: usize) -> (Vec<u32>, usize) {
    common::greedy_answer(model, session, prompt, cached, 16)
}

#[test]
fn a_second_turn_processes_only_its_new_tokens_and_answers_as_a_fresh_session() {
    let model = common::model();
    let options = SessionOptions { ctx: 512, batch: 64, logit_rows: 1, kv: Default::default() };
    let mut session = Session::new(model.clone(), options).unwrap();
    let mut chat = Conversation::new(Some("You are brief.".into()));

    let first = chat.ask(&model, "What is the capital of France?", 512, 16).unwrap();
    let cached = session.reuse_prefix(&first.ids);
    assert_eq!(cached, 0);
    let (ids, _) = answer(&model, &mut session, &first.ids, cached);
    chat.answer(&model.tokenizer.decode(&ids).unwrap());

    let second = chat.ask(&model, "And of Germany?", 512, 16).unwrap();
    let cached = session.reuse_prefix(&second.ids);
    assert!(cached >= first.ids.len(), "the first turn's prompt stays cached ({cached} of {})", first.ids.len());
    let (reused, processed) = answer(&model, &mut session, &second.ids, cached);
    assert_eq!(processed, second.ids.len() - cached);

    let mut fresh = Session::new(model.clone(), options).unwrap();
    let (whole, processed_fresh) = answer(&model, &mut fresh, &second.ids, 0);
    assert_eq!(processed_fresh, second.ids.len());
    assert_eq!(reused, whole, "the cached turn answers as a fresh session does");
}

#[test]
fn a_full_context_drops_the_oldest_exchanges_and_keeps_the_system_prompt() {
    let model = common::model();
    let mut chat = Conversation::new(Some("You are brief.".into()));
    let mut dropped = 0;
    for i in 0..12 {
        let turn = chat.ask(&model, &format!("Tell me fact number {i} about lighthouses."), 160, 32).unwrap();
        assert!(turn.ids.len() + 32 <= 160);
        dropped += turn.dropped;
        chat.answer("Lighthouses guide ships safely along dangerous coasts at night.");
    }
    assert!(dropped > 0, "twelve exchanges do not fit 160 tokens");
    assert_eq!(chat.messages[0].role, "user", "whole exchanges are dropped");
    assert!(chat.to_json().contains("You are brief."));

    let before = chat.messages.clone();
    let err = chat.ask(&model, &"word ".repeat(400), 160, 32).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("raise --ctx"), "{err}");
    assert_eq!(chat.messages, before, "a message that cannot fit changes nothing");
}

#[test]
fn with_context_shift_the_turns_kept_after_dropped_ones_come_from_the_cache() {
    let model = common::model();
    let options = SessionOptions { ctx: 160, batch: 64, logit_rows: 1, kv: Default::default() };
    let mut session = Session::new(model.clone(), options).unwrap();
    assert!(session.allow_cache_moves(true), "SmolLM2's layers all keep every position");
    let mut chat = Conversation::new(Some("You are brief.".into()));
    let mut moved = 0;
    for i in 0..6 {
        let turn = chat.ask(&model, &format!("Tell me fact number {i} about lighthouses."), 160, 32).unwrap();
        let start = session.held_prefix(0, &turn.ids);
        let cached = session.reuse_prefix(&turn.ids);
        if turn.dropped > 0 {
            // All but the new message: the system prompt as it was, the rest moved back.
            assert!(cached > start + 32, "turn {i}: {cached} cached, {start} shared from the start");
            moved += 1;
        }
        let (ids, processed) = answer(&model, &mut session, &turn.ids, cached);
        assert_eq!(processed, turn.ids.len() - cached);
        assert!(!ids.is_empty());
        chat.answer("Lighthouses guide ships safely along dangerous coasts at night.");
    }
    assert!(moved > 0, "six exchanges do not fit 160 tokens");
}
