//! A model file arriving in chunks (a download or a picked file, streamed by the page): held
//! once in the wasm heap, its header checked as soon as it is in, so a model that cannot run
//! is refused before the rest of it is fetched.

use hearth::gpu::Gpu;
use hearth::model::Model;
use hearth::model::gguf::GgufHeader;
use hearth::{Error, Result};

/// A wasm32 tab addresses at most 4 GiB. The file stays in it while its weights are repacked
/// and uploaded, so it needs that much again as the largest tensor, plus working room.
const WASM32_BYTES: u64 = 4 << 30;
const WORKING_ROOM: u64 = 256 << 20;

pub struct Incoming {
    bytes: Vec<u8>,
    /// The file's length, when the page knows it (a download without a Content-Length does not).
    total: Option<u64>,
    header_checked: bool,
    /// Parse the header again once this many bytes are in.
    next_attempt: usize,
}

impl Incoming {
    /// Makes room for a file of `total` bytes, or refuses one that a wasm32 tab cannot hold.
    pub fn new(total: Option<u64>) -> Result<Incoming> {
        let mut bytes = Vec::new();
        if let Some(total) = total {
            refuse_beyond_wasm32(total, 0)?;
            bytes.try_reserve_exact(total as usize).map_err(|_| {
                Error::Input(format!(
                    "the browser would not give this tab {:.0} MB for the model file",
                    total as f64 / 1e6
                ))
            })?;
        }
        Ok(Incoming { bytes, total, header_checked: false, next_attempt: 1 << 20 })
    }

    /// Appends the next chunk, whose length the page has already copied in with `fill`.
    pub fn append(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<()> {
        let start = self.bytes.len();
        let end = start as u64 + len as u64;
        match self.total {
            Some(total) if end > total => {
                return Err(Error::Input(format!("the model file is longer than the {total} bytes announced")));
            }
            // A download of unknown length is refused once it outgrows what the tab can hold.
            None => refuse_beyond_wasm32(end, 0)?,
            Some(_) => {}
        }
        self.bytes.try_reserve(len).map_err(|_| {
            Error::Input(format!("the browser would not give this tab {:.0} MB for the model file", end as f64 / 1e6))
        })?;
        self.bytes.resize(start + len, 0);
        fill(&mut self.bytes[start..]);
        Ok(())
    }

    /// Once the header is in, refuses a model that cannot run here (its architecture, its
    /// hyperparameters, weights beyond the adapter's memory or the tab's address space).
    pub fn check_early(&mut self, gpu: &Gpu) -> Result<()> {
        let Some(total) = self.total else { return Ok(()) };
        if self.header_checked || self.bytes.len() < self.next_attempt.min(total as usize) {
            return Ok(());
        }
        // A header cut short fails to parse; try again with twice the bytes.
        self.next_attempt = self.bytes.len() * 2;
        let Ok(header) = GgufHeader::parse(&self.bytes, total) else { return Ok(()) };
        self.header_checked = true;
        check_header(gpu, &header, total)
    }

    /// The whole file, once every byte announced has arrived.
    pub fn finish(self) -> Result<Vec<u8>> {
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

/// Everything the header alone can refuse, with the sizes.
fn check_header(gpu: &Gpu, header: &GgufHeader, file_bytes: u64) -> Result<()> {
    Model::check_header(gpu, header)?;
    check_tab_room(header, file_bytes)
}

/// Refuses a file whose repacking would not fit the tab beside the file itself (`Model::load`
/// checks the rest).
pub fn check_tab_room(header: &GgufHeader, file_bytes: u64) -> Result<()> {
    let largest = header.tensors.iter().map(|t| t.n_bytes).max().unwrap_or(0);
    refuse_beyond_wasm32(file_bytes, largest)
}

fn refuse_beyond_wasm32(file_bytes: u64, largest_tensor: u64) -> Result<()> {
    let needed = file_bytes + 2 * largest_tensor + WORKING_ROOM;
    if needed > WASM32_BYTES {
        return Err(Error::Input(format!(
            "this model is {:.2} GB; loading it in a browser tab needs about {:.2} GB of its 4 GB \
             (wasm32) address space, more than there is. Use a smaller quantization or the hearth CLI",
            file_bytes as f64 / 1e9,
            needed as f64 / 1e9
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_with(byte: u8) -> impl FnOnce(&mut [u8]) {
        move |into| into.fill(byte)
    }

    #[test]
    fn a_file_beyond_wasm32_is_refused_with_its_size() {
        let err = Incoming::new(Some(5_000_000_000)).err().expect("refused").to_string();
        assert!(err.contains("5.00 GB") && err.contains("4 GB"), "{err}");
        let mut unknown = Incoming::new(None).unwrap();
        let err = unknown.append(4 << 30, |_| unreachable!("nothing is copied")).unwrap_err().to_string();
        assert!(err.contains("4 GB"), "a download of unknown length is stopped when it outgrows the tab: {err}");
    }

    #[test]
    fn chunks_must_add_up_to_the_announced_length() {
        let mut file = Incoming::new(Some(10)).unwrap();
        file.append(6, fill_with(1)).unwrap();
        let err = file.append(6, fill_with(2)).unwrap_err().to_string();
        assert!(err.contains("longer than the 10 bytes"), "{err}");
        let err = file.finish().unwrap_err().to_string();
        assert!(err.contains("after 6 of its 10 bytes"), "{err}");

        let mut file = Incoming::new(Some(4)).unwrap();
        file.append(3, fill_with(7)).unwrap();
        file.append(1, fill_with(9)).unwrap();
        assert_eq!(file.finish().unwrap(), [7, 7, 7, 9]);
    }
}
