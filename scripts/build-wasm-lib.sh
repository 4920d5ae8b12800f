#!/usr/bin/env bash
# Builds the hearth library for wasm32-unknown-unknown, so the core never grows a dependency
# the browser cannot take. Uses a rustup wasm32 target where one is installed; otherwise
# Debian's Rust (packages rustc-web cargo-web rust-web-src lld-19) building std from source.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/wasm}"
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  cargo build --lib --release --target wasm32-unknown-unknown
else
  PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld \
    cargo build --lib --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
fi
