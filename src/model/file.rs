//! A model held open: a GGUF file (memory-mapped natively, a byte buffer on the web) or a
//! Hugging Face folder read as one (its tensors converted when asked for).

use super::gguf::{GgufHeader, TensorInfo};
#[cfg(not(target_arch = "wasm32"))]
use super::hf::HfFolder;
#[cfg(not(target_arch = "wasm32"))]
use crate::quant::GgmlType;
use crate::{Error, Result};
use std::borrow::Cow;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

enum Source {
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
    #[cfg(not(target_arch = "wasm32"))]
    Folder(HfFolder),
}

pub struct ModelFile {
    pub header: GgufHeader,
    source: Source,
}

impl ModelFile {
    /// A GGUF file, or a Hugging Face folder with its matrices loaded as Q8_0.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &Path) -> Result<ModelFile> {
        ModelFile::open_as(path, None)
    }

    /// As `open`, loading a folder's matrices as `quant` (GGUF files keep their own types).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_as(path: &Path, quant: Option<GgmlType>) -> Result<ModelFile> {
        if path.is_dir() {
            let (header, folder) = HfFolder::open(path, quant.unwrap_or(GgmlType::Q8_0))?;
            return Ok(ModelFile { header, source: Source::Folder(folder) });
        }
        if let Some(quant) = quant {
            return Err(Error::Input(format!(
                "--quant {quant} applies to Hugging Face folders; a GGUF file keeps its types (see `hearth quantize`)"
            )));
        }
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; hearth never writes model files while they are open.
        // If another process truncates the file, reads could fault, as with any mmap user.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let header = GgufHeader::parse(&map, map.len() as u64).map_err(|e| match e {
            Error::Gguf(m) => Error::Gguf(format!("{}: {m}", path.display())),
            other => other,
        })?;
        Ok(ModelFile { header, source: Source::Mapped(map) })
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<ModelFile> {
        let header = GgufHeader::parse(&bytes, bytes.len() as u64)?;
        Ok(ModelFile { header, source: Source::Owned(bytes) })
    }

    /// The tensor's bytes in the type `info` names: borrowed from a GGUF file (its range was
    /// checked when parsed), converted from a folder.
    pub fn data(&self, info: &TensorInfo) -> Result<Cow<'_, [u8]>> {
        let bytes = match &self.source {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Mapped(m) => &m[..],
            Source::Owned(v) => &v[..],
            #[cfg(not(target_arch = "wasm32"))]
            Source::Folder(f) => return f.data(info).map(Cow::Owned),
        };
        Ok(Cow::Borrowed(&bytes[info.offset as usize..][..info.n_bytes as usize]))
    }

    /// The file's bytes (a folder's shards, in order), for fingerprinting.
    pub fn contents(&self) -> Vec<&[u8]> {
        match &self.source {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Mapped(m) => vec![&m[..]],
            Source::Owned(v) => vec![&v[..]],
            #[cfg(not(target_arch = "wasm32"))]
            Source::Folder(f) => f.shard_bytes(),
        }
    }

    /// Whether this is a Hugging Face folder rather than a GGUF file.
    pub fn is_folder(&self) -> bool {
        match &self.source {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Folder(_) => true,
            _ => false,
        }
    }

    pub fn len(&self) -> u64 {
        self.contents().iter().map(|c| c.len() as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.header.tensor(name).ok_or_else(|| Error::Unsupported(format!("the model has no tensor named {name:?}")))
    }
}
