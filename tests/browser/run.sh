#!/usr/bin/env bash
# The dashboard's real-browser tests, from a fresh Debian machine: installs
# Debian's Chromium (and Node.js) when missing, the pinned playwright-core
# (which downloads no browser), builds the hub unless TIDINGS_BIN names one,
# builds the examples unless TIDINGS_EXAMPLES_DIR names them, and runs Node's
# test runner. Exits non-zero on any failure; never skips.
#
#   tests/browser/run.sh                      # everything
#   TIDINGS_BIN=target/release/tidings tests/browser/run.sh
#   TIDINGS_UPDATE_DOCS=1 tests/browser/run.sh   # also refresh docs/dashboard.png
set -euo pipefail
invoked_from="$PWD"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

step() { printf '\n== %s\n' "$*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    step "installing $*"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
[[ -x "$chromium" ]] || apt_install chromium
[[ -x "$chromium" ]] || { echo "error: $chromium is still missing after installing chromium" >&2; exit 1; }

command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if ((node_major < 20)); then
    echo "error: playwright-core needs Node.js 20 or newer; this machine has $(node --version)" >&2
    exit 1
fi

pinned="$(node -p 'require("./package.json").devDependencies["playwright-core"]')"
installed="$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch { "" }')"
if [[ "$installed" != "$pinned" ]]; then
    step "npm ci (playwright-core $pinned, no browser download)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))')"
if [[ -z "${TIDINGS_BIN:-}" ]]; then
    step "building the hub"
    (cd "$root" && cargo build -p tidings)
    export TIDINGS_BIN="$target_dir/debug/tidings"
fi
# A relative TIDINGS_BIN is taken from where the script was started.
TIDINGS_BIN="$(cd "$invoked_from" && realpath -m "$TIDINGS_BIN")"
[[ -x "$TIDINGS_BIN" ]] || { echo "error: TIDINGS_BIN=$TIDINGS_BIN is not an executable" >&2; exit 1; }
export TIDINGS_BIN CHROMIUM_BIN="$chromium"
if [[ -z "${TIDINGS_EXAMPLES_DIR:-}" ]]; then
    step "building the examples"
    (cd "$root" && cargo build -p tidings-examples --examples)
    export TIDINGS_EXAMPLES_DIR="$target_dir/debug/examples"
fi

step "browser tests ($TIDINGS_BIN, $("$chromium" --version 2>/dev/null | tail -n 1))"
node --test --test-concurrency=1 --test-timeout=120000 dashboard.test.mjs http2.test.mjs mercure08.test.mjs client.test.mjs examples.test.mjs
