//! Streaming bytes into a file while hashing them with SHA-256.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::progress::Progress;
use crate::{Error, Result};

const CHUNK: usize = 1 << 16;

/// Size and SHA-256 (lowercase hex) of something written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest {
    pub size: u64,
    pub sha256: String,
}

/// Why a copy stopped: the distinction decides whether a partial download is worth keeping.
#[derive(Debug)]
pub(crate) enum CopyError {
    Read(io::Error),
    Write(io::Error),
    /// The source sent more than the allowed number of bytes.
    TooLong {
        limit: u64,
    },
}

/// A file being filled, its hash and byte count so far.
pub(crate) struct HashingFile {
    file: File,
    hasher: Sha256,
    written: u64,
}

impl HashingFile {
    /// Continues a file whose first `existing` bytes were already fed to `hasher`.
    pub fn new(file: File, hasher: Sha256, existing: u64) -> HashingFile {
        HashingFile { file, hasher, written: existing }
    }

    /// Copies everything from `source`, failing once more than `limit` bytes in total
    /// (counting what the file already had) would be written.
    pub fn copy_from(
        &mut self,
        source: &mut dyn Read,
        limit: Option<u64>,
        progress: &dyn Progress,
    ) -> std::result::Result<(), CopyError> {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = match source.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Read(e)),
            };
            let written = self.written.saturating_add(n as u64);
            if let Some(limit) = limit.filter(|&limit| written > limit) {
                return Err(CopyError::TooLong { limit });
            }
            let chunk = &buffer[..n];
            self.file.write_all(chunk).map_err(CopyError::Write)?;
            self.hasher.update(chunk);
            self.written = written;
            progress.advance(written);
        }
    }

    /// Flushes the file to disk and returns what was written.
    pub fn finish(self) -> io::Result<Digest> {
        self.file.sync_all()?;
        Ok(Digest { size: self.written, sha256: to_hex(&self.hasher.finalize()) })
    }
}

/// Hashes a file on disk, returning the hasher (to continue it) and the byte count.
pub(crate) fn hash_existing(path: &Path) -> Result<(Sha256, u64)> {
    let io_error = |source| Error::Io { path: path.to_owned(), source };
    let mut file = File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok((hasher, size)),
            Ok(n) => {
                hasher.update(&buffer[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    }
}

pub(crate) fn digest_of_file(path: &Path) -> Result<Digest> {
    let (hasher, size) = hash_existing(path)?;
    Ok(Digest { size, sha256: to_hex(&hasher.finalize()) })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256_hex_of_parts(&[bytes])
}

/// The digest of the parts one after the other (a folder's shards).
pub fn sha256_hex_of_parts(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    parts.iter().for_each(|p| hasher.update(p));
    to_hex(&hasher.finalize())
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        text.push(DIGITS[usize::from(b >> 4)] as char);
        text.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_of_a_known_digest() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
