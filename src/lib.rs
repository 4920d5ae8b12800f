//! hearth: open-weight language models on the GPU a person already owns, through WGSL compute
//! shaders on wgpu. See docs/ARCHITECTURE.md for the path of one token through this crate.

pub mod bench;
pub mod chat;
pub mod conversation;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod gpu;
pub mod grammar;
pub mod logprobs;
pub mod model;
pub mod ops;
pub mod perplexity;
pub mod prompt;
#[cfg(not(target_arch = "wasm32"))]
pub mod pull;
pub mod quant;
pub mod reasoning;
pub mod sample;
#[cfg(not(target_arch = "wasm32"))]
pub mod serve;
pub mod tokenizer;

pub use error::{Error, Result};
