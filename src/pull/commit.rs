//! Turning a finished `.part` file into a cached model: verify, then rename.

use std::fs;
use std::path::Path;

use super::cache::{CachePaths, remove_if_present, with_suffix};
use super::digest::Digest;
use crate::{Error, Result};

/// What a download must turn out to be, when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Expected {
    pub size: Option<u64>,
    pub sha256: Option<String>,
}

impl Expected {
    /// Whether a file of `size` bytes could be the expected one (without hashing it).
    pub fn size_fits(&self, size: u64) -> bool {
        self.size.is_none_or(|expected| expected == size)
    }

    /// Checks a digest; on mismatch says what to do about `what`.
    pub fn check(&self, what: &str, actual: &Digest) -> Result<()> {
        if let Some(size) = self.size.filter(|&size| size != actual.size) {
            return Err(Error::Pull(format!(
                "{what} has the wrong size: expected {size} bytes, got {}. \
                 The download was deleted; run the pull again, and if it fails the same way \
                 the source has changed and the manifest needs updating.",
                actual.size
            )));
        }
        if let Some(sha256) = self.sha256.as_ref().filter(|&sha| *sha != actual.sha256) {
            return Err(Error::Pull(format!(
                "{what} failed its SHA-256 check: expected {sha256}, got {}. \
                 The download was deleted; run the pull again, and if it fails the same way \
                 the source has changed and the manifest needs updating.",
                actual.sha256
            )));
        }
        Ok(())
    }
}

/// Verifies the finished `.part` file and moves it into place; a file that fails
/// verification is deleted. Without an expected hash, the computed one is recorded
/// in `<file>.sha256`.
pub(crate) fn commit(paths: &CachePaths, expected: &Expected, actual: &Digest, what: &str) -> Result<()> {
    if let Err(e) = expected.check(what, actual) {
        remove_if_present(&paths.part)?;
        return Err(e);
    }
    if expected.sha256.is_none() {
        record_sha256(&paths.dest, &actual.sha256)?;
    }
    fs::rename(&paths.part, &paths.dest).map_err(|source| Error::Io { path: paths.dest.clone(), source })
}

fn record_sha256(dest: &Path, sha256: &str) -> Result<()> {
    let record = with_suffix(dest, ".sha256");
    let staging = with_suffix(&record, ".part");
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The format of `sha256sum`, so `sha256sum -c` can check the file.
    fs::write(&staging, format!("{sha256}  {name}\n"))
        .and_then(|()| fs::rename(&staging, &record))
        .map_err(|source| Error::Io { path: record, source })
}
