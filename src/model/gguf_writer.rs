//! Writing GGUF (version 3) files: small test models, crafted bad files, and later the output of
//! `hearth quantize`.

use super::gguf::{Value, encode_str};
use crate::quant::GgmlType;

pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter { metadata: Vec::new(), tensors: Vec::new(), alignment: 32 }
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn meta(&mut self, key: &str, value: Value) -> &mut Self {
        self.metadata.push((key.to_string(), value));
        self
    }

    /// Adds a tensor; `dims` in ggml order (row length first), `data` its encoded bytes.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> &mut Self {
        self.tensors.push((name.to_string(), dims.to_vec(), ty, data));
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let align = |n: u64| n.div_ceil(self.alignment) * self.alignment;
        let mut out = Vec::new();
        out.extend(b"GGUF");
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            encode_str(&mut out, key);
            out.extend(value.type_id().to_le_bytes());
            value.encode(&mut out);
        }
        let mut offset = 0u64;
        for (name, dims, ty, data) in &self.tensors {
            encode_str(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
            out.extend(ty.id().to_le_bytes());
            out.extend(offset.to_le_bytes());
            offset = align(offset + data.len() as u64);
        }
        out.resize(align(out.len() as u64) as usize, 0);
        for (_, _, _, data) in &self.tensors {
            out.extend(data);
            out.resize(align(out.len() as u64) as usize, 0);
        }
        out
    }
}
