#!/usr/bin/env bash
# One node against a cluster on Redis, in one run, driven by the same
# `tidings bench`: publish->receive latency at a moderate rate, and
# deliveries/s at saturation. Everything on loopback; every process this
# script starts (nodes, redis-server) is stopped by its PID when it ends.
#
#   cargo build --release -p tidings && bench/cluster.sh
#
# Setups, each on fresh processes:
#   single-memory  one `tidings serve --storage memory`
#   single-redb    one `tidings serve` with its redb log (fsync per batch)
#   redis-1        one node on Redis (no persistence)
#   redis-3        three nodes on one Redis (no persistence); subscribers and
#                  publishing connections spread over the three
#   redis-3-aof    the same with AOF, appendfsync everysec
# Scenarios (override with env vars):
#   latency     SUBSCRIBERS (1000) subscribers, LATENCY_UPDATES (2000) at
#               LATENCY_RATE (200/s) from one publishing connection
#   throughput  SUBSCRIBERS subscribers, THROUGHPUT_UPDATES (10000) as fast
#               as THROUGHPUT_PUBLISHERS (4) connections publish
# SCENARIOS (default "latency throughput") picks which run; SETUPS (default all
# five) which setups. Server CPU per delivery sums every node and redis-server.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tidings="${TIDINGS_BIN:-$root/target/release/tidings}"
out="${OUT:-/tmp}"
subscribers="${SUBSCRIBERS:-1000}"
lat_updates="${LATENCY_UPDATES:-2000}"
lat_rate="${LATENCY_RATE:-200}"
tp_updates="${THROUGHPUT_UPDATES:-10000}"
tp_publishers="${THROUGHPUT_PUBLISHERS:-4}"
scenarios="${SCENARIOS:-latency throughput}"
setups="${SETUPS:-single-memory single-redb redis-1 redis-3 redis-3-aof}"
key="tidings-bench-key-0123456789abcdef0123456789"
[[ -x $tidings ]] || { echo "build first: cargo build --release -p tidings" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }

pids=()
work="$(mktemp -d /tmp/tidings-cluster-bench.XXXXXX)"
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

wait_ready() {
    for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "node on port $1 is not ready" >&2
    return 1
}

start_redis() { # port, extra args...
    local port=$1; shift
    mkdir -p "$work/redis-$port"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis-$port" --save "" \
        --daemonize no "$@" > "$work/redis-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        [[ "$(redis-cli -p "$port" ping 2>/dev/null)" == PONG ]] && return 0
        sleep 0.05
    done
    echo "redis-server on port $port did not start" >&2
    return 1
}

start_node() { # port, extra args...
    local port=$1; shift
    mkdir -p "$work/node-$port"
    "$tidings" serve --listen "127.0.0.1:$port" --jwt-key "$key" --anonymous \
        --max-connections 19000 --max-connections-per-ip 19000 --history-max-count 1000000 \
        --data-dir "$work/node-$port" "$@" > "$work/node-$port.log" 2>&1 &
    pids+=($!)
    wait_ready "$port"
}

token="$("$tidings" token --key "$key" --publish '*')"

run() { # name, ports...
    local name=$1; shift
    local subs=() pubs=() pid_list
    for port in "$@"; do
        subs+=("http://127.0.0.1:$port/.well-known/mercure?topic=bench")
        pubs+=(--publish-url "http://127.0.0.1:$port/.well-known/mercure")
    done
    pid_list="$(IFS=,; echo "${pids[*]}")"
    rm -f "$out/cluster-$name-latency.json" "$out/cluster-$name-throughput.json"
    if [[ " $scenarios " == *" latency "* ]]; then
        "$tidings" bench "${subs[@]}" -n "$subscribers" "${pubs[@]}" --topic bench --token "$token" \
            --updates "$lat_updates" --rate "$lat_rate" --server-pid "$pid_list" --json \
            > "$out/cluster-$name-latency.json" || true
    fi
    if [[ " $scenarios " == *" throughput "* ]]; then
        "$tidings" bench "${subs[@]}" -n "$subscribers" "${pubs[@]}" --topic bench --token "$token" \
            --updates "$tp_updates" --rate 1000000 --publishers "$tp_publishers" \
            --server-pid "$pid_list" --json > "$out/cluster-$name-throughput.json" || true
    fi
}

wanted() { [[ " $setups " == *" $1 "* ]]; }

if wanted single-memory; then
    start_node 3301 --storage memory
    run single-memory 3301
    stop_all
fi

if wanted single-redb; then
    start_node 3302
    run single-redb 3302
    stop_all
fi

if wanted redis-1; then
    start_redis 3310 --appendonly no
    start_node 3311 --redis redis://127.0.0.1:3310/0
    run redis-1 3311
    stop_all
fi

if wanted redis-3; then
    start_redis 3320 --appendonly no
    for port in 3321 3322 3323; do start_node $port --redis redis://127.0.0.1:3320/0; done
    run redis-3 3321 3322 3323
    stop_all
fi

if wanted redis-3-aof; then
    start_redis 3330 --appendonly yes --appendfsync everysec
    for port in 3331 3332 3333; do start_node $port --redis redis://127.0.0.1:3330/0; done
    run redis-3-aof 3331 3332 3333
    stop_all
fi

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(name, scenario):
    try:
        return json.load(open(os.path.join(out, f"cluster-{name}-{scenario}.json")))
    except Exception:
        return None
def cell(report, get, fmt="{:.0f}"):
    try:
        value = get(report)
        return "–" if value is None else fmt.format(value)
    except Exception:
        return "–"
print("| setup | latency run: deliveries/s | p50 µs | p99 µs | CPU ns/delivery | lost | throughput run: deliveries/s | p50 µs | p99 µs | CPU ns/delivery | lost |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name in os.environ.get("SETUPS", "single-memory single-redb redis-1 redis-3 redis-3-aof").split():
    lat, tp = load(name, "latency"), load(name, "throughput")
    print("| " + " | ".join([
        name,
        cell(lat, lambda r: r["deliveries_per_sec"]),
        cell(lat, lambda r: r["latency_us"]["p50"]),
        cell(lat, lambda r: r["latency_us"]["p99"]),
        cell(lat, lambda r: r["server_cpu_ns_per_delivery"]),
        cell(lat, lambda r: r["lost"]),
        cell(tp, lambda r: r["deliveries_per_sec"]),
        cell(tp, lambda r: r["latency_us"]["p50"]),
        cell(tp, lambda r: r["latency_us"]["p99"]),
        cell(tp, lambda r: r["server_cpu_ns_per_delivery"]),
        cell(tp, lambda r: r["lost"]),
    ]) + " |")
PY
