//! Everything the pull code takes from the environment, read in one place so the
//! rest of the module (and its tests) get it passed in explicitly.

use std::path::PathBuf;

use crate::{Error, Result};

const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";

/// How to run pip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PipCommand {
    /// Try `python3 -m pip`, then `pip3`, then `pip`.
    Auto,
    /// A command given by the user (program and leading arguments).
    Custom(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub cache_dir: PathBuf,
    pub pip: PipCommand,
    pub hf_endpoint: String,
    pub hf_token: Option<String>,
}

impl Settings {
    pub fn from_env() -> Result<Settings> {
        Ok(Settings {
            cache_dir: cache_dir_from_env()?,
            pip: match non_empty_var("HEARTH_PIP") {
                Some(command) => PipCommand::Custom(command.split_whitespace().map(str::to_owned).collect()),
                None => PipCommand::Auto,
            },
            hf_endpoint: non_empty_var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_HF_ENDPOINT.to_owned()),
            hf_token: non_empty_var("HF_TOKEN"),
        })
    }
}

pub(crate) fn cache_dir_from_env() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("HEARTH_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir().map(|dir| dir.join("hearth").join("models")).ok_or_else(|| {
        Error::Pull(
            "could not find this user's cache directory; set HEARTH_CACHE_DIR to a folder for downloaded models"
                .to_owned(),
        )
    })
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
