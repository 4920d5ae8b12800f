#!/usr/bin/env bash
# Builds the browser page into web/dist/: a self-contained static site (index.html, the page's
# scripts, the wasm module and its JS glue) that any static file server can serve.
#
# The wasm32 build uses rustup's wasm32 target, adding it when rustup can download it; otherwise
# Debian's Rust (packages rustc-web cargo-web rust-web-src lld-19), building std from source,
# which works only where Debian's rustc is as new as the locked dependencies ask (1.88 in
# December 2026; bookworm's mirror served 1.85 then). wasm-bindgen-cli
# is installed with `cargo install` at the version web/Cargo.toml pins, if it is not already.
#
# The default model is linked into dist/models/ when it is in hearth's cache (`hearth pull`).
set -euo pipefail
web="$(cd "$(dirname "$0")" && pwd)"
cd "$web"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$web/../target/wasm}"
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/hearth_web.wasm"

echo "== wasm32 build" >&2
# wasm-bindgen strips debug info from the module, so building it is wasted time.
export CARGO_PROFILE_RELEASE_DEBUG=false
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown >&2 || echo "note: rustup could not add the wasm32 target; trying Debian's Rust" >&2
fi
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  cargo build --release --target wasm32-unknown-unknown
else
  PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld \
    cargo build --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
fi

version=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
  echo "== installing wasm-bindgen-cli $version" >&2
  # Optimizing it fully takes minutes longer to build and gains nothing: it reads our module in
  # under a second either way (same output).
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install --force wasm-bindgen-cli --version "$version"
fi

echo "== dist/" >&2
rm -rf dist
mkdir -p dist/pkg dist/models
wasm-bindgen --target web --no-typescript --out-dir dist/pkg "$wasm"
cp index.html style.css app.js hearth.js engine-worker.js model-cache.js model-source.js range-reader.js sw.js hearth.d.ts dist/
model="${HEARTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$model" ]; then
  ln -sf "$model" dist/models/
else
  echo "note: the default model is not in hearth's cache; run 'hearth pull' and build again, or pick a file in the page" >&2
fi
echo "built $web/dist ($(du -sh dist/pkg | cut -f1) of wasm and glue); serve it with e.g. python3 -m http.server -d web/dist" >&2
