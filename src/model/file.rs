//! A model held open: a GGUF file (memory-mapped natively; on the web a byte buffer, or a file
//! read a range at a time by a callback, so the tab never holds all of it) or a Hugging Face
//! folder read as one (its tensors converted when asked for).

use super::gguf::{GgufHeader, TensorInfo};
#[cfg(not(target_arch = "wasm32"))]
use super::hf::HfFolder;
#[cfg(not(target_arch = "wasm32"))]
use crate::quant::GgmlType;
use crate::{Error, Result};
use std::borrow::Cow;
use std::ops::Range;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

/// Reads `len` bytes of the file from `offset` (the range is within the file).
#[cfg(target_arch = "wasm32")]
pub type ReadRange = Box<dyn Fn(u64, usize) -> Result<Vec<u8>>>;
/// Reads `len` bytes of the file from `offset` (the range is within the file).
#[cfg(not(target_arch = "wasm32"))]
pub type ReadRange = Box<dyn Fn(u64, usize) -> Result<Vec<u8>> + Send + Sync>;

/// The first read for a header; doubled until the header parses, up to the largest header read
/// (real ones, vocabularies included, take tens of MB).
const FIRST_HEADER_READ: u64 = 1 << 20;
const LARGEST_HEADER_READ: u64 = 256 << 20;

enum Source {
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
    Ranges {
        len: u64,
        read: ReadRange,
    },
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

    /// A GGUF file of `len` bytes that is not in memory: `read` gives any range of it. The
    /// header is read first (a growing prefix until it parses), then each tensor, or each range
    /// of a large one's rows, when it is asked for, so only the header and what is being
    /// loaded are held.
    pub fn from_ranges(len: u64, read: ReadRange) -> Result<ModelFile> {
        let mut prefix = FIRST_HEADER_READ.min(len);
        let header = loop {
            let bytes = read(0, prefix as usize)?;
            match GgufHeader::parse(&bytes, len) {
                Ok(header) => break header,
                // A header cut short fails to parse: read twice as much (a file that is not
                // GGUF at all fails on its first bytes).
                Err(_) if prefix < len.min(LARGEST_HEADER_READ) && bytes.starts_with(b"GGUF") => {
                    prefix = (prefix * 2).min(len).min(LARGEST_HEADER_READ)
                }
                Err(e) => return Err(e),
            }
        };
        Ok(ModelFile { header, source: Source::Ranges { len, read } })
    }

    /// The tensor's bytes in the type `info` names: borrowed from a GGUF file in memory (its
    /// range was checked when parsed), read from one that is not, converted from a folder.
    pub fn data(&self, info: &TensorInfo) -> Result<Cow<'_, [u8]>> {
        let bytes = match &self.source {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Mapped(m) => &m[..],
            Source::Owned(v) => &v[..],
            Source::Ranges { read, .. } => return read(info.offset, info.n_bytes as usize).map(Cow::Owned),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Folder(f) => return f.data(info).map(Cow::Owned),
        };
        Ok(Cow::Borrowed(&bytes[info.offset as usize..][..info.n_bytes as usize]))
    }

    /// Bytes `range` of the tensor's bytes (within them): borrowed or read as `data` is; a
    /// folder converts the whole tensor for any range, so read folders' tensors whole.
    pub fn data_range(&self, info: &TensorInfo, range: Range<usize>) -> Result<Cow<'_, [u8]>> {
        if range.start > range.end || range.end as u64 > info.n_bytes {
            return Err(Error::Gguf(format!("bytes {range:?} of {}, which has {}", info.name, info.n_bytes)));
        }
        match &self.source {
            Source::Ranges { read, .. } => read(info.offset + range.start as u64, range.len()).map(Cow::Owned),
            _ => Ok(match self.data(info)? {
                Cow::Borrowed(b) => Cow::Borrowed(&b[range]),
                Cow::Owned(v) => Cow::Owned(v[range].to_vec()),
            }),
        }
    }

    /// The file's bytes (a folder's shards, in order), for fingerprinting; refused for a file
    /// that is not in memory.
    pub fn contents(&self) -> Result<Vec<&[u8]>> {
        Ok(match &self.source {
            #[cfg(not(target_arch = "wasm32"))]
            Source::Mapped(m) => vec![&m[..]],
            Source::Owned(v) => vec![&v[..]],
            Source::Ranges { .. } => {
                return Err(Error::Unsupported(
                    "this model file is read by ranges; its whole bytes are not at hand".into(),
                ));
            }
            #[cfg(not(target_arch = "wasm32"))]
            Source::Folder(f) => f.shard_bytes(),
        })
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
        match &self.source {
            Source::Ranges { len, .. } => *len,
            _ => self.contents().map_or(0, |parts| parts.iter().map(|c| c.len() as u64).sum()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.header.tensor(name).ok_or_else(|| Error::Unsupported(format!("the model has no tensor named {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::TinyLlama;
    use std::sync::{Arc, Mutex};

    /// Each read's offset and length.
    type Reads = Arc<Mutex<Vec<(u64, usize)>>>;

    /// A file read by ranges out of `bytes`, and the reads it made.
    fn by_ranges(bytes: Vec<u8>) -> (Result<ModelFile>, Reads) {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let seen = reads.clone();
        let len = bytes.len() as u64;
        let read: ReadRange = Box::new(move |offset, n| {
            seen.lock().unwrap().push((offset, n));
            Ok(bytes[offset as usize..][..n].to_vec())
        });
        (ModelFile::from_ranges(len, read), reads)
    }

    #[test]
    fn a_file_read_by_ranges_gives_the_tensors_of_the_file_in_memory_one_at_a_time() {
        let bytes = TinyLlama::default().to_gguf();
        let whole = ModelFile::from_bytes(bytes.clone()).unwrap();
        let (ranged, reads) = by_ranges(bytes.clone());
        let ranged = ranged.unwrap();
        assert_eq!(ranged.len(), whole.len());
        let places =
            |f: &ModelFile| f.header.tensors.iter().map(|t| (t.name.clone(), t.offset, t.n_bytes)).collect::<Vec<_>>();
        assert_eq!(places(&ranged), places(&whole));
        assert!(ranged.contents().is_err(), "no whole bytes to fingerprint");
        // The tiny file's header fits the first read.
        assert_eq!(*reads.lock().unwrap(), [(0, bytes.len().min(FIRST_HEADER_READ as usize))]);
        reads.lock().unwrap().clear();
        for t in &whole.header.tensors {
            assert_eq!(ranged.data(t).unwrap(), whole.data(t).unwrap(), "{}", t.name);
        }
        let reads = reads.lock().unwrap();
        let largest = whole.header.tensors.iter().map(|t| t.n_bytes as usize).max().unwrap();
        assert_eq!(reads.len(), whole.header.tensors.len(), "one read per tensor");
        assert!(reads.iter().all(|&(_, n)| n <= largest));
    }

    #[test]
    fn a_range_of_a_tensor_is_its_bytes_from_memory_or_by_ranges_and_beyond_it_is_refused() {
        let bytes = TinyLlama::default().to_gguf();
        let whole = ModelFile::from_bytes(bytes.clone()).unwrap();
        let (ranged, _) = by_ranges(bytes);
        let ranged = ranged.unwrap();
        let t = whole.header.tensors.iter().max_by_key(|t| t.n_bytes).unwrap();
        let n = t.n_bytes as usize;
        for file in [&whole, &ranged] {
            assert_eq!(&file.data_range(t, 3..n / 2).unwrap()[..], &whole.data(t).unwrap()[3..n / 2]);
            let err = file.data_range(t, n - 4..n + 1).unwrap_err().to_string();
            assert!(err.contains(&format!("of {}, which has {n}", t.name)), "{err}");
        }
    }

    #[test]
    fn a_header_longer_than_the_first_read_is_read_again_whole_and_a_file_that_is_not_gguf_once() {
        // A vocabulary of long tokens: a header past 1 MiB.
        let mut writer = crate::model::gguf_writer::GgufWriter::new();
        let tokens = (0..600).map(|i| crate::model::gguf::Value::String(format!("{i:04}{}", "x".repeat(2000))));
        writer.meta("tokenizer.ggml.tokens", crate::model::gguf::Value::array(tokens));
        writer.tensor("t", &[4], crate::quant::GgmlType::F32, vec![0; 16]);
        let bytes = writer.to_bytes();
        assert!(bytes.len() as u64 > FIRST_HEADER_READ);
        let (file, reads) = by_ranges(bytes.clone());
        assert_eq!(file.unwrap().header.tensors.len(), 1);
        let reads = reads.lock().unwrap();
        assert_eq!(reads[0], (0, FIRST_HEADER_READ as usize));
        assert_eq!(reads.last(), Some(&(0, bytes.len())), "doubled up to the whole (small) file");

        let mut other = vec![7u8; 3 << 20];
        other[..4].copy_from_slice(b"PK\x03\x04");
        let (file, reads) = by_ranges(other);
        assert!(file.err().unwrap().to_string().contains("not a GGUF file"));
        assert_eq!(reads.lock().unwrap().len(), 1);
    }
}
