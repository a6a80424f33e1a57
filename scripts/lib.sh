# Shell functions the test and benchmark scripts share (scripts/test.sh,
# bench/*.sh). Source it from a script running under `set -euo pipefail`:
#
#     source "$repo_root/scripts/lib.sh"

# install_missing_packages COMMAND[=PACKAGE]...
# Installs from Debian the package of every COMMAND that is not on the PATH
# (PACKAGE defaults to COMMAND's own name). Installing needs root; without it
# the missing packages are named and the script exits.
install_missing_packages() {
    local -a missing=()
    local wanted command package
    for wanted in "$@"; do
        command=${wanted%%=*}
        package=${wanted#*=}
        command -v "$command" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]} == 0)); then
        return
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: missing Debian packages: ${missing[*]}; run as root or install them first" >&2
        exit 1
    fi
    printf '\n==> installing %s from Debian\n' "${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt client (unattended upgrades, a second suite) may hold the lock.
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
}

# make_workdir: sets $workdir to a fresh temporary directory and, on exit,
# stops every process in started_pids (an indexed or associative array the
# script declares, or an empty one) and every pid that note_started wrote,
# then removes the directory.
make_workdir() {
    workdir="$(mktemp -d)"
    if ! declare -p started_pids >/dev/null 2>&1; then
        started_pids=()
    fi
    trap stop_everything EXIT
}

# note_started PID: for processes started inside a command substitution,
# whose additions to started_pids are lost with the subshell.
note_started() {
    echo "$1" >>"$workdir/started-pids"
}

stop_everything() {
    local pid
    local -a pids=("${started_pids[@]}")
    if [[ -f $workdir/started-pids ]]; then
        while read -r pid; do
            pids+=("$pid")
        done <"$workdir/started-pids"
    fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}

# wait_for_port PORT NAME [SECONDS]: waits until something listens on
# 127.0.0.1:PORT, for at most SECONDS (default 10; a gateway under valgrind
# needs more), else exits with an error naming NAME.
wait_for_port() {
    local port=$1 name=$2 seconds=${3:-10} tries
    for ((tries = 0; tries < seconds * 10; tries++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    echo "error: $name did not listen on 127.0.0.1:$port within $seconds s" >&2
    exit 1
}

# ensure_port_free PORT: exits with an error if something listens on 127.0.0.1:PORT.
ensure_port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "error: 127.0.0.1:$1 is already in use; stop whatever listens there" >&2
        exit 1
    fi
}

# require_number NAME VALUE: exits with an error naming NAME unless VALUE is a
# plain decimal number, so that a tool whose output changed fails the run
# instead of yielding an empty or garbled figure.
require_number() {
    if [[ ! $2 =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
        echo "error: could not read $1 (got '${2}')" >&2
        exit 1
    fi
}

# emit_figure KEY VALUE: appends "KEY<TAB>VALUE" to the file named by $FIGURES,
# if set. bench/all.sh reads the figures of every benchmark from that file.
emit_figure() {
    if [[ -n ${FIGURES:-} ]]; then
        printf '%s\t%s\n' "$1" "$2" >>"$FIGURES"
    fi
}

# h2load_scenario_args SCENARIO BODY_FILE: h2load's arguments, one word a line,
# for an allowed preflight, GET or POST (of BODY_FILE) from the bench policy's
# origin; used by bench/instructions.sh and bench/gateway.sh.
h2load_scenario_args() {
    printf '%s\n' -H "origin:https://app.example.com"
    case "$1" in
    preflight)
        printf '%s\n' -H ":method:OPTIONS" -H "access-control-request-method:PUT" \
            -H "access-control-request-headers:content-type,x-requested-with"
        ;;
    get) ;;
    post) printf '%s\n' -d "$2" -H "content-type:text/plain" ;;
    *)
        echo "error: unknown h2load scenario '$1'" >&2
        exit 1
        ;;
    esac
}

# require_h2load_success OUTPUT: exits with h2load's OUTPUT unless it finished
# requests and every finished one got a 2xx answer (none failed, errored or
# timed out); prints the number of finished requests.
require_h2load_success() {
    local done_count ok_count
    done_count="$(awk '/^requests:/ { for (i = 2; i <= NF; i++) if ($(i + 1) ~ /^done/) print $i }' <<<"$1")"
    ok_count="$(awk '/^status codes:/ { print $3 }' <<<"$1")"
    if [[ ! $done_count =~ ^[1-9][0-9]*$ || $ok_count != "$done_count" ]] ||
        ! grep -q ' 0 failed, 0 errored, 0 timeout' <<<"$1"; then
        printf 'error: h2load saw failed requests, or its output could not be read:\n%s\n' "$1" >&2
        exit 1
    fi
    echo "$done_count"
}

# bench_ports: sets crossgate_port, upstream_port, nginx_port and nginx_h2_port,
# the loopback ports of bench/crossgate.toml and bench/nginx-*.conf shifted by
# PORT_OFFSET (default 0), so that a second benchmark on a shared machine can
# run beside the first.
bench_ports() {
    local offset="${PORT_OFFSET:-0}"
    require_number PORT_OFFSET "$offset"
    crossgate_port=$((18080 + offset))
    upstream_port=$((18081 + offset))
    nginx_port=$((18090 + offset))
    nginx_h2_port=$((18091 + offset))
}

# bench_config FILE: prints the path of a copy of FILE under $workdir with the
# ports of bench_ports in place of the ones it is written with.
bench_config() {
    local copy
    copy="$workdir/config/$(basename "$1")"
    mkdir -p "$workdir/config"
    sed -e "s/127\.0\.0\.1:18080\b/127.0.0.1:$crossgate_port/g" \
        -e "s/127\.0\.0\.1:18081\b/127.0.0.1:$upstream_port/g" \
        -e "s/127\.0\.0\.1:18090\b/127.0.0.1:$nginx_port/g" \
        -e "s/127\.0\.0\.1:18091\b/127.0.0.1:$nginx_h2_port/g" "$1" >"$copy"
    echo "$copy"
}
