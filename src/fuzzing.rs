//! What each fuzz target (fuzz/fuzz_targets/) does with its bytes, shared with the test that
//! replays the kept corpora and crashes (tests/fuzz_corpus.rs). Every entry point takes any
//! bytes at all and must return: no panic, no hang, no allocation beyond what the input
//! justifies.

use crate::model::config::ModelConfig;
use crate::model::file::ModelFile;
use crate::model::hf::{config, shards};
use crate::model::{vocab, weights};
use crate::quant::dequantize;
use crate::tokenizer::{Tokenizer, hf_json};

/// Text every tokenizer built from fuzzed input encodes and decodes again.
const SAMPLE: &str = "Hello world <|im_start|>user 1234 ça va? \n\n  end</s>";

fn exercise(tok: &Tokenizer) {
    for parse_special in [false, true] {
        if let Ok(ids) = tok.encode(SAMPLE, true, parse_special) {
            let _ = tok.decode(&ids);
        }
    }
}

/// A GGUF file: the header, the configuration and vocabulary it describes, and the values of
/// its smaller tensors.
pub fn gguf(data: &[u8]) {
    let Ok(file) = ModelFile::from_bytes(data.to_vec()) else { return };
    let _ = ModelConfig::from_gguf(&file.header);
    let _ = weights::planned_bytes(&file.header);
    // Building the tokenizer (a millisecond, mostly its regexes) is the tokenizer target's job;
    // here, reading the vocabulary out of the metadata.
    let _ = vocab::vocab_spec(&file.header);
    for t in file.header.tensors.iter().filter(|t| t.n_bytes <= 1 << 16) {
        if let Ok(bytes) = file.data(t) {
            let _ = dequantize(t.ty, &bytes);
        }
    }
}

/// A Hugging Face folder's parts, separated by 0xFF bytes (which UTF-8 text never holds):
/// config.json, model.safetensors.index.json and a safetensors file.
pub fn hf_folder(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let text = |p: Option<&[u8]>| String::from_utf8_lossy(p.unwrap_or_default()).into_owned();
    let (config_json, index_json) = (text(parts.next()), text(parts.next()));
    let _ = config::parse(&config_json);
    let _ = shards::index_files(&index_json);
    let safetensors = parts.next().unwrap_or_default();
    let Ok((header_len, metadata)) = shards::read_header(safetensors) else { return };
    let data_start = 8 + header_len;
    for (_, info) in metadata.tensors() {
        let (start, end) = info.data_offsets;
        if let Some(bytes) = safetensors.get(data_start + start..data_start + end) {
            let _ = shards::to_f32(info.dtype, bytes);
        }
    }
}

/// tokenizer.json, then (after a NUL byte) tokenizer_config.json: the vocabulary they
/// describe, the tokenizer built from it, and a round trip through it.
pub fn tokenizer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (json, config) = match text.split_once('\0') {
        Some((json, config)) => (json, Some(config)),
        None => (text, None),
    };
    let Ok(hf) = hf_json::read(json, config) else { return };
    if let Ok(tok) = Tokenizer::from_vocab(&hf.spec) {
        exercise(&tok);
    }
}
