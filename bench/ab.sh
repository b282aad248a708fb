#!/usr/bin/env bash
# A/B of two builds of `tidings serve` (one memory-storage node), alternating,
# two rounds, the same load generator (the new build's `tidings bench`):
# compare.sh's latency and throughput scenarios, and 100 subscribers at 200/s.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY
#
# e.g. an older commit built elsewhere:
#   git worktree add /tmp/old 6b5fcc7 && (cd /tmp/old && CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p tidings)
#   bench/ab.sh /tmp/old-target/release/tidings target/release/tidings
set -euo pipefail
old="${1:?usage: ab.sh OLD_BINARY NEW_BINARY}"
new="${2:?usage: ab.sh OLD_BINARY NEW_BINARY}"
gen="$new"
key=tidings-bench-key-0123456789abcdef0123456789
token=$($gen token --key $key --publish '*')
for round in 1 2; do
  for name in old new; do
    bin="$new"; [[ $name == old ]] && bin="$old"
    d=$(mktemp -d); $bin serve --listen 127.0.0.1:3401 --storage memory --jwt-key $key --anonymous --max-connections 19000 --max-connections-per-ip 19000 --history-max-count 1000000 --data-dir $d > $d/log 2>&1 & pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:3401/healthz >/dev/null && break; sleep 0.05; done
    lat=$($gen bench 'http://127.0.0.1:3401/.well-known/mercure?topic=bench' -n 1000 --publish-url http://127.0.0.1:3401/.well-known/mercure --topic bench --token $token --updates 2000 --rate 200 --server-pid $pid --json)
    tp=$($gen bench 'http://127.0.0.1:3401/.well-known/mercure?topic=bench' -n 1000 --publish-url http://127.0.0.1:3401/.well-known/mercure --topic bench --token $token --updates 10000 --rate 1000000 --publishers 4 --server-pid $pid --json)
    light=$($gen bench 'http://127.0.0.1:3401/.well-known/mercure?topic=bench' -n 100 --publish-url http://127.0.0.1:3401/.well-known/mercure --topic bench --token $token --updates 2000 --rate 200 --server-pid $pid --json)
    kill $pid; wait $pid 2>/dev/null || true; rm -rf $d
    python3 - "$name" "$round" "$lat" "$tp" "$light" <<'PY'
import json,sys
n,r,lat,tp,light=sys.argv[1],sys.argv[2],*map(json.loads,sys.argv[3:])
f=lambda x:f"{x['deliveries_per_sec']:.0f}/s p50 {x['latency_us']['p50']} p99 {x['latency_us']['p99']} cpu {x['server_cpu_ns_per_delivery']:.0f} ns lost {x['lost']}"
print(f"round {r} {n}: latency[{f(lat)}] throughput[{f(tp)}] light100[{f(light)}]")
PY
  done
done
