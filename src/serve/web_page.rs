//! `hearth serve --web DIR`: the files of a built page (web/dist) at `/`, beside the API, so a
//! browser gets the chat page from the same server (and the same thumb drive) as the model.

use std::path::{Component, Path, PathBuf};

/// A file of the page: its bytes and their media type.
pub struct PageFile {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
}

/// The file of `root` that `path` (a request's path, percent-encoded) names, `index.html` for
/// a folder; `None` for anything else: a name that does not exist, leaves `root` (`..`, a link
/// out of it) or is hidden (a dot file, such as `.git`).
pub fn page_file(root: &Path, path: &str) -> Option<PageFile> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8().ok()?;
    let mut relative = PathBuf::new();
    for part in decoded.split('/').filter(|p| !p.is_empty()) {
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) if !part.starts_with('.') && !part.contains('\\') => {
                relative.push(name)
            }
            _ => return None,
        }
    }
    let root = root.canonicalize().ok()?;
    let mut file = root.join(relative).canonicalize().ok()?;
    if file.is_dir() {
        file = file.join("index.html");
    }
    if !file.starts_with(&root) || !file.is_file() {
        return None;
    }
    let bytes = std::fs::read(&file).ok()?;
    Some(PageFile { bytes, media_type: media_type(&file) })
}

fn media_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" | "ts" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_page_and_nothing_outside_it() {
        let dir = std::env::temp_dir().join(format!("hearth-web-page-{}", std::process::id()));
        let page = dir.join("dist");
        std::fs::create_dir_all(page.join("pkg")).unwrap();
        std::fs::create_dir_all(page.join(".git")).unwrap();
        std::fs::write(page.join("index.html"), "<!doctype html>").unwrap();
        std::fs::write(page.join("pkg/hearth_web_bg.wasm"), [0, 97, 115, 109]).unwrap();
        std::fs::write(page.join(".git/config"), "secret").unwrap();
        std::fs::write(dir.join("outside.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.join("outside.txt"), page.join("link.txt")).unwrap();

        let index = page_file(&page, "/").unwrap();
        assert_eq!((index.bytes.as_slice(), index.media_type), (&b"<!doctype html>"[..], "text/html; charset=utf-8"));
        assert_eq!(page_file(&page, "/index.html").unwrap().bytes, index.bytes);
        let wasm = page_file(&page, "/pkg/hearth_web_bg.wasm").unwrap();
        assert_eq!(wasm.media_type, "application/wasm");
        assert_eq!(page_file(&page, "/pkg/").map(|f| f.bytes), None, "a folder without an index");
        for refused in [
            "/../outside.txt",
            "/pkg/../../outside.txt",
            "/%2e%2e/outside.txt",
            "/.git/config",
            "/link.txt",
            "/missing.js",
            "/%ff",
        ] {
            assert!(page_file(&page, refused).is_none(), "{refused}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
