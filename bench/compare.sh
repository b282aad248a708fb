#!/usr/bin/env bash
# Side by side, in one run, with one load generator (`tidings bench`): Tidings,
# Nchan (nginx, 2 workers), Pushpin and the Node pattern, one server at a time
# on loopback, each on a fresh process; then Tidings as three nodes on Redis.
# Writes the raw JSON reports to $OUT (default /tmp/tidings-compare), and the
# Markdown tables and SVG charts to $OUT/report.md and $OUT/*.svg
# (bench/compare-report.py; copy them into BENCHMARKS.md and docs/bench/).
#
#   cargo build --release -p tidings && bench/compare.sh
#
# Scenarios (the issue's A-F; SERVERS and SCENARIOS pick a subset):
#   A idle      10 000 idle subscribers: server memory each; Tidings also holds
#               19 000 at once under its default connection limit
#   B fan-out   1 000 subscribers on one topic, 2 000 x 100 B as fast as 1, 4,
#               16 and 64 publishing connections go
#   C wide      10 000 subscribers, 200 x 100 B at 50/s: latency (C_RATE sets
#               the rate, to compare at what the slowest server sustains)
#   D topics    10 000 subscribers each on its own topic, 10 000 updates
#               spread over them (16 publishing connections)
#   E large     1 000 subscribers, 200 x 64 KiB (4 publishing connections)
#   F storm     5 000 subscribers reconnect at once with a Last-Event-ID 1 000
#               updates back: time until all caught up (servers that resume)
#   cluster     B (4 and 64 publishers) and C on three Tidings nodes on Redis
# Every process it starts is stopped by its PID when it ends.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tidings="${TIDINGS_BIN:-$root/target/release/tidings}"
out="${OUT:-/tmp/tidings-compare}"
servers="${SERVERS:-tidings nchan pushpin node}"
scenarios="${SCENARIOS:-A B C D E F cluster}"
key="tidings-bench-key-0123456789abcdef0123456789"
[[ -x $tidings ]] || { echo "build first: cargo build --release -p tidings" >&2; exit 1; }
command -v node >/dev/null || { echo "node is needed (the Node peer, Pushpin's origin)" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out/machine.txt"
work="$(mktemp -d /tmp/tidings-compare.XXXXXX)"

server_pid=""
extra_pids=()
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    for pid in "${extra_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${extra_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    server_pid=""; extra_pids=()
    return 0
}
trap 'stop_server; rm -rf "$work"' EXIT

wait_port() { # port: until it accepts connections
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

wait_http() { # url: until it answers at all
    for _ in $(seq 200); do
        curl -s -o /dev/null -m 0.3 "$1" && return 0
        sleep 0.05
    done
    echo "nothing answers on $1" >&2
    return 1
}

# A process and all its descendants, comma-separated: what --server-pid sums.
tree() {
    local list=$1 child
    for child in $(pgrep -P "$1" || true); do list="$list,$(tree "$child")"; done
    echo "$list"
}

wanted() { [[ " $scenarios " == *" $1 "* ]]; }

bench() { # name, scenario, args...: one report; @S@ in the args becomes the scenario
    local name=$1 scenario=$2; shift 2
    echo "  $name $scenario" >&2
    # A channel (topic) of its own per scenario: Nchan sends the messages it
    # buffered on a channel to new subscribers, which would then wade through
    # the previous scenario's updates (measured: 2 000 000 of them in B4).
    local args=("${@//@S@/$scenario}")
    "$tidings" bench "${args[@]}" --json > "$out/$name-$scenario.json" 2> "$out/$name-$scenario.err" || true
}

run_scenarios() { # name, sub URL, spread sub URL, publish args..., --, spread publish args...
    local name=$1 sub=$2 spread=$3; shift 3
    local pub=() spread_pub=() seen=0 pids
    for arg in "$@"; do
        if [[ $arg == -- ]]; then seen=1; continue; fi
        if ((seen)); then spread_pub+=("$arg"); else pub+=("$arg"); fi
    done
    pids="$(tree "$server_pid")"
    for pid in "${extra_pids[@]}"; do pids="$pids,$(tree "$pid")"; done
    if wanted A; then
        bench "$name" A -n 10000 "$sub" --server-pid "$pids"
        if [[ $name == tidings ]]; then
            bench "$name" A19k -n 19000 --connect-concurrency 500 "$sub" --server-pid "$pids"
        fi
    fi
    if wanted B; then
        for p in 1 4 16 64; do
            bench "$name" "B$p" "$sub" -n 1000 "${pub[@]}" --updates 2000 --payload 100 \
                --rate 1000000 --publishers "$p" --server-pid "$pids" --drain-timeout 30
        done
    fi
    if wanted C; then
        bench "$name" C "$sub" -n 10000 "${pub[@]}" --updates 200 --payload 100 --rate "${C_RATE:-50}" \
            --server-pid "$pids" --drain-timeout 30
    fi
    if wanted D; then
        bench "$name" D "$spread" -n 10000 "${spread_pub[@]}" --updates 10000 --payload 100 \
            --rate 1000000 --publishers 16 --server-pid "$pids" --drain-timeout 30
    fi
    if wanted E; then
        bench "$name" E "$sub" -n 1000 "${pub[@]}" --updates 200 --payload 65536 \
            --rate 1000000 --publishers 4 --server-pid "$pids" --drain-timeout 60
    fi
    if wanted F && [[ $name == tidings || $name == nchan ]]; then
        bench "$name" F "$sub" -n 5000 "${pub[@]}" --updates 1000 --payload 100 --storm \
            --rate 1000000 --publishers 4 --connect-concurrency 5000 --server-pid "$pids" \
            --drain-timeout 60
    fi
}

token="$("$tidings" token --key "$key" --publish '*')"
tidings_pub=(--topic bench-@S@ --token "$token")
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
{
    echo "machine: $machine"
    echo "started: $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "tidings: $("$tidings" --version 2>/dev/null || echo '?') ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
} >> "$out/machine.txt"

for name in $servers; do
    echo "== $name" >&2
    case $name in
        tidings)
            port=3200
            # The default connection limit (from the open-file limit); only the
            # per-IP limit is raised, every subscriber coming from 127.0.0.1.
            "$tidings" serve --listen 127.0.0.1:$port --storage memory --jwt-key "$key" --anonymous \
                --max-connections-per-ip 19900 --history-max-count 1000000 --data-dir "$work/tidings" \
                > "$work/tidings.log" 2>&1 &
            server_pid=$!
            wait_http "http://127.0.0.1:$port/healthz"
            base="http://127.0.0.1:$port/.well-known/mercure"
            run_scenarios tidings "$base?topic=bench-@S@" "$base?topic=https://example.com/u/@S@/{n}" \
                --publish-url "$base" "${tidings_pub[@]}" -- \
                --publish-url "$base" --topic 'https://example.com/u/@S@/{n}' --token "$token"
            ;;
        nchan)
            port=3201
            WORKERS=2 "$root/bench/peers/nchan.sh" $port > "$work/nchan.log" 2>&1 &
            server_pid=$!
            wait_http "http://127.0.0.1:$port/pub?id=probe"
            sleep 0.5 # the workers fork after the bind
            run_scenarios nchan "http://127.0.0.1:$port/sub?id=bench-@S@" "http://127.0.0.1:$port/sub?id=@S@-{n}" \
                --publish-url "http://127.0.0.1:$port/pub?id=bench-@S@" -- \
                --publish-url "http://127.0.0.1:$port/pub?id=@S@-{n}"
            ;;
        pushpin)
            port=3203
            "$root/bench/peers/pushpin.sh" $port > "$work/pushpin.log" 2>&1 &
            server_pid=$!
            for _ in $(seq 100); do
                [[ "$(curl -s -o /dev/null -w '%{http_code}' -m 0.3 "http://127.0.0.1:$port/sub?id=probe")" == 200 ]] && break
                sleep 0.1
            done
            run_scenarios pushpin "http://127.0.0.1:$port/sub?id=bench-@S@" "http://127.0.0.1:$port/sub?id=@S@-{n}" \
                --publish-url "http://127.0.0.1:$((port + 1000))/publish/" --grip-channel bench-@S@ -- \
                --publish-url "http://127.0.0.1:$((port + 1000))/publish/" --grip-channel '@S@-{n}'
            ;;
        node)
            port=3202
            node "$root/bench/peers/node-sse.mjs" $port > "$work/node.log" 2>&1 &
            server_pid=$!
            wait_port $port
            run_scenarios node "http://127.0.0.1:$port/sub?id=bench-@S@" "http://127.0.0.1:$port/sub?id=@S@-{n}" \
                --publish-url "http://127.0.0.1:$port/pub?id=bench-@S@" -- \
                --publish-url "http://127.0.0.1:$port/pub?id=@S@-{n}"
            ;;
    esac
    stop_server
done

if wanted cluster; then
    echo "== cluster" >&2
    command -v redis-server >/dev/null || { echo "redis-server is needed (apt-get install redis-server)" >&2; exit 1; }
    mkdir -p "$work/redis"
    redis-server --port 3320 --bind 127.0.0.1 --dir "$work/redis" --save "" --appendonly no \
        --daemonize no > "$work/redis.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do [[ "$(redis-cli -p 3320 ping 2>/dev/null)" == PONG ]] && break; sleep 0.05; done
    subs=() pubs=()
    for port in 3321 3322 3323; do
        "$tidings" serve --listen "127.0.0.1:$port" --jwt-key "$key" --anonymous --max-connections-per-ip 19900 \
            --history-max-count 1000000 --data-dir "$work/node-$port" --redis redis://127.0.0.1:3320/0 \
            > "$work/node-$port.log" 2>&1 &
        extra_pids+=($!)
        for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
        subs+=("http://127.0.0.1:$port/.well-known/mercure?topic=bench-@S@")
        pubs+=(--publish-url "http://127.0.0.1:$port/.well-known/mercure")
    done
    pids="$server_pid,$(IFS=,; echo "${extra_pids[*]}")"
    for p in 4 64; do
        bench cluster "B$p" "${subs[@]}" -n 1000 "${pubs[@]}" "${tidings_pub[@]}" --updates 2000 \
            --payload 100 --rate 1000000 --publishers "$p" --server-pid "$pids" --drain-timeout 30
    done
    bench cluster C "${subs[@]}" -n 10000 "${pubs[@]}" "${tidings_pub[@]}" --updates 200 --payload 100 \
        --rate 50 --server-pid "$pids" --drain-timeout 30
    stop_server
fi

# After the runs: the peers' scripts install nginx and Pushpin when missing.
{
    echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2 || echo '?'); pushpin: $(pushpin --version 2>/dev/null | head -1 || echo '?'); node: $(node --version)"
    echo "finished: $(date -u '+%Y-%m-%d %H:%M UTC')"
} >> "$out/machine.txt"
python3 "$root/bench/compare-report.py" "$out"
echo "report: $out/report.md" >&2
