//! Turning generated ids into text as they arrive, for streaming output.

use super::Tokenizer;

/// Streaming detokenizer: feed ids one at a time and get back the newly completed UTF-8 text;
/// incomplete multi-byte sequences are held back until the bytes that complete them arrive.
/// It keeps no reference to the tokenizer, so it can live beside the model it decodes for.
#[derive(Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        StreamDecoder::default()
    }

    /// Text completed by `id` (control tokens add nothing; unknown ids are ignored).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        self.pending.extend_from_slice(tok.piece(id, false));
        self.take_complete()
    }

    /// Whatever is still held back, with incomplete sequences replaced by U+FFFD.
    pub fn finish(&mut self) -> String {
        let mut out = self.take_complete();
        if !self.pending.is_empty() {
            out.push_str(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
        out
    }

    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }
}
