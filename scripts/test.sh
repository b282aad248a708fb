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
# Likewise nats-server (JetStream, for the NATS engine's tests and its
# failure tests with a 3-server cluster), never the machine's on 4222.
command -v nats-server >/dev/null || need_packages nats-server

step "tests"
cargo test --workspace

step "fuzzing: every target for ${FUZZ_SECONDS:=30} s from its seed corpus (crates/*/fuzz/README.md)"
# cargo-fuzz on the stable toolchain, without a sanitizer (-s none): the code
# has no unsafe, and the runs find panics and broken promises (asserts).
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
fuzz() { # crate dir, target, seeds dir, extra libFuzzer flags...
    local dir=$1 target=$2 seeds=$3
    shift 3
    local corpus
    corpus="$(mktemp -d)"
    (cd "$dir" && cargo fuzz run -s none --fuzz-dir fuzz "$target" "$corpus" "$seeds" -- \
        -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$@" 2>&1 | tail -n 5)
    rm -rf "$corpus"
}
fuzz crates/codec decode fuzz/seeds/decode -dict=fuzz/decode.dict
fuzz crates/server publish_body fuzz/seeds/publish
fuzz crates/server selector fuzz/seeds/selector
# A 2 s per-input timeout: a match that is not linear in its input fails.
fuzz crates/server url_pattern fuzz/seeds/url_pattern -timeout=2 -max_len=8192

step "browser tests (Debian's Chromium, installed when missing)"
tests/browser/run.sh
