#!/usr/bin/env bash
# Every check the project has, in the order CI runs them. Installs what it needs
# on a fresh Debian machine with Rust (system packages via apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Installs the Debian packages named, if any of them is missing.
need_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        step "installing ${missing[*]}"
        local sudo=""
        [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
}

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

step "format"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

# The cluster tests start redis-server themselves, on free ports with their
# own temp dirs; they never use a Redis the machine may already run on 6379.
command -v redis-server >/dev/null || need_packages redis-server

step "tests"
cargo test --workspace

step "fuzz target builds (run it with: see crates/codec/fuzz/README.md)"
cargo check --locked --manifest-path crates/codec/fuzz/Cargo.toml --no-default-features

step "browser tests (Debian's Chromium, installed when missing)"
tests/browser/run.sh
