#!/usr/bin/env bash
# Nchan (nginx's pub/sub module, C) on loopback, for side-by-side runs.
#   bench/peers/nchan.sh PORT      # runs in the foreground until killed
#   TLS=1 bench/peers/nchan.sh PORT    # HTTPS (HTTP/1.1), a self-signed certificate
# Subscribe: GET /sub?id=CHANNEL (EventSource); publish: POST /pub?id=CHANNEL
# with the data as the body. Installs Debian's nginx and libnginx-mod-nchan
# when missing. Memory storage, as Nchan's default.
set -euo pipefail
port="${1:?usage: nchan.sh PORT}"
module=/usr/lib/nginx/modules/ngx_nchan_module.so
if [[ ! -f $module ]] || ! command -v nginx >/dev/null; then
    sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light libnginx-mod-nchan
fi
dir="$(mktemp -d /tmp/tidings-nchan.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/logs"
listen="listen 127.0.0.1:$port;"
if [[ "${TLS:-}" == 1 ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 1 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
    listen="listen 127.0.0.1:$port ssl; ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem;"
fi
cat > "$dir/nginx.conf" <<CONF
load_module $module;
worker_processes ${WORKERS:-auto};
worker_rlimit_nofile 20000;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    # Publish bodies in memory up to 1 MiB (64 KiB updates in scenario E were
    # refused with 400 when buffered to a temp file).
    client_body_buffer_size 1m;
    client_max_body_size 2m;
    nchan_max_reserved_memory 512M;
    server {
        $listen
        keepalive_requests 10000000;
        location = /sub { nchan_subscriber eventsource; nchan_channel_id \$arg_id; }
        location = /pub { nchan_publisher; nchan_channel_id \$arg_id; nchan_message_buffer_length 100000; }
    }
}
CONF
exec nginx -p "$dir" -c "$dir/nginx.conf"
