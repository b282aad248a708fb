#!/usr/bin/env bash
# Memory per idle subscriber over plain HTTP/1.1 and over TLS (HTTP/1.1 by
# ALPN), Tidings and Nchan (nginx), in one run, with the same `tidings bench`.
#
#   cargo build --release -p tidings && bench/tls.sh      # IDLE_SUBSCRIBERS (10000)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tidings="${TIDINGS_BIN:-$root/target/release/tidings}"
n="${IDLE_SUBSCRIBERS:-10000}"
[[ -x $tidings ]] || { echo "build first: cargo build --release -p tidings" >&2; exit 1; }
pid=""
work="$(mktemp -d /tmp/tidings-tls-bench.XXXXXX)"
stop() { [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap 'stop; rm -rf "$work"' EXIT
wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nothing listens on $1" >&2; return 1
}
measure() { # name url pids
    local per
    per="$("$tidings" bench "$2" -n "$n" --server-pid "$3" --json 2>/dev/null |
        python3 -c 'import json,sys; print(round(json.load(sys.stdin)["server_bytes_per_idle_subscriber"]))')"
    printf '| %s | %s |\n' "$1" "$per"
}
echo "| server, $n idle subscribers | bytes per subscriber |"
echo "| --- | ---: |"
for tls in no yes; do
    flags=(); scheme=http
    [[ $tls == yes ]] && { flags=(--tls-self-signed); scheme=https; }
    "$tidings" serve --listen 127.0.0.1:3501 --storage memory --max-connections 19000 \
        --max-connections-per-ip 19000 --data-dir "$work/tidings" "${flags[@]}" > /dev/null 2>&1 &
    pid=$!
    wait_port 3501
    measure "tidings ($scheme)" "$scheme://127.0.0.1:3501/.well-known/mercure?topic=idle" "$pid"
    stop
    if [[ $tls == yes ]]; then TLS=1 "$root/bench/peers/nchan.sh" 3502 > /dev/null 2>&1 & else "$root/bench/peers/nchan.sh" 3502 > /dev/null 2>&1 & fi
    pid=$!
    wait_port 3502
    sleep 0.5 # nginx forks its workers after binding
    master="$(pgrep -P "$pid" -f 'nginx: master' || echo "$pid")"
    measure "nchan ($scheme)" "$scheme://127.0.0.1:3502/sub?id=idle" "$master,$(pgrep -P "$master" | paste -sd, -)"
    kill "$master" 2>/dev/null || true
    stop
done
