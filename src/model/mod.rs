//! Model files and what they describe: the GGUF container, hyperparameters, weights and the
//! per-family forward graphs.

pub mod arch;
pub mod config;
pub mod file;
pub mod gguf;
pub mod gguf_writer;
#[cfg(not(target_arch = "wasm32"))]
pub mod hf;
pub mod matrix_rows;
pub mod memory;
pub mod reference;
pub mod requantize;
pub mod state;
#[doc(hidden)]
pub mod testing;
pub mod vocab;
pub mod weights;

use crate::Result;
use crate::chat::ChatTemplate;
use crate::gpu::Gpu;
use crate::tokenizer::Tokenizer;
pub use config::ModelConfig;
pub use file::ModelFile;
use std::sync::Arc;

/// A model whose weights are on the GPU, ready for sessions.
pub struct Model {
    pub config: ModelConfig,
    pub gpu: Arc<Gpu>,
    pub(crate) arch: Box<dyn arch::Architecture>,
    pub tokenizer: Tokenizer,
    /// The model's own chat template, if its file has one.
    pub chat_template: Option<ChatTemplate>,
    /// Bytes of weights uploaded to the GPU.
    pub weight_bytes: u64,
    /// Of those, the bytes one token reads: all but the experts it does not use.
    pub active_weight_bytes: u64,
    /// How the model marks reasoning apart from its answer.
    pub reasoning: crate::reasoning::ReasoningFormat,
    grammars: crate::grammar::GrammarCompiler,
}

impl Model {
    /// What the header alone tells before any weight is read (the browser checks it while
    /// the rest of the file is still arriving): hyperparameters hearth can run, weights that
    /// fit the adapter's memory and textures, and activation rows that fit its bindings.
    pub fn check_header(gpu: &Gpu, header: &gguf::GgufHeader) -> Result<ModelConfig> {
        let config = ModelConfig::from_gguf(header)?;
        gpu.check_room_for("the model's weights", weights::planned_bytes(header))?;
        weights::check_textures(gpu, header)?;
        state::rows_per_binding(gpu, &config)?;
        Ok(config)
    }

    /// Checks the hyperparameters, then repacks and uploads every weight.
    pub fn load(gpu: Arc<Gpu>, file: &ModelFile) -> Result<Model> {
        Model::load_in_ranges_of(gpu, file, matrix_rows::RANGE_BYTES)
    }

    /// As `load`, packing and uploading matrices about `range_bytes` at a time (tests make the
    /// ranges small to cross every boundary a large model's would).
    pub fn load_in_ranges_of(gpu: Arc<Gpu>, file: &ModelFile, range_bytes: usize) -> Result<Model> {
        let config = Model::check_header(&gpu, &file.header)?.with_rope_factors(file)?;
        let tokenizer = vocab::tokenizer(&file.header)?;
        let chat_template = vocab::chat_template(&file.header, &tokenizer)?;
        let loader = weights::WeightLoader { range_bytes, ..weights::WeightLoader::new(&gpu, file) };
        let arch = arch::load(&loader, &config)?;
        let weight_bytes = loader.uploaded.get();
        gpu.check().map_err(|e| {
            crate::Error::Gpu(format!("{e} (while uploading {:.1} MB of weights)", weight_bytes as f64 / 1e6))
        })?;
        let expert_bytes = loader.expert_bytes.get();
        let unused_share = config.experts.map_or(0.0, |x| 1.0 - x.used as f64 / x.count as f64);
        let active_weight_bytes = weight_bytes - (expert_bytes as f64 * unused_share) as u64;
        let harmony = arch::family(&config.arch)?.harmony;
        let reasoning = crate::reasoning::ReasoningFormat::detect(&tokenizer, harmony);
        let grammars = crate::grammar::GrammarCompiler::new(config.n_vocab);
        Ok(Model {
            config,
            gpu,
            arch,
            tokenizer,
            chat_template,
            weight_bytes,
            active_weight_bytes,
            reasoning,
            grammars,
        })
    }

    /// A constraint holding generation to `grammar` (see `grammar/`); refused when the grammar
    /// cannot be compiled.
    pub fn constraint(&self, grammar: &crate::grammar::Grammar) -> Result<crate::grammar::Constraint> {
        self.grammars.compile(&self.tokenizer, grammar)
    }
}
