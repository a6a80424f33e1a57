#!/usr/bin/env bash
# Builds the gateway exactly as the Dockerfile's build stage does (gnu
# target, RUSTFLAGS="-C target-feature=+crt-static", --release --locked),
# proves the binary is static (`file`, `ldd`), then runs it the way the
# image's default command does (serve --config deploy/crossgate.toml, on
# loopback ports here) and checks /healthz, /readyz and a demo preflight.
# No container engine is needed; the Dockerfile is correct by construction
# when this passes.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked -p crossgate --target "$target"
binary="target/$target/release/crossgate"

description="$(file -L "$binary")"
echo "$description"
if ! grep -q 'static.*linked' <<<"$description"; then
    echo "error: $binary is not statically linked; the scratch image could not run it" >&2
    exit 1
fi
if ldd "$binary" >/dev/null 2>&1; then
    echo "error: ldd lists shared libraries for $binary" >&2
    ldd "$binary" >&2
    exit 1
fi

work="$(mktemp -d)"
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The image's configuration, on ports the kernel picks (this machine may run
# other things on 8080/9090).
sed -e 's/^listen = .*/listen = "127.0.0.1:0"/' -e 's/^admin = .*/admin = "127.0.0.1:0"/' \
    deploy/crossgate.toml >"$work/crossgate.toml"
# As in the image: an empty environment, no HOME, no terminal.
env -i "$binary" --log-format json serve --config "$work/crossgate.toml" \
    >"$work/stdout" 2>"$work/stderr" </dev/null &
pid=$!

address_of() { # the address logged after "$1 listening on http://"
    sed -n "s|.*$1 listening on http://\\([0-9.:]*\\).*|\\1|p" "$work/stderr" | head -n 1
}
for _ in $(seq 1 100); do
    admin="$(address_of admin)"
    gateway="$(address_of gateway)"
    [[ -n "$admin" && -n "$gateway" ]] && break
    sleep 0.1
done
if [[ -z "${admin:-}" || -z "${gateway:-}" ]]; then
    echo "error: the static binary did not start:" >&2
    cat "$work/stderr" >&2
    exit 1
fi

# A bare HTTP/1.1 request over bash's /dev/tcp: no client binary needed.
http() { # method address path [header...] -> status line and headers
    local method=$1 address=$2 path=$3
    shift 3
    exec 3<>"/dev/tcp/${address%:*}/${address##*:}"
    {
        printf '%s %s HTTP/1.1\r\nHost: smoke\r\nConnection: close\r\n' "$method" "$path"
        local header
        for header in "$@"; do printf '%s\r\n' "$header"; done
        printf '\r\n'
    } >&3
    timeout 5 cat <&3
    exec 3<&-
}
expect() { # description response pattern
    if ! grep -qi "$3" <<<"$2"; then
        echo "error: $1: expected /$3/ in:" >&2
        echo "$2" >&2
        exit 1
    fi
    echo "ok: $1"
}
expect "/healthz (the HEALTHCHECK)" "$(http GET "$admin" /healthz)" '^HTTP/1.1 200'
expect "/readyz" "$(http GET "$admin" /readyz)" '^HTTP/1.1 200'
expect "demo preflight allowed" \
    "$(http OPTIONS "$gateway" /api/items 'Origin: https://app.example.com' 'Access-Control-Request-Method: PUT')" \
    '^access-control-allow-origin: https://app.example.com'
expect "demo preflight denied" \
    "$(http OPTIONS "$gateway" /api/items 'Origin: https://evil.example' 'Access-Control-Request-Method: PUT')" \
    '^HTTP/1.1 403'

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
if ((status != 0)); then
    echo "error: SIGTERM did not end the gateway cleanly (exit $status)" >&2
    cat "$work/stderr" >&2
    exit 1
fi
echo "container smoke test: static binary OK, exit 0 on SIGTERM"
