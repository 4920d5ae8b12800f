//! A model file arriving in chunks (a download streamed by the page), its header checked as
//! soon as it is in, so a model that cannot run is refused before the rest of it is fetched.
//! Either the whole file is held in the wasm heap (to be loaded from it), or only its header
//! (the file is being kept on disk, and is loaded from there a range at a time).

use hearth::gpu::Gpu;
use hearth::model::Model;
use hearth::model::gguf::GgufHeader;
use hearth::{Error, Result};

/// A wasm32 tab addresses at most 4 GiB. What a load holds there: the file when it is loaded
/// from memory, and working room for the header, the vocabulary and the range of a matrix's
/// rows being repacked (`hearth::model::matrix_rows::RANGE_BYTES`, read and repacked). A file
/// read from disk holds no more for being large.
const WASM32_BYTES: u64 = 4 << 30;
const WORKING_ROOM: u64 = 256 << 20;
/// A header not parsed within this many bytes is refused (real ones take tens of MB).
const LARGEST_HEADER: usize = 256 << 20;

/// What the heap holds of an arriving file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// All of it: the model is loaded from these bytes.
    WholeFile,
    /// Its header, until it is checked: the file goes to disk and is loaded from there.
    HeaderOnly,
}

pub struct Incoming {
    bytes: Vec<u8>,
    holding: Holding,
    /// Bytes received so far (beyond `bytes` once a header-only file's header is checked).
    received: u64,
    /// The file's length, when the page knows it (a download without a Content-Length does not).
    total: Option<u64>,
    header_checked: bool,
    /// Parse the header again once this many bytes are in.
    next_attempt: usize,
}

impl Incoming {
    /// Makes room for a file of `total` bytes, or refuses one that a wasm32 tab cannot hold.
    pub fn new(total: Option<u64>, holding: Holding) -> Result<Incoming> {
        let mut bytes = Vec::new();
        if let (Some(total), Holding::WholeFile) = (total, holding) {
            check_tab_room(total)?;
            bytes.try_reserve_exact(total as usize).map_err(|_| {
                Error::Input(format!(
                    "the browser would not give this tab {:.0} MB for the model file",
                    total as f64 / 1e6
                ))
            })?;
        }
        Ok(Incoming { bytes, holding, received: 0, total, header_checked: false, next_attempt: 1 << 20 })
    }

    /// Appends the next chunk, whose length the page has already copied in with `fill`.
    pub fn append(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<()> {
        let end = self.received + len as u64;
        match self.total {
            Some(total) if end > total => {
                return Err(Error::Input(format!("the model file is longer than the {total} bytes announced")));
            }
            // A whole download of unknown length is refused once it outgrows what the tab can hold.
            None if self.holding == Holding::WholeFile => check_tab_room(end)?,
            _ => {}
        }
        self.received = end;
        if self.holding == Holding::HeaderOnly && self.header_checked {
            return Ok(());
        }
        let start = self.bytes.len();
        self.bytes.try_reserve(len).map_err(|_| {
            Error::Input(format!("the browser would not give this tab {:.0} MB for the model file", end as f64 / 1e6))
        })?;
        self.bytes.resize(start + len, 0);
        fill(&mut self.bytes[start..]);
        Ok(())
    }

    /// Once the header is in, refuses a model that cannot run here (its architecture, its
    /// hyperparameters, weights beyond the adapter's memory or the tab's address space); a
    /// file that is not GGUF at all at its first bytes.
    pub fn check_early(&mut self, gpu: &Gpu) -> Result<()> {
        if self.bytes.len() >= 4 && !self.bytes.starts_with(b"GGUF") && !self.header_checked {
            return GgufHeader::parse(&self.bytes, self.received).map(|_| ());
        }
        // A header-only file's length is needed only to place its tensors, checked again when
        // it is loaded from disk.
        let Some(total) = self.total.or((self.holding == Holding::HeaderOnly).then_some(u64::MAX)) else {
            return Ok(());
        };
        if self.header_checked || self.bytes.len() < self.next_attempt.min(total.min(usize::MAX as u64) as usize) {
            return Ok(());
        }
        // A header cut short fails to parse; try again with twice the bytes.
        self.next_attempt = self.bytes.len() * 2;
        let header = match GgufHeader::parse(&self.bytes, total) {
            Ok(header) => header,
            Err(e) if self.bytes.len() >= LARGEST_HEADER => return Err(e),
            Err(_) => return Ok(()),
        };
        self.header_checked = true;
        Model::check_header(gpu, &header)?;
        match self.holding {
            Holding::WholeFile => self.total.map_or(Ok(()), check_tab_room),
            Holding::HeaderOnly => {
                self.bytes = Vec::new();
                Ok(())
            }
        }
    }

    /// The whole file, once every byte announced has arrived.
    pub fn finish(self) -> Result<Vec<u8>> {
        if self.holding == Holding::HeaderOnly {
            return Err(Error::Input("this file was received to check its header only".into()));
        }
        if let Some(total) = self.total
            && (self.bytes.len() as u64) < total
        {
            return Err(Error::Input(format!(
                "the model file ended after {} of its {total} bytes (the download was cut short?)",
                self.bytes.len()
            )));
        }
        Ok(self.bytes)
    }
}

/// Refuses a file of `file_bytes` that is to be held in the heap while it is loaded, where
/// the tab could not also hold the working room.
pub fn check_tab_room(file_bytes: u64) -> Result<()> {
    let needed = file_bytes + WORKING_ROOM;
    if needed <= WASM32_BYTES {
        return Ok(());
    }
    Err(Error::Input(format!(
        "this model is {:.2} GB; loading it in a browser tab from memory needs about {:.2} GB of \
         its 4 GB (wasm32) address space, more than there is. Keep it in the browser (the \
         default for a download) or pick the file, so that it is read from disk a part at a \
         time; or use a smaller quantization or the hearth CLI",
        file_bytes as f64 / 1e9,
        needed as f64 / 1e9
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_with(byte: u8) -> impl FnOnce(&mut [u8]) {
        move |into| into.fill(byte)
    }

    #[test]
    fn a_file_beyond_wasm32_is_refused_with_its_size() {
        let err = Incoming::new(Some(5_000_000_000), Holding::WholeFile).err().expect("refused").to_string();
        assert!(err.contains("5.00 GB") && err.contains("4 GB"), "{err}");
        let mut unknown = Incoming::new(None, Holding::WholeFile).unwrap();
        let err = unknown.append(4 << 30, |_| unreachable!("nothing is copied")).unwrap_err().to_string();
        assert!(err.contains("4 GB"), "a download of unknown length is stopped when it outgrows the tab: {err}");
    }

    #[test]
    fn a_file_kept_on_disk_is_held_only_until_its_header_is_checked() {
        use hearth::gpu::AdapterChoice;
        let gpu = pollster::block_on(Gpu::new(&AdapterChoice::from_env())).expect("a wgpu adapter");
        let bytes = hearth::model::testing::TinyLlama::default().to_gguf();
        let mut file = Incoming::new(Some(bytes.len() as u64), Holding::HeaderOnly).unwrap();
        for chunk in bytes.chunks(4096) {
            file.append(chunk.len(), |into| into.copy_from_slice(chunk)).unwrap();
            file.check_early(&gpu).unwrap();
        }
        assert!(file.header_checked);
        assert!(file.bytes.is_empty(), "the header is dropped once checked");
        assert_eq!(file.received, bytes.len() as u64);
        assert!(file.finish().unwrap_err().to_string().contains("header only"));

        // Beyond wasm32 when held, but not held: taken; refused at its first bytes if not GGUF.
        let mut other = Incoming::new(Some(10_000_000_000), Holding::HeaderOnly).unwrap();
        other.append(8, |into| into.copy_from_slice(b"PK\x03\x04zip!")).unwrap();
        let err = other.check_early(&gpu).unwrap_err().to_string();
        assert!(err.contains("not a GGUF file"), "{err}");
    }

    #[test]
    fn chunks_must_add_up_to_the_announced_length() {
        let mut file = Incoming::new(Some(10), Holding::WholeFile).unwrap();
        file.append(6, fill_with(1)).unwrap();
        let err = file.append(6, fill_with(2)).unwrap_err().to_string();
        assert!(err.contains("longer than the 10 bytes"), "{err}");
        let err = file.finish().unwrap_err().to_string();
        assert!(err.contains("after 6 of its 10 bytes"), "{err}");

        let mut file = Incoming::new(Some(4), Holding::WholeFile).unwrap();
        file.append(3, fill_with(7)).unwrap();
        file.append(1, fill_with(9)).unwrap();
        assert_eq!(file.finish().unwrap(), [7, 7, 7, 9]);
    }
}
