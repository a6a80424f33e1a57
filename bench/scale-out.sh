#!/usr/bin/env bash
# Scale-out, proven: three crossgate instances behind HAProxy (round robin,
# health checks on each admin listener's /readyz), on loopback, under a
# bounded wrk load of allowed preflights and proxied GETs. While the load
# runs, the configuration of all three is changed one after the other (each
# reloads it by itself), then one instance is restarted (SIGTERM, drain,
# start again). Prints the failed requests: the goal is 0.
#
# The gateways are the image's binary (static, built as the Dockerfile does);
# their upstream is a fourth crossgate serving a mock route. HAProxy, wrk and
# curl come from Debian and are installed when missing (as root).
# Everything the script starts is stopped on exit.
#
# Knobs (environment): DURATION (seconds of load, default 30),
# CONNECTIONS (wrk connections, default 16), CROSSGATE_BINARY (a crossgate
# binary to use instead of building the static one).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
source scripts/lib.sh

duration="${DURATION:-30}"
connections="${CONNECTIONS:-16}"
frontend_port=18000
stats_port=18001
upstream_port=18300
gateway_ports=(18101 18102 18103)
admin_ports=(18201 18202 18203)

# Named, so that one instance can be stopped and started again.
declare -A started_pids=()
make_workdir

wait_for() { # description command...: retries for up to 10 s
    local description=$1 tries
    shift
    for ((tries = 0; tries < 100; tries++)); do
        if "$@" >/dev/null 2>&1; then
            return
        fi
        sleep 0.1
    done
    echo "error: $description within 10 s" >&2
    exit 1
}

is_ready() { curl -fsS --max-time 1 "http://127.0.0.1:$1/readyz"; }

reloads_ok() { # admin port -> the crossgate_config_reloads_total{result="ok"} value
    curl -fsS --max-time 1 "http://127.0.0.1:$1/metrics" |
        sed -n 's/^crossgate_config_reloads_total{result="ok"} //p'
}

has_reloads() { [[ "$(reloads_ok "$1")" == "$2" ]]; }

gateway_config() { # index generation
    local i=$1 generation=$2
    cat <<CONFIG
[server]
listen = "127.0.0.1:${gateway_ports[$i]}"
admin = "127.0.0.1:${admin_ports[$i]}"
shutdown_timeout = 10

[policies.web]
origins = ["https://app.example.com"]
methods = ["PUT"]
request_headers = ["content-type"]
# Changes with every configuration generation, so a reload is visible.
max_age = $((600 + generation))

[[routes]]
path = "/api/"
upstream = "http://127.0.0.1:$upstream_port"
policy = "web"
CONFIG
}

start_gateway() { # index
    local i=$1
    "$binary" serve --config "$workdir/gateway-$i.toml" >>"$workdir/gateway-$i.log" 2>&1 </dev/null &
    started_pids[gateway-$i]=$!
    wait_for "gateway $i was not ready" is_ready "${admin_ports[$i]}"
}

install_missing_packages haproxy wrk curl
for port in "$frontend_port" "$stats_port" "$upstream_port" "${gateway_ports[@]}" "${admin_ports[@]}"; do
    ensure_port_free "$port"
done

if [[ -n "${CROSSGATE_BINARY:-}" ]]; then
    binary="$CROSSGATE_BINARY"
else
    echo "building the image's binary (static, as the Dockerfile does)"
    target=x86_64-unknown-linux-gnu
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked -p crossgate --target "$target"
    binary="$repo_root/target/$target/release/crossgate"
fi

cat >"$workdir/upstream.toml" <<CONFIG
[server]
listen = "127.0.0.1:$upstream_port"
[[routes]]
path = "/"
mock = { status = 200, headers = { "content-type" = "application/json" }, body = '{"items":[]}' }
CONFIG
"$binary" serve --config "$workdir/upstream.toml" >"$workdir/upstream.log" 2>&1 </dev/null &
started_pids[upstream]=$!
wait_for "the upstream did not listen" curl -fsS --max-time 1 "http://127.0.0.1:$upstream_port/"

for i in 0 1 2; do
    gateway_config "$i" 1 >"$workdir/gateway-$i.toml"
    start_gateway "$i"
done

# Health checks every 500 ms on /readyz: an instance that drains is out of
# rotation after one failed check and back after two good ones. A request
# whose connection is refused or closed without an answer (an instance that
# just stopped accepting) is retried on another instance; every request of
# this load is idempotent (GET, OPTIONS).
{
    cat <<CONFIG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
frontend gateways
    bind 127.0.0.1:$frontend_port
    default_backend crossgate
frontend stats
    bind 127.0.0.1:$stats_port
    stats enable
    stats uri /stats
backend crossgate
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 1 rise 2
CONFIG
    for i in 0 1 2; do
        echo "    server crossgate-$i 127.0.0.1:${gateway_ports[$i]} check port ${admin_ports[$i]}"
    done
} >"$workdir/haproxy.cfg"
haproxy -c -q -f "$workdir/haproxy.cfg"
haproxy -db -f "$workdir/haproxy.cfg" >"$workdir/haproxy.log" 2>&1 &
started_pids[haproxy]=$!
wait_for "HAProxy did not answer" curl -fsS --max-time 1 -o /dev/null \
    -H 'Origin: https://app.example.com' "http://127.0.0.1:$frontend_port/api/items"

echo "load: wrk, $connections connections, ${duration}s, through HAProxy on :$frontend_port"
wrk -t 2 -c "$connections" -d "${duration}s" --latency -s bench/scale-out.lua \
    "http://127.0.0.1:$frontend_port" >"$workdir/wrk.log" 2>&1 &
wrk_pid=$!
started_pids[wrk]=$wrk_pid

events() {
    local start=$SECONDS i
    sleep 3
    for i in 0 1 2; do
        gateway_config "$i" 2 >"$workdir/gateway-$i.toml.new"
        mv "$workdir/gateway-$i.toml.new" "$workdir/gateway-$i.toml"
        wait_for "gateway $i did not reload" has_reloads "${admin_ports[$i]}" 1
        echo "  t=$((SECONDS - start))s: gateway $i reloaded its new configuration"
        sleep 2
    done
    sleep 2
    echo "  t=$((SECONDS - start))s: SIGTERM to gateway 1"
    kill -TERM "${started_pids[gateway-1]}"
    local status=0
    wait "${started_pids[gateway-1]}" || status=$?
    echo "  t=$((SECONDS - start))s: gateway 1 drained and exited ($status)"
    # Down for a while, as a real restart (new image, new pod) would be:
    # long enough for HAProxy's health check to take it out of rotation.
    sleep 2
    echo "  t=$((SECONDS - start))s: starting gateway 1 again"
    start_gateway 1
    echo "  t=$((SECONDS - start))s: gateway 1 ready again"
}
events

wait "$wrk_pid" || true
unset 'started_pids[wrk]'
cat "$workdir/wrk.log"

echo
echo "HAProxy per instance (requests, retries, redispatches, times marked down):"
curl -fsS "http://127.0.0.1:$stats_port/stats;csv" |
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $1 == "crossgate" && $2 != "BACKEND" {
            printf "  %s: %s requests, %s retries, %s redispatches, down %s times\n",
                $2, $col["stot"], $col["wretr"], $col["wredis"], $col["chkdown"] }
        $1 == "crossgate" && $2 == "BACKEND" {
            printf "  backend: %s requests, 5xx answers %s, retries %s, redispatches %s\n",
                $col["stot"], $col["hrsp_5xx"], $col["wretr"], $col["wredis"] }'

result="$(grep '^RESULT ' "$workdir/wrk.log" || true)"
failed="$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$result")"
echo
echo "scale-out: ${result#RESULT }"
if [[ "$failed" != "0" ]]; then
    echo "scale-out: FAILED requests: $failed (see the logs above)" >&2
    for i in 0 1 2; do
        echo "--- gateway $i log (tail)" >&2
        tail -n 20 "$workdir/gateway-$i.log" >&2
    done
    exit 1
fi
echo "scale-out: 0 failed requests"
