//! Every input the fuzzers kept — the corpora in fuzz/corpus/<target>/ and any finding in
//! fuzz/regressions/<target>/ — replayed through the same entry points the fuzz targets call
//! (`hearth::fuzzing`), on stable Rust, in every test run.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 3] = [
    ("gguf", hearth::fuzzing::gguf),
    ("hf_folder", hearth::fuzzing::hf_folder),
    ("tokenizer", hearth::fuzzing::tokenizer),
];

/// Runs `target` over every file in `dir`, returning how many there were.
fn replay(dir: &Path, target: Target) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        target(&bytes);
        n += 1;
    }
    n
}

#[test]
fn kept_fuzz_inputs_still_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in TARGETS {
        let kept = replay(&root.join("corpus").join(name), target);
        assert!(kept > 0, "fuzz/corpus/{name} is empty: run `cargo run --example fuzz_seeds`");
        let findings = replay(&root.join("regressions").join(name), target);
        eprintln!("{name}: {kept} corpus inputs, {findings} past findings");
    }
}
