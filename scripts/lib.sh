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
