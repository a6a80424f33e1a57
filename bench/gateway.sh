#!/usr/bin/env bash
# crossgate against nginx as a CORS gateway, side by side, on loopback.
#
# Both gateways carry the same policy (bench/crossgate.toml and
# bench/nginx-gateway.conf) in front of the same trivial upstream (an nginx
# answering "ok"). Each gateway is pinned to core 0; wrk and the upstream share
# core 1. Measures (a) allowed preflights answered at the gateway and (b) allowed
# cross-origin GETs proxied to the upstream: requests/s and p99 latency, the
# median of ROUNDS rounds, alternating the gateways within each round; then
# crossgate's peak RSS (VmHWM) after a run at RSS_CONNECTIONS connections.
# Everything it starts is stopped on exit.
#
# Knobs (environment): DURATION (seconds per run, default 10), CONNECTIONS
# (default 64), RSS_CONNECTIONS (default 256), ROUNDS (default 3).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="$repo_root/bench"
cd "$repo_root"
source scripts/lib.sh

duration="${DURATION:-10}"
connections="${CONNECTIONS:-64}"
rss_connections="${RSS_CONNECTIONS:-256}"
rounds="${ROUNDS:-3}"
gateway_core=0
load_core=1

crossgate_port=18080
upstream_port=18081
nginx_port=18090
origin="https://app.example.com"

make_workdir

# nginx in the foreground, with its pid file and temp files under $workdir.
start_nginx() {
    local config=$1 core=$2 prefix="$workdir/$(basename "$1" .conf)"
    mkdir -p "$prefix"
    taskset -c "$core" nginx -p "$prefix" -c "$config" -e stderr -g 'daemon off;' &
    started_pids+=("$!")
}

# Fails unless the gateway answers an allowed preflight with 204 and the origin,
# and an allowed GET with the upstream's body and the origin.
check_gateway() {
    local name=$1 port=$2 headers
    headers="$(curl -sS -o /dev/null -D - -X OPTIONS "http://127.0.0.1:$port/" \
        -H "Origin: $origin" -H 'Access-Control-Request-Method: PUT' \
        -H 'Access-Control-Request-Headers: content-type, x-requested-with')"
    if ! grep -q '^HTTP/1.1 204' <<<"$headers" ||
        ! grep -qi "^access-control-allow-origin: $origin" <<<"$headers"; then
        printf 'error: %s does not answer the preflight as expected:\n%s\n' "$name" "$headers" >&2
        exit 1
    fi
    headers="$(curl -sS -D - "http://127.0.0.1:$port/" -H "Origin: $origin")"
    if ! grep -q '^HTTP/1.1 200' <<<"$headers" || ! grep -q '^ok' <<<"$headers" ||
        ! grep -qi "^access-control-allow-origin: $origin" <<<"$headers"; then
        printf 'error: %s does not proxy the GET as expected:\n%s\n' "$name" "$headers" >&2
        exit 1
    fi
}

# wrk's latency in milliseconds, from a figure such as 512.00us, 1.25ms or 1.02s.
to_ms() {
    awk -v value="$1" 'BEGIN {
        unit = value; sub(/^[0-9.]+/, "", unit); number = value + 0
        if (unit == "us") number /= 1000; else if (unit == "s") number *= 1000
        printf "%.3f", number
    }'
}

# One wrk run; prints "requests_per_second p99_ms". Fails on any error or non-2xx.
run_wrk() {
    local port=$1 script=$2 conns=$3 seconds=$4 output
    output="$(taskset -c "$load_core" wrk -t1 -c"$conns" -d"${seconds}s" --latency \
        -s "$bench_dir/$script" "http://127.0.0.1:$port/")"
    if grep -qE 'Non-2xx|Socket errors' <<<"$output"; then
        printf 'error: wrk saw failed requests:\n%s\n' "$output" >&2
        exit 1
    fi
    local rps p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$output")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$output")"
    echo "$rps $(to_ms "$p99")"
}

median() {
    sort -g | awk '{ values[NR] = $1 } END {
        if (NR % 2) print values[(NR + 1) / 2]; else print (values[NR / 2] + values[NR / 2 + 1]) / 2
    }'
}

peak_rss_kib() {
    awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

install_missing_packages wrk nginx
for port in "$crossgate_port" "$upstream_port" "$nginx_port"; do
    ensure_port_free "$port"
done

echo "building crossgate (release)"
cargo build --release -p crossgate
crossgate_bin="${CARGO_TARGET_DIR:-$repo_root/target}/release/crossgate"

start_nginx "$bench_dir/nginx-upstream.conf" "$load_core"
wait_for_port "$upstream_port" "the upstream"
start_nginx "$bench_dir/nginx-gateway.conf" "$gateway_core"
nginx_master=${started_pids[-1]}
wait_for_port "$nginx_port" "nginx"
RUST_LOG=warn taskset -c "$gateway_core" "$crossgate_bin" serve --config "$bench_dir/crossgate.toml" &
crossgate_pid=$!
started_pids+=("$crossgate_pid")
wait_for_port "$crossgate_port" "crossgate"

check_gateway crossgate "$crossgate_port"
check_gateway nginx "$nginx_port"

declare -A rps_runs=() p99_runs=()
gateways=(crossgate nginx)
declare -A ports=([crossgate]=$crossgate_port [nginx]=$nginx_port)
scenarios=(preflight actual)

echo "warming up"
for gateway in "${gateways[@]}"; do
    for scenario in "${scenarios[@]}"; do
        run_wrk "${ports[$gateway]}" "$scenario.lua" "$connections" 2 >/dev/null
    done
done

for ((round = 1; round <= rounds; round++)); do
    for scenario in "${scenarios[@]}"; do
        for gateway in "${gateways[@]}"; do
            result=$(run_wrk "${ports[$gateway]}" "$scenario.lua" "$connections" "$duration")
            read -r rps p99 <<<"$result"
            echo "round $round: $scenario via $gateway: $rps req/s, p99 $p99 ms"
            rps_runs[$gateway.$scenario]+="$rps "
            p99_runs[$gateway.$scenario]+="$p99 "
        done
    done
done

echo "peak-RSS run: actual GETs at $rss_connections connections"
result=$(run_wrk "$crossgate_port" actual.lua "$rss_connections" "$duration")
read -r rss_rps rss_p99 <<<"$result"
crossgate_rss=$(peak_rss_kib "$crossgate_pid")
result=$(run_wrk "$nginx_port" actual.lua "$rss_connections" "$duration")
read -r nginx_rss_rps nginx_rss_p99 <<<"$result"
nginx_worker=$(pgrep -P "$nginx_master" | head -n1)
nginx_rss=$(peak_rss_kib "$nginx_worker")

printf '\n## Gateway: crossgate vs nginx (%s rounds of %ss, %s connections, medians)\n\n' \
    "$rounds" "$duration" "$connections"
echo "| scenario | crossgate req/s | nginx req/s | crossgate/nginx req/s | crossgate p99 ms | nginx p99 ms | crossgate/nginx p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for scenario in "${scenarios[@]}"; do
    ours_rps=$(tr ' ' '\n' <<<"${rps_runs[crossgate.$scenario]}" | grep . | median)
    theirs_rps=$(tr ' ' '\n' <<<"${rps_runs[nginx.$scenario]}" | grep . | median)
    ours_p99=$(tr ' ' '\n' <<<"${p99_runs[crossgate.$scenario]}" | grep . | median)
    theirs_p99=$(tr ' ' '\n' <<<"${p99_runs[nginx.$scenario]}" | grep . | median)
    awk -v s="$scenario" -v a="$ours_rps" -v b="$theirs_rps" -v c="$ours_p99" -v d="$theirs_p99" \
        'BEGIN { printf "| %s | %.0f | %.0f | %.2f | %.3f | %.3f | %.2f |\n", s, a, b, a / b, c, d, c / d }'
done
printf '\nAt %s connections (actual GETs, one run): crossgate %.0f req/s, p99 %s ms, peak RSS %s KiB (%.1f MiB); nginx worker %.0f req/s, p99 %s ms, peak RSS %s KiB.\n' \
    "$rss_connections" "$rss_rps" "$rss_p99" "$crossgate_rss" "$(awk -v k="$crossgate_rss" 'BEGIN { print k / 1024 }')" \
    "$nginx_rss_rps" "$nginx_rss_p99" "$nginx_rss"
echo "Targets: crossgate/nginx req/s >= 1.00 for both, p99 ratio <= 1.00, peak RSS < 30 MiB."
