#!/usr/bin/env bash
# crossgate against nginx as a CORS gateway, side by side, on loopback:
# throughput, tail latency and peak memory under load.
#
# Both gateways carry the same policy (bench/crossgate.toml and
# bench/nginx-gateway.conf) in front of the same trivial upstream (an nginx
# answering "ok"). Each gateway is pinned to core 0; the load generator and the
# upstream share core 1. Scenarios: (preflight) allowed preflights answered at
# the gateway and (get) allowed cross-origin GETs proxied to the upstream.
# Protocols: h1 is HTTP/1.1 driven by wrk (bench/preflight.lua, bench/get.lua),
# h2 is HTTP/2 with prior knowledge driven by h2load (crossgate's automatic h2c
# on its one port, nginx's `http2` listener), H2_STREAMS streams in flight per
# connection. For every protocol, connection count and scenario: requests/s and
# p99 latency (h2load's from its per-request log), the median of ROUNDS rounds,
# the gateways alternating within each round and the one going first swapped
# from round to round. Then peak RSS (VmHWM) of crossgate and of the nginx
# worker, in a pass of its own: for each protocol and connection count a fresh
# crossgate (nginx's worker reset through /proc/PID/clear_refs) serves one run
# of every scenario. Everything it starts is stopped on exit.
#
# Knobs (environment): DURATION (seconds per run, default 10), CONNECTIONS
# (default "64 256"), ROUNDS (default 3), PROTOCOLS (default "h1 h2"),
# SCENARIOS (default "preflight get"), H2_STREAMS (default 1), PORT_OFFSET
# (default 0; shifts the ports 18080, 18081, 18090, 18091 of the bench
# configurations), FIGURES (a file the medians are appended to, for
# bench/all.sh).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="$repo_root/bench"
cd "$repo_root"
source scripts/lib.sh

duration="${DURATION:-10}"
connection_counts="${CONNECTIONS:-64 256}"
rounds="${ROUNDS:-3}"
protocols="${PROTOCOLS:-h1 h2}"
scenarios="${SCENARIOS:-preflight get}"
h2_streams="${H2_STREAMS:-1}"
gateway_core=0
load_core=1

bench_ports
origin="https://app.example.com"

for count in $duration $connection_counts $rounds $h2_streams; do
    [[ $count =~ ^[1-9][0-9]*$ ]] || {
        echo "error: DURATION, CONNECTIONS, ROUNDS and H2_STREAMS take positive integers, not '$count'" >&2
        exit 1
    }
done
for protocol in $protocols; do
    [[ $protocol == h1 || $protocol == h2 ]] || {
        echo "error: PROTOCOLS takes h1 and h2, not '$protocol'" >&2
        exit 1
    }
done
for scenario in $scenarios; do
    [[ $scenario == preflight || $scenario == get ]] || {
        echo "error: SCENARIOS takes preflight and get, not '$scenario'" >&2
        exit 1
    }
done

make_workdir
crossgate_config="$(bench_config "$bench_dir/crossgate.toml")"
nginx_gateway_config="$(bench_config "$bench_dir/nginx-gateway.conf")"
nginx_upstream_config="$(bench_config "$bench_dir/nginx-upstream.conf")"

# nginx in the foreground, with its pid file and temp files under $workdir.
start_nginx() {
    local config=$1 core=$2 prefix="$workdir/$(basename "$1" .conf)"
    mkdir -p "$prefix"
    taskset -c "$core" nginx -p "$prefix" -c "$config" -e stderr -g 'daemon off;' &
    started_pids+=("$!")
}

gateway_port() {
    local gateway=$1 protocol=$2
    if [[ $gateway == crossgate ]]; then
        echo "$crossgate_port"
    elif [[ $protocol == h2 ]]; then
        echo "$nginx_h2_port"
    else
        echo "$nginx_port"
    fi
}

# Fails unless the gateway answers an allowed preflight with 204 and the origin,
# and an allowed GET with the upstream's body and the origin, over `protocol`.
check_gateway() {
    local name=$1 protocol=$2 port headers
    local -a version=(--http1.1)
    [[ $protocol == h2 ]] && version=(--http2-prior-knowledge)
    port="$(gateway_port "$name" "$protocol")"
    headers="$(curl -sS "${version[@]}" -o /dev/null -D - -X OPTIONS "http://127.0.0.1:$port/" \
        -H "Origin: $origin" -H 'Access-Control-Request-Method: PUT' \
        -H 'Access-Control-Request-Headers: content-type, x-requested-with')"
    if ! grep -qE '^HTTP/(1\.1|2) 204' <<<"$headers" ||
        ! grep -qi "^access-control-allow-origin: $origin" <<<"$headers"; then
        printf 'error: %s does not answer the %s preflight as expected:\n%s\n' "$name" "$protocol" "$headers" >&2
        exit 1
    fi
    headers="$(curl -sS "${version[@]}" -D - "http://127.0.0.1:$port/" -H "Origin: $origin")"
    if ! grep -qE '^HTTP/(1\.1|2) 200' <<<"$headers" || ! grep -q '^ok' <<<"$headers" ||
        ! grep -qi "^access-control-allow-origin: $origin" <<<"$headers"; then
        printf 'error: %s does not proxy the %s GET as expected:\n%s\n' "$name" "$protocol" "$headers" >&2
        exit 1
    fi
}

# wrk's latency in milliseconds, from a figure such as 512.00us, 1.25ms or 1.02s.
to_ms() {
    awk -v value="$1" 'BEGIN {
        unit = value; sub(/^[0-9.]+/, "", unit); number = value + 0
        if (unit == "us") number /= 1000; else if (unit == "s") number *= 1000
        else if (unit != "ms") { print "unknown unit " unit; exit }
        printf "%.3f", number
    }'
}

# One wrk run (HTTP/1.1); prints "requests_per_second p99_ms". Fails on any
# error or non-2xx answer.
run_wrk() {
    local port=$1 scenario=$2 conns=$3 seconds=$4 output rps p99
    output="$(taskset -c "$load_core" wrk -t1 -c"$conns" -d"${seconds}s" --latency \
        -s "$bench_dir/$scenario.lua" "http://127.0.0.1:$port/")"
    if grep -qE 'Non-2xx|Socket errors' <<<"$output"; then
        printf 'error: wrk saw failed requests:\n%s\n' "$output" >&2
        exit 1
    fi
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$output")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$output")")"
    require_number "wrk's requests/s" "$rps"
    require_number "wrk's p99 latency" "$p99"
    echo "$rps $p99"
}

# One h2load run (HTTP/2, prior knowledge); prints "requests_per_second p99_ms",
# the p99 (nearest rank) of the per-request times h2load logs. Fails on any
# error or non-2xx answer.
run_h2load() {
    local port=$1 scenario=$2 conns=$3 seconds=$4 output finished rps p99 scenario_args
    local log="$workdir/h2load-requests.log"
    local -a args=(-t1 -c"$conns" -m"$h2_streams" -D "$seconds" "--log-file=$log")
    scenario_args="$(h2load_scenario_args "$scenario" /dev/null)"
    mapfile -t -O "${#args[@]}" args <<<"$scenario_args"
    rm -f "$log"
    output="$(taskset -c "$load_core" h2load "${args[@]}" "http://127.0.0.1:$port/")"
    finished="$(require_h2load_success "$output")"
    rps="$(awk '/^finished in/ { sub(/,$/, "", $4); if ($5 == "req/s,") print $4 }' <<<"$output")"
    # Column 3 of the log: microseconds until the end of the response.
    # The last awk reads to the end: leaving early would kill sort with
    # SIGPIPE, which pipefail turns into a failed run.
    p99="$(awk '{ print $3 }' "$log" | sort -n |
        awk -v n="$finished" 'NR == int((99 * n + 99) / 100) { printf "%.3f", $1 / 1000 }')"
    require_number "h2load's requests/s" "$rps"
    require_number "the p99 of h2load's request log" "$p99"
    echo "$rps $p99"
}

run_load() {
    local protocol=$1 gateway=$2 scenario=$3 conns=$4 seconds=$5 port
    port="$(gateway_port "$gateway" "$protocol")"
    if [[ $protocol == h1 ]]; then
        run_wrk "$port" "$scenario" "$conns" "$seconds"
    else
        run_h2load "$port" "$scenario" "$conns" "$seconds"
    fi
}

median() {
    tr ' ' '\n' | grep . | sort -g | awk '{ values[NR] = $1 } END {
        if (NR % 2) print values[(NR + 1) / 2]; else print (values[NR / 2] + values[NR / 2 + 1]) / 2
    }'
}

# The peak RSS counts from here: VmHWM restarts at the current RSS.
reset_peak_rss() {
    echo 5 >"/proc/$1/clear_refs"
}

peak_rss_kib() {
    local kib
    kib="$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status")"
    require_number "VmHWM of process $1" "$kib"
    echo "$kib"
}

tools=(curl)
[[ $protocols == *h1* ]] && tools+=(wrk)
[[ $protocols == *h2* ]] && tools+=(h2load=nghttp2-client)
install_missing_packages nginx "${tools[@]}"
for port in "$crossgate_port" "$upstream_port" "$nginx_port" "$nginx_h2_port"; do
    ensure_port_free "$port"
done

echo "building crossgate (release)"
cargo build --release -p crossgate
crossgate_bin="${CARGO_TARGET_DIR:-$repo_root/target}/release/crossgate"

start_nginx "$nginx_upstream_config" "$load_core"
wait_for_port "$upstream_port" "the upstream"
start_nginx "$nginx_gateway_config" "$gateway_core"
nginx_master=${started_pids[-1]}
wait_for_port "$nginx_port" "nginx"
wait_for_port "$nginx_h2_port" "nginx (http2)"
# Starts crossgate, stopping the one running first (if any); sets pids[crossgate].
start_crossgate() {
    if [[ -n ${pids[crossgate]:-} ]]; then
        kill "${pids[crossgate]}"
        wait "${pids[crossgate]}" 2>/dev/null || true
    fi
    RUST_LOG=warn taskset -c "$gateway_core" "$crossgate_bin" serve --config "$crossgate_config" &
    pids[crossgate]=$!
    started_pids+=("$!")
    wait_for_port "$crossgate_port" "crossgate"
}

nginx_worker="$(pgrep -P "$nginx_master" | head -n1)"
require_number "the pid of nginx's worker" "$nginx_worker"
declare -A pids=([nginx]=$nginx_worker)
start_crossgate

for protocol in $protocols; do
    check_gateway crossgate "$protocol"
    check_gateway nginx "$protocol"
done

declare -A rps_runs=() p99_runs=() peak_rss=()
read -r first_connections _ <<<"$connection_counts"

echo "warming up"
for protocol in $protocols; do
    for gateway in crossgate nginx; do
        for scenario in $scenarios; do
            run_load "$protocol" "$gateway" "$scenario" "$first_connections" 2 >/dev/null
        done
    done
done

for ((round = 1; round <= rounds; round++)); do
    gateways=(crossgate nginx)
    ((round % 2)) || gateways=(nginx crossgate)
    for protocol in $protocols; do
        for conns in $connection_counts; do
            for scenario in $scenarios; do
                for gateway in "${gateways[@]}"; do
                    result="$(run_load "$protocol" "$gateway" "$scenario" "$conns" "$duration")"
                    read -r rps p99 <<<"$result"
                    echo "round $round: $protocol $scenario via $gateway, $conns connections: $rps req/s, p99 $p99 ms"
                    key="$protocol.$scenario.c$conns.$gateway"
                    rps_runs[$key]+="$rps "
                    p99_runs[$key]+="$p99 "
                done
            done
        done
    done
done

# Peak RSS in a pass of its own, with a fresh crossgate for each protocol and
# connection count: the allocator keeps what a heavier run freed, so a
# process that served 256 connections would show that memory under every
# later, lighter run too (VmHWM restarts at the current RSS, not at what is
# in use).
for protocol in $protocols; do
    for conns in $connection_counts; do
        start_crossgate
        reset_peak_rss "${pids[nginx]}"
        for scenario in $scenarios; do
            for gateway in crossgate nginx; do
                run_load "$protocol" "$gateway" "$scenario" "$conns" "$duration" >/dev/null
            done
        done
        for gateway in crossgate nginx; do
            peak_rss[$protocol.c$conns.$gateway]="$(peak_rss_kib "${pids[$gateway]}")"
        done
        echo "peak RSS, $protocol at $conns connections: crossgate ${peak_rss[$protocol.c$conns.crossgate]} KiB, nginx ${peak_rss[$protocol.c$conns.nginx]} KiB"
    done
done

emit_figure load.protocols "$protocols"
emit_figure load.scenarios "$scenarios"
emit_figure load.connections "$connection_counts"
emit_figure load.runs "$duration s per run, medians of $rounds round(s); h1: wrk, h2: h2load with $h2_streams stream(s) per connection"

printf '\n## Gateway load: crossgate vs nginx (%s s per run, medians of %s round(s); h1: wrk, h2: h2load, %s stream(s) per connection)\n\n' \
    "$duration" "$rounds" "$h2_streams"
echo "| protocol | scenario | connections | crossgate req/s | nginx req/s | crossgate/nginx req/s | crossgate p99 ms | nginx p99 ms | crossgate/nginx p99 |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for protocol in $protocols; do
    for scenario in $scenarios; do
        for conns in $connection_counts; do
            declare -A medians=()
            for gateway in crossgate nginx; do
                key="$protocol.$scenario.c$conns.$gateway"
                medians[$gateway.rps]="$(median <<<"${rps_runs[$key]}")"
                medians[$gateway.p99]="$(median <<<"${p99_runs[$key]}")"
                emit_figure "load.$key.rps" "${medians[$gateway.rps]}"
                emit_figure "load.$key.p99_ms" "${medians[$gateway.p99]}"
            done
            awk -v p="$protocol" -v s="$scenario" -v n="$conns" \
                -v a="${medians[crossgate.rps]}" -v b="${medians[nginx.rps]}" \
                -v c="${medians[crossgate.p99]}" -v d="${medians[nginx.p99]}" \
                'BEGIN { printf "| %s | %s | %d | %.0f | %.0f | %.2f | %.3f | %.3f | %.2f |\n", p, s, n, a, b, a / b, c, d, c / d }'
        done
    done
done

printf '\n## Peak RSS under that load (VmHWM, a fresh crossgate for each protocol and connection count)\n\n'
echo "| protocol | connections | crossgate MiB | nginx worker MiB |"
echo "|---|---:|---:|---:|"
for protocol in $protocols; do
    for conns in $connection_counts; do
        emit_figure "rss.$protocol.c$conns.crossgate.kib" "${peak_rss[$protocol.c$conns.crossgate]}"
        emit_figure "rss.$protocol.c$conns.nginx.kib" "${peak_rss[$protocol.c$conns.nginx]}"
        awk -v p="$protocol" -v n="$conns" -v a="${peak_rss[$protocol.c$conns.crossgate]}" \
            -v b="${peak_rss[$protocol.c$conns.nginx]}" \
            'BEGIN { printf "| %s | %d | %.1f | %.1f |\n", p, n, a / 1024, b / 1024 }'
    done
done
echo
echo "Targets: crossgate/nginx req/s >= 1.00, p99 ratio <= 1.00, crossgate's peak RSS < 30 MiB at 256 connections."
