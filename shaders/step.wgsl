// What changes from one forward step to the next, written once per step (src/ops/mod.rs: Step).
struct Step {
    // Tokens in this step's batch (1 when decoding).
    n_tokens: u32,
    // Position of the batch's first token in the sequence.
    pos0: u32,
    // First token whose logits are wanted (the LM head skips the others).
    logits_from: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
