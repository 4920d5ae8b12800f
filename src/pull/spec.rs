//! Reading what the user passed to `--model` or `hearth pull`.

use std::path::{Path, PathBuf};

use super::hf::HfFile;
use super::manifest::{Manifest, ManifestEntry};
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Spec<'m> {
    Path(PathBuf),
    Named(&'m ManifestEntry),
    Url(String),
    HuggingFace(HfFile),
}

impl<'m> Spec<'m> {
    pub fn parse(text: &str, manifest: &'m Manifest) -> Result<Spec<'m>> {
        let text = text.trim();
        if text.is_empty() {
            return Err(unknown_name(text, manifest));
        }
        if Path::new(text).exists() {
            return Ok(Spec::Path(PathBuf::from(text)));
        }
        if let Some(rest) = text.strip_prefix("hf:") {
            return HfFile::parse(rest).map(Spec::HuggingFace);
        }
        if let Some((scheme, rest)) = text.split_once("://") {
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
                return Err(Error::Pull(format!(
                    "`{text}`: hearth cannot download `{scheme}://` addresses; use an https:// or http:// URL, \
                     hf:owner/repo/file.gguf, a model name or a path to a GGUF file"
                )));
            }
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if host.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::Pull(format!("`{text}` is not a valid URL")));
            }
            return Ok(Spec::Url(text.to_owned()));
        }
        if let Some(entry) = manifest.find(text) {
            return Ok(Spec::Named(entry));
        }
        if text.contains(['/', '\\']) || text.to_ascii_lowercase().ends_with(".gguf") {
            return Err(Error::Pull(format!(
                "no such file: {text}. Pass the path to an existing GGUF file, or a model name:\n{}",
                manifest.known_names()
            )));
        }
        Err(unknown_name(text, manifest))
    }
}

fn unknown_name(text: &str, manifest: &Manifest) -> Error {
    Error::Pull(format!(
        "unknown model `{text}`. Known models:\n{}\n\
         Or pass a path to a GGUF file, an https:// URL, or hf:owner/repo/file.gguf.",
        manifest.known_names()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> &'static Manifest {
        Manifest::embedded().expect("embedded manifest")
    }

    fn message(text: &str) -> String {
        match Spec::parse(text, manifest()) {
            Err(Error::Pull(m)) => m,
            other => panic!("`{text}` should be refused, got {other:?}"),
        }
    }

    #[test]
    fn recognises_each_kind_of_spec() {
        let manifest = manifest();
        assert!(
            matches!(Spec::parse("smollm2", manifest), Ok(Spec::Named(e)) if e.name == "smollm2-135m-instruct-q4_1")
        );
        assert!(matches!(Spec::parse("default", manifest), Ok(Spec::Named(_))));
        assert!(matches!(Spec::parse("https://example.com/m.gguf", manifest), Ok(Spec::Url(_))));
        assert!(matches!(Spec::parse("hf:o/r/m.gguf", manifest), Ok(Spec::HuggingFace(_))));
        let here = env!("CARGO_MANIFEST_DIR");
        assert_eq!(Spec::parse(here, manifest).unwrap(), Spec::Path(PathBuf::from(here)));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(message("llama-9000").contains("smollm2-135m-instruct-q4_1 (smollm2, smollm2-135m, default)"));
        assert!(message("ftp://host/m.gguf").contains("cannot download `ftp://`"));
        assert!(message("hf:owner/repo").contains("names no file"));
        assert!(message("/no/such/model.gguf").starts_with("no such file"));
        assert!(message("https:///m.gguf").contains("not a valid URL"));
    }
}
