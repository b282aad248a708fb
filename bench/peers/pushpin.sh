#!/usr/bin/env bash
# Pushpin (Fanout's GRIP proxy: condure in Rust, the handler and proxy in C++/Qt)
# on loopback, for side-by-side runs.
#   bench/peers/pushpin.sh PORT    # runs in the foreground until killed
# Ports, all on 127.0.0.1 and all derived from PORT:
#   PORT       subscribers: GET /sub?id=CHANNEL (EventSource)
#   PORT+1000  publish (Pushpin's HTTP control API):
#              POST /publish/ with a JSON body, many items per POST allowed:
#              {"items":[{"channel":"CHANNEL","formats":{"http-stream":
#                {"content":"data: hello\n\n"}}}]}
#              "content" is written to the subscribers as it is, so it must be
#              a whole SSE event, the closing blank line ("\n\n") included.
#   PORT+2000  the GRIP origin, bench/peers/grip-origin.mjs (Node), which
#              answers /sub?id=X with Grip-Hold: stream and Grip-Channel: X,
#              ORIGIN_RATE (default 1000) answers a second at most: see there
# Ready when PORT+1000 answers (GET / says "Pushpin API") and a GET on
# PORT/sub answers 200. Installs Debian's pushpin (with condure and zurl)
# when missing. Everything (config, routes, logs, ZeroMQ ipc sockets, pid
# files) lives in a temporary directory, so a system Pushpin is not touched.
set -euo pipefail
port="${1:?usage: pushpin.sh PORT}"
pub_port=$((port + 1000))
origin_port=$((port + 2000))
((origin_port <= 65535)) || { echo "pushpin.sh: PORT must be at most 63535" >&2; exit 2; }
if ! command -v pushpin >/dev/null || ! command -v condure >/dev/null || ! command -v zurl >/dev/null; then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    # policy-rc.d or not, we never use the system service it may start.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq pushpin condure zurl
fi
command -v node >/dev/null || { echo "pushpin.sh: node is needed for the GRIP origin" >&2; exit 1; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# 10 000 subscribers are 10 000 sockets in condure: take the hard limit, up
# to 20 000 (this machine's per-process ceiling), for every child.
nofile="$(ulimit -Hn)"
[[ $nofile == unlimited || $nofile -gt 20000 ]] && nofile=20000
ulimit -n "$nofile"

dir="$(mktemp -d /tmp/tidings-pushpin.XXXXXX)"
pids=()
cleanup() {
    trap - EXIT INT TERM
    # The runner stops its services on TERM; then make sure, by the pid files
    # it wrote, that none of them outlived it.
    local pid f
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for f in "$dir"/run/*.pid; do
        [[ -f $f ]] || continue
        pid="$(cat "$f")"
        # only if it is still ours: its command line names this run dir
        if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
mkdir -p "$dir/run" "$dir/logs"

echo "* 127.0.0.1:$origin_port" > "$dir/routes"
# Our own libdir (the shipped internal.conf, and zurl's config template) so
# zurl's queues can be raised: in_hwm/out_hwm 1000 -> 100 000 (out_spec is a
# PUB socket, which drops responses past its HWM), max_open_requests 2000 ->
# 15 000 (each is a socket, under the 20 000 open files).
mkdir -p "$dir/lib/runner"
cp /usr/lib/pushpin/internal.conf "$dir/lib/"
sed -e 's/^in_hwm=.*/in_hwm=100000/' -e 's/^out_hwm=.*/out_hwm=100000/' \
    -e 's/^max_open_requests=.*/max_open_requests=15000/' \
    /usr/lib/pushpin/runner/zurl.conf.template > "$dir/lib/runner/zurl.conf.template"
# The Debian defaults (/etc/pushpin/pushpin.conf) with these changes:
# - rundir, logdir and every ZeroMQ spec that is tcp:// there (push_in_spec
#   5560, push_in_sub_specs 5562, command_spec 5563) are ipc:// sockets in
#   $dir/run; the HTTP ports are PORT and PORT+1000 on 127.0.0.1.
# - zurl (pushpin-proxy's HTTP client towards the origin) is one of our
#   services, its specs in $dir/run: Debian's internal.conf points the proxy
#   at a system zurl in /var/run/zurl instead.
# - zurl_out_specs names zurl's one PULL socket 8 times: pushpin-proxy then
#   holds 8 pipes to it instead of 1. It asks zurl for one origin request
#   per new subscriber and, when its PUSH socket is momentarily full (HWM 100,
#   fixed in the code), answers 502 "Error while proxying to origin" rather
#   than wait: with 1 pipe that hit 1-4 % of 2000 subscribers connecting 200
#   at a time (tidings bench's connect concurrency), with 8 none.
# - message_rate: Debian ships 2500, and the handler counts one action per
#   subscriber per message, so one message to 10 000 subscribers would take
#   4 s and anything past message_hwm (25 000 queued) is dropped with a
#   warning. 0 turns the rate limiter off (every queued delivery goes out on
#   the next event-loop turn) and message_hwm=0 turns the drop off.
#   message_block_size stays unset, so each message weighs 1.
# - push_in_max_body_size: 1 MB by default, 64 MB here, so one POST may carry
#   many thousands of items. (1.36 reads push_in_max_*; the shipped file's
#   push_in_http_max_* names are ignored, set too in case a later one reads them.)
# - client_maxconn 18 000 (under the 20 000 open files), log_level 1
#   (warnings: no line per request), stats over ipc only, no update check.
zurl_in="ipc://$dir/run/pushpin-zurl-in"; zurl_in="$zurl_in,$zurl_in,$zurl_in,$zurl_in"; zurl_in="$zurl_in,$zurl_in"
cat > "$dir/pushpin.conf" <<CONF
[global]
libdir=$dir/lib
include={libdir}/internal.conf
rundir=$dir/run
ipc_prefix=pushpin-
port_offset=0
stats_connection_ttl=120

[runner]
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:$port
logdir=$dir/logs
log_level=1
client_buffer_size=8192
client_maxconn=18000
condure_bin=condure
zurl_bin=zurl

[proxy]
routesfile=routes
debug=false
auto_cross_origin=false
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
accept_pushpin_route=false
log_from=false
log_user_agent=false
sig_iss=pushpin
sig_key=tidings-bench
updates_check=off
zurl_out_specs=$zurl_in
zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream
zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out

[handler]
push_in_spec=ipc://{rundir}/{ipc_prefix}push-in
push_in_sub_specs=ipc://{rundir}/{ipc_prefix}push-in-sub
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=$pub_port
push_in_max_headers_size=10000
push_in_max_body_size=64000000
push_in_http_max_headers_size=10000
push_in_http_max_body_size=64000000
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=ipc://{rundir}/{ipc_prefix}command
message_rate=0
message_hwm=0
message_wait=5000
id_cache_ttl=60
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
CONF

node "$here/grip-origin.mjs" "$origin_port" "${ORIGIN_RATE:-1000}" &
pids+=($!)
pushpin --config "$dir/pushpin.conf" &
pids+=($!)
# Whichever ends first ends the peer (and cleanup stops the other).
set +e
wait -n "${pids[@]}"
rc=$?
set -e
echo "pushpin.sh: a process exited ($rc); logs:" >&2
tail -n 20 "$dir"/logs/*.log >&2 2>/dev/null || true
exit "$rc"
