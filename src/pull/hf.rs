//! `hf:owner/repo/path/to/file.gguf[@revision]`: a file in a Hugging Face repository.

use std::path::PathBuf;

use crate::{Error, Result};

const USAGE: &str = "use hf:owner/repo/path/to/file.gguf, optionally followed by @revision";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HfFile {
    pub owner: String,
    pub repo: String,
    /// Path segments of the file inside the repository.
    pub file: Vec<String>,
    pub revision: String,
}

impl HfFile {
    /// Parses what follows `hf:`.
    pub fn parse(text: &str) -> Result<HfFile> {
        let (path, revision) = match text.rsplit_once('@') {
            Some((path, revision)) => (path, Some(revision)),
            None => (text, None),
        };
        HfFile::new(path, revision, &format!("hf:{text}"))
    }

    /// `path` is `owner/repo/file...`; `spec` is what to call it in errors.
    pub fn new(path: &str, revision: Option<&str>, spec: &str) -> Result<HfFile> {
        let bad = |why: &str| Error::Pull(format!("`{spec}` is not a valid Hugging Face file: {why}; {USAGE}"));
        let mut segments = path.split('/');
        let owner = segments.next().unwrap_or_default();
        let repo = segments.next().unwrap_or_default();
        let file: Vec<String> = segments.map(str::to_owned).collect();
        if owner.is_empty() || repo.is_empty() {
            return Err(bad("it needs an owner and a repository"));
        }
        if file.is_empty() || file.iter().all(String::is_empty) {
            return Err(bad("it names no file"));
        }
        for name in [owner, repo] {
            if !is_simple_name(name) {
                return Err(bad(&format!("`{name}` may only use letters, digits, '.', '_' and '-'")));
            }
        }
        if let Some(segment) = file.iter().find(|s| !is_safe_segment(s)) {
            return Err(bad(&format!("the file path has an unusable part `{segment}`")));
        }
        let revision = match revision {
            None => "main",
            Some(rev) if is_simple_name(rev) => rev,
            Some(rev) => {
                return Err(bad(&format!(
                    "the revision `{rev}` must be a branch, tag or commit of letters, digits, '.', '_' and '-'"
                )));
            }
        };
        Ok(HfFile { owner: owner.to_owned(), repo: repo.to_owned(), file, revision: revision.to_owned() })
    }

    pub fn url(&self, endpoint: &str) -> String {
        let file: Vec<String> = self.file.iter().map(|s| percent_encode(s)).collect();
        format!(
            "{}/{}/{}/resolve/{}/{}",
            endpoint.trim_end_matches('/'),
            self.owner,
            self.repo,
            self.revision,
            file.join("/")
        )
    }

    /// `hf/owner/repo/file` for the main branch, `hf/owner/repo@revision/file` otherwise.
    pub fn cache_path(&self) -> PathBuf {
        let repo = if self.revision == "main" { self.repo.clone() } else { format!("{}@{}", self.repo, self.revision) };
        let mut path = PathBuf::from("hf");
        path.push(&self.owner);
        path.push(repo);
        path.extend(&self.file);
        path
    }

    pub fn display_name(&self) -> String {
        format!("{}/{}/{}", self.owner, self.repo, self.file.join("/"))
    }
}

fn is_simple_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_safe_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && !segment.contains(['\\', ':'])
        && !segment.chars().any(char::is_control)
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_files_and_revisions() {
        let hf = HfFile::parse("owner/repo/sub dir/model.Q4_K_M.gguf@v1.0").unwrap();
        assert_eq!(hf.file, ["sub dir", "model.Q4_K_M.gguf"]);
        assert_eq!(hf.revision, "v1.0");
        assert_eq!(hf.url("http://host:1/"), "http://host:1/owner/repo/resolve/v1.0/sub%20dir/model.Q4_K_M.gguf");
        assert_eq!(hf.cache_path(), PathBuf::from("hf/owner/repo@v1.0/sub dir/model.Q4_K_M.gguf"));
        let main = HfFile::parse("o/r/m.gguf").unwrap();
        assert_eq!(main.cache_path(), PathBuf::from("hf/o/r/m.gguf"));
    }

    #[test]
    fn rejects_specs_without_a_file_or_with_escapes() {
        for bad in ["owner/repo", "owner/repo/", "owner", "", "o/r/../../etc/passwd", "o/r/a//b", "o/r/m@a/b", "../r/m"]
        {
            let err = HfFile::parse(bad).unwrap_err();
            assert!(matches!(&err, Error::Pull(m) if m.contains("hf:owner/repo/")), "{bad}: {err:?}");
        }
    }
}
