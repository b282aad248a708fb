#!/usr/bin/env bash
# Side-by-side: the same `tidings bench` scenarios against Tidings, Nchan and
# the Node pattern, one server at a time, on loopback, in one run. Prints a
# Markdown table (and keeps the raw JSON reports in $OUT, default /tmp).
#
#   cargo build --release -p tidings && bench/compare.sh
#
# Scenarios (override with env vars):
#   idle        IDLE_SUBSCRIBERS (10000) idle subscribers: server memory each
#   latency     1000 subscribers, LATENCY_UPDATES (2000) at LATENCY_RATE (200/s)
#   throughput  1000 subscribers, THROUGHPUT_UPDATES (20000) as fast as
#               THROUGHPUT_PUBLISHERS (4) connections publish
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tidings="${TIDINGS_BIN:-$root/target/release/tidings}"
out="${OUT:-/tmp}"
idle_n="${IDLE_SUBSCRIBERS:-10000}"
lat_updates="${LATENCY_UPDATES:-2000}"
lat_rate="${LATENCY_RATE:-200}"
tp_updates="${THROUGHPUT_UPDATES:-20000}"
tp_publishers="${THROUGHPUT_PUBLISHERS:-4}"
[[ -x $tidings ]] || { echo "build first: cargo build --release -p tidings" >&2; exit 1; }
command -v node >/dev/null || { echo "node is needed for the Node peer" >&2; exit 1; }

server_pid=""
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; server_pid=""; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    return 1
}

# All pids of the server: the process and its children (nginx's workers).
pids_of() { echo "$1${2:+,}$(pgrep -P "$1" | paste -sd, -)"; }

run() { # name sub_url pub_url format_args...
    local name=$1 sub=$2 pub=$3; shift 3
    local pids; pids="$(pids_of "$server_pid" x)"; pids="${pids%,}"
    "$tidings" bench "$sub&scenario=idle" -n "$idle_n" --server-pid "$pids" --json > "$out/bench-$name-idle.json"
    "$tidings" bench "$sub" -n 1000 --publish-url "$pub" "$@" --updates "$lat_updates" --rate "$lat_rate" --server-pid "$pids" --json > "$out/bench-$name-latency.json" || true
    "$tidings" bench "$sub" -n 1000 --publish-url "$pub" "$@" --updates "$tp_updates" --rate 1000000 --publishers "$tp_publishers" --server-pid "$pids" --json > "$out/bench-$name-throughput.json" || true
}

port=3200
data="$(mktemp -d)"
"$tidings" serve --listen 127.0.0.1:$port --storage memory --max-connections 19000 --max-connections-per-ip 19000 \
    --history-max-count 1000000 --data-dir "$data" > "$data/banner" 2>/dev/null &
server_pid=$!
wait_port $port
token="$(grep -o 'publisher token (24 h): *[^ ]*' "$data/banner" | awk '{print $NF}')"
run tidings "http://127.0.0.1:$port/.well-known/mercure?topic=bench" "http://127.0.0.1:$port/.well-known/mercure" --topic bench --token "$token"
cleanup

port=3201
"$root/bench/peers/nchan.sh" $port > /dev/null 2>&1 &
server_pid=$!
wait_port $port
sleep 0.5 # nginx forks its workers after binding
nginx_master="$(pgrep -f "tidings-nchan" | head -1)"
server_pid=$nginx_master
run nchan "http://127.0.0.1:$port/sub?id=bench" "http://127.0.0.1:$port/pub?id=bench"
kill "$nginx_master"; wait 2>/dev/null || true; server_pid=""

port=3202
node "$root/bench/peers/node-sse.mjs" $port &
server_pid=$!
wait_port $port
run node "http://127.0.0.1:$port/sub?id=bench" "http://127.0.0.1:$port/pub?id=bench"
cleanup

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(name, scenario):
    try:
        return json.load(open(os.path.join(out, f"bench-{name}-{scenario}.json")))
    except Exception:
        return None
def cell(report, get, fmt="{:.0f}"):
    try:
        value = get(report)
        return "–" if value is None else fmt.format(value)
    except Exception:
        return "–"
print("| server | bytes per idle subscriber | latency run: deliveries/s | p50 µs | p99 µs | server CPU ns/delivery | lost | throughput run: deliveries/s | p99 µs | server CPU ns/delivery | lost |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in ["tidings", "nchan", "node"]:
    idle, lat, tp = load(name, "idle"), load(name, "latency"), load(name, "throughput")
    print("| " + " | ".join([
        name,
        cell(idle, lambda r: r["server_bytes_per_idle_subscriber"]),
        cell(lat, lambda r: r["deliveries_per_sec"]),
        cell(lat, lambda r: r["latency_us"]["p50"]),
        cell(lat, lambda r: r["latency_us"]["p99"]),
        cell(lat, lambda r: r["server_cpu_ns_per_delivery"]),
        cell(lat, lambda r: r["lost"]),
        cell(tp, lambda r: r["deliveries_per_sec"]),
        cell(tp, lambda r: r["latency_us"]["p99"]),
        cell(tp, lambda r: r["server_cpu_ns_per_delivery"]),
        cell(tp, lambda r: r["lost"]),
    ]) + " |")
PY
