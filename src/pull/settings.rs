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
    /// Where models are looked for first and downloaded to.
    pub cache_dir: PathBuf,
    /// Where else downloaded models are looked for (the user cache, behind a library folder
    /// beside the executable).
    pub also_in: Vec<PathBuf>,
    pub pip: PipCommand,
    pub hf_endpoint: String,
    pub hf_token: Option<String>,
}

impl Settings {
    pub fn from_env() -> Result<Settings> {
        let exe_dir = std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from));
        let (cache_dir, also_in) = library_dirs(
            std::env::var_os("HEARTH_CACHE_DIR").filter(|d| !d.is_empty()).map(PathBuf::from),
            exe_dir.map(|dir| dir.join(LIBRARY_FOLDER)).filter(|dir| dir.is_dir()),
            user_cache_dir(),
        )?;
        Ok(Settings {
            cache_dir,
            also_in,
            pip: match non_empty_var("HEARTH_PIP") {
                Some(command) => PipCommand::Custom(command.split_whitespace().map(str::to_owned).collect()),
                None => PipCommand::Auto,
            },
            hf_endpoint: non_empty_var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_HF_ENDPOINT.to_owned()),
            hf_token: non_empty_var("HF_TOKEN"),
        })
    }
}

/// The folder beside the executable that makes a portable library (a USB stick holding hearth
/// and its models): where it exists, models are looked for and downloaded there first.
pub(crate) const LIBRARY_FOLDER: &str = "models";

/// `<user cache dir>/hearth/models`, where this user has one.
fn user_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|dir| dir.join("hearth").join("models"))
}

/// Where models are looked for first (and downloaded to), and where else: `explicit`
/// (`HEARTH_CACHE_DIR`) alone; else a `library` folder beside the executable, then the user
/// cache; else the user cache.
pub(crate) fn library_dirs(
    explicit: Option<PathBuf>,
    library: Option<PathBuf>,
    user_cache: Option<PathBuf>,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    match (explicit, library, user_cache) {
        (Some(dir), _, _) => Ok((dir, Vec::new())),
        (None, Some(library), user) => Ok((library, user.into_iter().collect())),
        (None, None, Some(user)) => Ok((user, Vec::new())),
        (None, None, None) => Err(Error::Pull(
            "could not find this user's cache directory; set HEARTH_CACHE_DIR to a folder for downloaded models"
                .to_owned(),
        )),
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_cache_wins_then_a_library_beside_hearth_then_the_user_cache() {
        let (env, library, user) = (PathBuf::from("/env"), PathBuf::from("/stick/models"), PathBuf::from("/home"));
        let dirs = |e: Option<&PathBuf>, l: Option<&PathBuf>, u: Option<&PathBuf>| {
            library_dirs(e.cloned(), l.cloned(), u.cloned()).map_err(|e| e.to_string())
        };
        assert_eq!(dirs(Some(&env), Some(&library), Some(&user)), Ok((env.clone(), vec![])));
        assert_eq!(dirs(None, Some(&library), Some(&user)), Ok((library.clone(), vec![user.clone()])));
        assert_eq!(dirs(None, Some(&library), None), Ok((library, vec![])));
        assert_eq!(dirs(None, None, Some(&user)), Ok((user, vec![])));
        assert!(dirs(None, None, None).unwrap_err().contains("HEARTH_CACHE_DIR"));
    }
}
