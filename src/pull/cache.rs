//! Where a download lives in the cache, and the lock that lets only one process fill it.
//!
//! A download is written to `<file>.part` and renamed to `<file>` once verified, so a
//! file under its final name is always complete. The lock (an OS file lock, released
//! even if the process dies) sits under `<cache>/.locks/` so that a failed pull leaves
//! nothing beside the models.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::progress::Progress;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachePaths {
    pub dest: PathBuf,
    pub part: PathBuf,
    lock: PathBuf,
}

impl CachePaths {
    /// `relative` must be a relative path of plain components (checked by the callers' parsers).
    pub fn new(cache_dir: &Path, relative: &Path) -> CachePaths {
        let dest = cache_dir.join(relative);
        CachePaths {
            part: with_suffix(&dest, ".part"),
            lock: with_suffix(&cache_dir.join(".locks").join(relative), ".lock"),
            dest,
        }
    }

    /// Blocks until no other process is pulling this file.
    pub fn lock(&self, progress: &dyn Progress) -> Result<CacheLock> {
        for dir in [self.lock.parent(), self.dest.parent()].into_iter().flatten() {
            fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
        }
        let io_error = |source| Error::Io { path: self.lock.clone(), source };
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&self.lock).map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                progress.message(&format!(
                    "waiting for another hearth process that is downloading {}",
                    self.dest.display()
                ));
                file.lock().map_err(io_error)?;
            }
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
        Ok(CacheLock { _file: file })
    }
}

/// Held while a download is in progress; dropping it releases the lock.
pub(crate) struct CacheLock {
    _file: File,
}

pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(crate) fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io { path: path.to_owned(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::progress::NoProgress;
    use super::super::test_support::TempDir;
    use super::*;

    #[test]
    fn paths_and_lock_layout() {
        let dir = TempDir::new("cache-paths");
        let paths = CachePaths::new(dir.path(), Path::new("hf/o/r/sub/m.gguf"));
        assert_eq!(paths.dest, dir.path().join("hf/o/r/sub/m.gguf"));
        assert_eq!(paths.part, dir.path().join("hf/o/r/sub/m.gguf.part"));
        let first = paths.lock(&NoProgress).unwrap();
        assert!(dir.path().join(".locks/hf/o/r/sub/m.gguf.lock").is_file());
        drop(first);
        let _again = paths.lock(&NoProgress).unwrap();
    }
}
