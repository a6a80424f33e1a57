#!/usr/bin/env bash
# crossgate against nginx as a CORS gateway: user-space instructions and system
# calls per request, which unlike wall-clock figures do not move with the load
# of a shared machine.
#
# The same gateways, policy and upstream as bench/gateway.sh: crossgate with
# bench/crossgate.toml, nginx 1.22 with bench/nginx-gateway.conf (one worker,
# `master_process off`, `daemon off`, so that the process under valgrind is the
# one serving), both in front of the nginx upstream of bench/nginx-upstream.conf,
# which runs natively. Each gateway is pinned to core 0 (crossgate's runtime
# then runs one worker thread, nginx has one worker), h2load and the upstream
# to core 1, as in bench/gateway.sh. For each protocol, scenario and gateway it
# starts the gateway under callgrind twice, sends N requests with h2load (4
# connections) to the first and M to the second, stops it (SIGTERM, a graceful
# exit) and reports (count(M) - count(N)) / (M - N): start-up, shutdown, the
# port probe and h2load's connection set-up are the same in both runs and
# cancel out. Instructions are callgrind's Ir (user space only). System calls
# are counted the same way in two more runs, natively under `strace -f -c`:
# under valgrind the server is so slow that the client's timing, and so the
# gateway's batching of reads and wake-ups, is not what it is at full speed.
#
# Scenarios: an allowed preflight (answered at the gateway), an allowed GET
# and an allowed POST with a 1 KiB body (both proxied to the upstream).
# Protocols: h1 (HTTP/1.1, h2load --h1) and h2 (HTTP/2 with prior knowledge,
# to nginx's `http2` listener).
#
# Needs valgrind, strace, nginx and h2load (nghttp2-client); installs what is
# missing from Debian.
#
# Knobs (environment): REQUESTS_N (default 1000), REQUESTS_M (default 3000),
# PROTOCOLS (default "h1 h2"), SCENARIOS (default "preflight get post"),
# TOOLS (default "callgrind strace"; "callgrind" alone skips the syscall runs),
# PORT_OFFSET (default 0; shifts the ports 18080, 18081, 18090, 18091 of the
# bench configurations), FIGURES (a file the per-request figures are appended
# to, for bench/all.sh).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="$repo_root/bench"
cd "$repo_root"
source scripts/lib.sh

requests_n="${REQUESTS_N:-1000}"
requests_m="${REQUESTS_M:-3000}"
protocols="${PROTOCOLS:-h1 h2}"
scenarios="${SCENARIOS:-preflight get post}"
tools="${TOOLS:-callgrind strace}"
connections=4
gateway_core=0
load_core=1

bench_ports

if ((requests_m <= requests_n)); then
    echo "error: REQUESTS_M ($requests_m) must be larger than REQUESTS_N ($requests_n)" >&2
    exit 1
fi

make_workdir
crossgate_config="$(bench_config "$bench_dir/crossgate.toml")"
nginx_gateway_config="$(bench_config "$bench_dir/nginx-gateway.conf")"
nginx_upstream_config="$(bench_config "$bench_dir/nginx-upstream.conf")"

head -c 1024 /dev/zero | tr '\0' 'x' >"$workdir/body-1k"

# Sends `count` requests; fails unless every one got a 2xx answer.
send_requests() {
    local port=$1 protocol=$2 scenario=$3 count=$4 output scenario_args finished
    local -a args=(-n "$count" -c "$connections")
    [[ $protocol == h1 ]] && args+=(--h1)
    scenario_args="$(h2load_scenario_args "$scenario" "$workdir/body-1k")"
    mapfile -t -O "${#args[@]}" args <<<"$scenario_args"
    output="$(taskset -c "$load_core" h2load "${args[@]}" "http://127.0.0.1:$port/")"
    finished="$(require_h2load_success "$output")"
    if ((finished != count)); then
        printf 'error: h2load finished %s of %s requests:\n%s\n' "$finished" "$count" "$output" >&2
        exit 1
    fi
}

# One measured run of a gateway under `tool` (callgrind or strace); prints the
# run's total of instructions or of system calls.
measure() {
    local tool=$1 gateway=$2 protocol=$3 scenario=$4 count=$5 port pid
    local out="$workdir/$tool.out"
    local -a wrapper
    rm -f "$out"
    case "$tool" in
    callgrind) wrapper=(valgrind --tool=callgrind --dump-instr=no "--callgrind-out-file=$out"
        "--log-file=$workdir/valgrind.log") ;;
    strace) wrapper=(strace -f -c -o "$out") ;;
    esac
    if [[ $gateway == crossgate ]]; then
        port=$crossgate_port
        RUST_LOG=warn taskset -c "$gateway_core" "${wrapper[@]}" "$crossgate_bin" serve \
            --config "$crossgate_config" &
    else
        port=$nginx_port
        [[ $protocol == h2 ]] && port=$nginx_h2_port
        local prefix="$workdir/nginx-gateway"
        mkdir -p "$prefix"
        taskset -c "$gateway_core" "${wrapper[@]}" nginx -p "$prefix" \
            -c "$nginx_gateway_config" -e stderr -g 'daemon off; master_process off;' &
    fi
    pid=$!
    # Started inside a command substitution, so not in started_pids.
    note_started "$pid"
    # Under valgrind a gateway takes seconds to start.
    wait_for_port "$port" "$gateway" 60
    send_requests "$port" "$protocol" "$scenario" "$count"
    stop_gateway "$tool" "$pid"
    case "$tool" in
    callgrind) awk '/^summary:/ { print $2; exit }' "$out" ;;
    # The calls column: the errors column after it is blank when there were none.
    strace) awk '$NF == "total" { print $4; exit }' "$out" ;;
    esac
}

# Stops a gateway gracefully, so that callgrind and strace write their totals.
# strace does not pass SIGTERM on, so its child gets it; a signal that arrives
# while valgrind is busy can be lost, so it is repeated (for at most 60 s).
stop_gateway() {
    local tool=$1 pid=$2 target=$2 tries
    if [[ $tool == strace ]]; then
        target="$(pgrep -P "$pid" | head -n1)"
    fi
    for ((tries = 0; tries < 60; tries++)); do
        kill -TERM "$target" 2>/dev/null || true
        for ((waited = 0; waited < 10; waited++)); do
            kill -0 "$pid" 2>/dev/null || break 2
            sleep 0.1
        done
    done
    wait "$pid" || true
}

# Per-request figure from the runs with N and with M requests.
per_request() {
    local tool=$1 gateway=$2 protocol=$3 scenario=$4 low high
    low="$(measure "$tool" "$gateway" "$protocol" "$scenario" "$requests_n")"
    high="$(measure "$tool" "$gateway" "$protocol" "$scenario" "$requests_m")"
    require_number "$tool's total for $gateway ($protocol $scenario, $requests_n requests)" "$low"
    require_number "$tool's total for $gateway ($protocol $scenario, $requests_m requests)" "$high"
    awk -v a="$low" -v b="$high" -v n="$requests_n" -v m="$requests_m" \
        'BEGIN { printf "%.2f", (b - a) / (m - n) }'
}

install_missing_packages valgrind nginx h2load=nghttp2-client strace
for port in "$crossgate_port" "$upstream_port" "$nginx_port" "$nginx_h2_port"; do
    ensure_port_free "$port"
done

echo "building crossgate (release)"
cargo build --release -p crossgate
crossgate_bin="${CARGO_TARGET_DIR:-$repo_root/target}/release/crossgate"

mkdir -p "$workdir/nginx-upstream"
taskset -c "$load_core" nginx -p "$workdir/nginx-upstream" -c "$nginx_upstream_config" -e stderr -g 'daemon off;' &
started_pids+=("$!")
wait_for_port "$upstream_port" "the upstream" 60

emit_figure calls.protocols "$protocols"
emit_figure calls.scenarios "$scenarios"
emit_figure calls.tools "$tools"
emit_figure calls.requests "N = $requests_n, M = $requests_m, $connections connections"
declare -A figures=()
for protocol in $protocols; do
    for scenario in $scenarios; do
        for gateway in crossgate nginx; do
            ir=0 sys=0
            [[ $tools == *callgrind* ]] && ir="$(per_request callgrind "$gateway" "$protocol" "$scenario")"
            [[ $tools == *strace* ]] && sys="$(per_request strace "$gateway" "$protocol" "$scenario")"
            echo "$protocol $scenario via $gateway: $ir instructions, $sys syscalls per request"
            figures[$protocol.$scenario.$gateway]="$ir $sys"
            if [[ $tools == *callgrind* ]]; then
                emit_figure "calls.$protocol.$scenario.$gateway.instructions" "$ir"
            fi
            if [[ $tools == *strace* ]]; then
                emit_figure "calls.$protocol.$scenario.$gateway.syscalls" "$sys"
            fi
        done
    done
done

printf '\n## Gateway: instructions and system calls per request, crossgate vs nginx (%s connections, (M - N) = %s - %s)\n\n' \
    "$connections" "$requests_m" "$requests_n"
echo "| protocol | scenario | crossgate instructions | nginx instructions | ratio | crossgate syscalls | nginx syscalls | ratio |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for protocol in $protocols; do
    for scenario in $scenarios; do
        read -r ours_ir ours_sys <<<"${figures[$protocol.$scenario.crossgate]}"
        read -r theirs_ir theirs_sys <<<"${figures[$protocol.$scenario.nginx]}"
        awk -v p="$protocol" -v s="$scenario" -v a="$ours_ir" -v b="$theirs_ir" -v c="$ours_sys" -v d="$theirs_sys" \
            'BEGIN { printf "| %s | %s | %d | %d | %.2f | %.2f | %.2f | %.2f |\n", p, s, a, b, (b > 0 ? a / b : 0), c, d, (d > 0 ? c / d : 0) }'
    done
done
echo "Targets: instructions ratio <= 1.00 for preflight and get; syscalls no more than nginx's."
