//! Helpers shared by this module's tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("hearth-pull-test-{label}-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a wheel holding `content` as `member`, deflated like real wheels.
pub(crate) fn write_wheel(path: &Path, member: &str, content: &[u8]) {
    let file = std::fs::File::create(path).expect("create wheel");
    let mut zip = ZipWriter::new(file);
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file("fake_model-0.1.dist-info/METADATA", options).expect("start METADATA");
    zip.write_all(b"Metadata-Version: 2.1\nName: fake-model\nVersion: 0.1\n").expect("write METADATA");
    zip.start_file(member, options).expect("start member");
    zip.write_all(content).expect("write member");
    zip.finish().expect("finish wheel");
}
