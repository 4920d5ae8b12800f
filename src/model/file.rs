//! A GGUF model file held in memory: memory-mapped natively, a byte buffer on the web.

use super::gguf::{GgufHeader, TensorInfo};
use crate::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

enum Bytes {
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

pub struct ModelFile {
    pub header: GgufHeader,
    bytes: Bytes,
}

impl ModelFile {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &Path) -> Result<ModelFile> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; hearth never writes model files while they are open.
        // If another process truncates the file, reads could fault, as with any mmap user.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let header = GgufHeader::parse(&map, map.len() as u64).map_err(|e| match e {
            Error::Gguf(m) => Error::Gguf(format!("{}: {m}", path.display())),
            other => other,
        })?;
        Ok(ModelFile { header, bytes: Bytes::Mapped(map) })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<ModelFile> {
        let header = GgufHeader::parse(&bytes, bytes.len() as u64)?;
        Ok(ModelFile { header, bytes: Bytes::Owned(bytes) })
    }

    /// The tensor's bytes; its range was checked against the file length when parsed.
    pub fn data(&self, info: &TensorInfo) -> &[u8] {
        &self.bytes[info.offset as usize..][..info.n_bytes as usize]
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.header.tensor(name).ok_or_else(|| Error::Unsupported(format!("the model has no tensor named {name:?}")))
    }
}
