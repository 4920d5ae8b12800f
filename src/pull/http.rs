//! Downloading over HTTP(S) into a `.part` file, resuming one left by an earlier try.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;

use sha2::Sha256;
use ureq::http::Response;
use ureq::{Agent, Body};

use super::cache::remove_if_present;
use super::digest::{CopyError, Digest, HashingFile, hash_existing};
use super::progress::Progress;
use crate::{Error, Result};

/// Where to GET a file from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpSource {
    pub url: String,
    /// Sent as `Authorization: Bearer ...`; never forwarded on redirects.
    pub bearer: Option<String>,
}

/// Fills `part` with the body at `source`, continuing from what `part` already holds
/// when the server supports ranges. A transfer cut short keeps `part` for the next try;
/// a body longer than `expected_size` is an error and deletes it.
pub(crate) fn download(
    source: &HttpSource,
    part: &Path,
    expected_size: Option<u64>,
    what: &str,
    progress: &dyn Progress,
) -> Result<Digest> {
    let agent = agent();
    let mut offset = existing_len(part)?;
    if expected_size.is_some_and(|size| offset >= size) {
        // Cannot be a prefix of what we want (an equal size would have been committed).
        offset = 0;
    }
    let mut response = loop {
        let response = get(&agent, source, offset)?;
        match response.status().as_u16() {
            200 => {
                offset = 0;
                break response;
            }
            206 if offset > 0 && content_range_start(&response) == Some(offset) => break response,
            206 | 416 if offset > 0 => {
                log::info!("{}: cannot continue at byte {offset}; starting over", source.url);
                offset = 0;
            }
            status => return Err(status_error(status, &response, source)),
        }
    };

    let part_error = |source| Error::Io { path: part.to_owned(), source };
    let mut sink = if offset > 0 {
        let (hasher, existing) = hash_existing(part)?;
        let file = OpenOptions::new().append(true).open(part).map_err(part_error)?;
        HashingFile::new(file, hasher, existing)
    } else {
        HashingFile::new(File::create(part).map_err(part_error)?, Sha256::default(), 0)
    };

    let total = content_length(&response).map(|len| offset.saturating_add(len)).or(expected_size);
    progress.start(&format!("downloading {what}"), total);
    progress.advance(offset);
    let mut body = response.body_mut().as_reader();
    match sink.copy_from(&mut body, expected_size.or(total), progress) {
        Ok(()) => {}
        Err(CopyError::Write(e)) => return Err(part_error(e)),
        Err(CopyError::Read(e)) => return Err(interrupted(source, part, &e.to_string())),
        Err(CopyError::TooLong { limit }) => {
            remove_if_present(part)?;
            return Err(Error::Pull(format!(
                "{} sent more than the {limit} bytes expected; the download was deleted. \
                 Check that the URL points at the right file.",
                source.url
            )));
        }
    }
    let digest = sink.finish().map_err(part_error)?;
    if let Some(total) = total.filter(|&total| digest.size < total) {
        return Err(interrupted(source, part, &format!("got {} of {total} bytes", digest.size)));
    }
    progress.finish(&format!("downloaded {what}"));
    Ok(digest)
}

fn agent() -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
        .build();
    Agent::new_with_config(config)
}

fn get(agent: &Agent, source: &HttpSource, offset: u64) -> Result<Response<Body>> {
    let mut request = agent.get(&source.url);
    if let Some(token) = &source.bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if offset > 0 {
        request = request.header("Range", format!("bytes={offset}-"));
    }
    request.call().map_err(|e| {
        Error::Pull(format!(
            "could not download {}: {e}. Check the network connection (and proxy settings), \
             or pass --model PATH to a GGUF file you already have.",
            source.url
        ))
    })
}

fn existing_len(part: &Path) -> Result<u64> {
    match std::fs::metadata(part) {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(Error::Io { path: part.to_owned(), source }),
    }
}

fn header<'r>(response: &'r Response<Body>, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn content_length(response: &Response<Body>) -> Option<u64> {
    header(response, "content-length").and_then(|v| v.trim().parse().ok())
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` header.
fn content_range_start(response: &Response<Body>) -> Option<u64> {
    let range = header(response, "content-range")?.trim().strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

fn status_error(status: u16, response: &Response<Body>, source: &HttpSource) -> Error {
    let reason = response.status().canonical_reason().unwrap_or("");
    let advice = match status {
        401 | 403 => {
            "The server refused access. For a gated or private Hugging Face repository, \
             accept its terms on the website and set HF_TOKEN to an access token."
        }
        404 => "Check the URL; for hf: check the owner/repo, the file path and the revision.",
        429 | 500..=599 => "The server is busy or failing; try again later.",
        _ => "Check the URL.",
    };
    Error::Pull(format!("HTTP {status} {reason} from {}. {advice}", source.url))
}

fn interrupted(source: &HttpSource, part: &Path, detail: &str) -> Error {
    Error::Pull(format!(
        "the download from {} stopped early ({detail}). What arrived is kept in {}; \
         run the same command again to resume.",
        source.url,
        part.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::super::digest::sha256_hex;
    use super::super::progress::NoProgress;
    use super::super::test_server::{Route, TestServer};
    use super::super::test_support::TempDir;
    use super::*;

    fn body() -> Vec<u8> {
        (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn source(url: String) -> HttpSource {
        HttpSource { url, bearer: None }
    }

    #[test]
    fn downloads_through_a_redirect() {
        let server = TestServer::start(vec![
            ("/m.gguf", Route::File { body: body(), honour_ranges: true }),
            ("/moved", Route::Redirect("/m.gguf".to_owned())),
        ]);
        let dir = TempDir::new("http-plain");
        let part = dir.path().join("m.gguf.part");
        let digest = download(&source(server.url("/moved")), &part, None, "m", &NoProgress).unwrap();
        assert_eq!(digest, Digest { size: body().len() as u64, sha256: sha256_hex(&body()) });
        assert_eq!(std::fs::read(&part).unwrap(), body());
    }

    #[test]
    fn resumes_a_partial_file_with_a_range_request() {
        let server = TestServer::start(vec![("/m.gguf", Route::File { body: body(), honour_ranges: true })]);
        let dir = TempDir::new("http-resume");
        let part = dir.path().join("m.gguf.part");
        std::fs::write(&part, &body()[..70_000]).unwrap();
        let digest = download(&source(server.url("/m.gguf")), &part, Some(200_000), "m", &NoProgress).unwrap();
        assert_eq!(digest.sha256, sha256_hex(&body()));
        assert_eq!(std::fs::read(&part).unwrap(), body());
        let requests = server.requests();
        assert_eq!(requests[0].headers.get("range").map(String::as_str), Some("bytes=70000-"));
    }

    #[test]
    fn starts_over_when_the_server_ignores_the_range() {
        let server = TestServer::start(vec![("/m.gguf", Route::File { body: body(), honour_ranges: false })]);
        let dir = TempDir::new("http-no-range");
        let part = dir.path().join("m.gguf.part");
        std::fs::write(&part, b"stale bytes from something else").unwrap();
        let digest = download(&source(server.url("/m.gguf")), &part, None, "m", &NoProgress).unwrap();
        assert_eq!(digest.sha256, sha256_hex(&body()));
        assert_eq!(std::fs::read(&part).unwrap(), body());
    }

    #[test]
    fn a_cut_connection_keeps_the_part_and_the_next_try_resumes() {
        let server = TestServer::start(vec![("/m.gguf", Route::CutOnce { body: body(), cut_at: 50_000 })]);
        let dir = TempDir::new("http-cut");
        let part = dir.path().join("m.gguf.part");
        let url = server.url("/m.gguf");
        let err = download(&source(url.clone()), &part, None, "m", &NoProgress).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains("resume")), "{err:?}");
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 50_000);
        let digest = download(&source(url), &part, None, "m", &NoProgress).unwrap();
        assert_eq!(digest.sha256, sha256_hex(&body()));
        assert_eq!(server.requests()[1].headers.get("range").map(String::as_str), Some("bytes=50000-"));
    }

    #[test]
    fn http_errors_name_the_status_and_url() {
        let server = TestServer::start(vec![("/gated", Route::Status(403))]);
        let dir = TempDir::new("http-404");
        let part = dir.path().join("m.part");
        for (path, code) in [("/missing.gguf", "404"), ("/gated", "403")] {
            let url = server.url(path);
            let err = download(&source(url.clone()), &part, None, "m", &NoProgress).unwrap_err();
            let Error::Pull(message) = err else { panic!("expected a pull error, got {err:?}") };
            assert!(message.contains(code) && message.contains(&url), "{message}");
        }
        assert!(!part.exists());
    }

    #[test]
    fn a_body_longer_than_expected_is_refused() {
        let server = TestServer::start(vec![("/m.gguf", Route::File { body: body(), honour_ranges: true })]);
        let dir = TempDir::new("http-too-long");
        let part = dir.path().join("m.part");
        let err = download(&source(server.url("/m.gguf")), &part, Some(1000), "m", &NoProgress).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains("more than the 1000 bytes")), "{err:?}");
        assert!(!part.exists());
    }
}
