#!/usr/bin/env bash
# Builds the gateway exactly as the Dockerfile's build stage does (gnu
# target, RUSTFLAGS="-C target-feature=+crt-static", --release --locked),
# proves the binary is static (`file`, `ldd`), then runs it the way the
# image's default command does (serve --config deploy/crossgate.toml, on
# loopback ports here; as root in a chroot as bare as the scratch image, as
# uid 65532) and checks /healthz, /readyz, the demo's preflights, a request
# proxied to an upstream by host name, and a clean exit on SIGTERM.
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
# A static-pie binary makes ldd print "statically linked"; a static non-PIE
# one "not a dynamic executable". Anything else is a list of libraries.
if ! ldd "$binary" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    echo "error: ldd lists shared libraries for $binary:" >&2
    ldd "$binary" >&2
    exit 1
fi

work="$(mktemp -d)"
pid=""
upstream_pid=""
cleanup() {
    if [[ -n "$upstream_pid" ]]; then
        kill "$upstream_pid" 2>/dev/null || true
        wait "$upstream_pid" 2>/dev/null || true
    fi
    if [[ -n "$pid" ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

address_of() { # log-file name: the address logged after "NAME listening on http://"
    sed -n "s|.*$2 listening on http://\\([0-9.:]*\\).*|\\1|p" "$1" 2>/dev/null | head -n 1
}
wait_for_address() { # log-file name
    local address="" tries
    for ((tries = 0; tries < 100; tries++)); do
        address="$(address_of "$1" "$2")"
        [[ -n "$address" ]] && break
        sleep 0.1
    done
    if [[ -z "$address" ]]; then
        echo "error: the static binary did not start:" >&2
        cat "$1" >&2
        exit 1
    fi
    echo "$address"
}

# An upstream for the proxied route (the same binary with a mock route).
printf '[server]\nlisten = "127.0.0.1:0"\n[[routes]]\npath = "/"\nmock = { status = 200, body = "from the upstream" }\n' \
    >"$work/upstream.toml"
"$binary" serve --config "$work/upstream.toml" >/dev/null 2>"$work/upstream.log" </dev/null &
upstream_pid=$!
upstream="$(wait_for_address "$work/upstream.log" gateway)"

# The image's configuration, on ports the kernel picks (this machine may run
# other things on 8080/9090), plus a route to the upstream by host name, so
# name resolution of the static binary is exercised too.
{
    sed -e 's/^listen = .*/listen = "127.0.0.1:0"/' -e 's/^admin = .*/admin = "127.0.0.1:0"/' \
        deploy/crossgate.toml
    printf '\n[[routes]]\npath = "/upstream/"\nupstream = "http://upstream.test:%s"\npolicy = "web"\n' "${upstream##*:}"
} >"$work/crossgate.toml"
# As in the image: an empty environment and, as root, a root filesystem with
# nothing but the binary, its configuration and /etc/hosts (no libc, no NSS
# modules, no shell), like the scratch image.
if [[ $(id -u) -eq 0 ]]; then
    root="$work/root"
    mkdir -p "$root/etc/crossgate" "$root/usr/local/bin"
    cp "$binary" "$root/usr/local/bin/crossgate"
    cp "$work/crossgate.toml" "$root/etc/crossgate/crossgate.toml"
    printf '127.0.0.1 localhost\n127.0.0.1 upstream.test\n' >"$root/etc/hosts"
    env -i "$(command -v chroot)" --userspec=65532:65532 "$root" /usr/local/bin/crossgate --log-format json \
        serve --config /etc/crossgate/crossgate.toml >"$work/stdout" 2>"$work/stderr" </dev/null &
    echo "running in a chroot with only the binary, its configuration and /etc/hosts, as uid 65532"
else
    echo "not root: running without a chroot; upstream.test must resolve through this machine's /etc/hosts" >&2
    env -i "$binary" --log-format json serve --config "$work/crossgate.toml" \
        >"$work/stdout" 2>"$work/stderr" </dev/null &
fi
pid=$!
admin="$(wait_for_address "$work/stderr" admin)"
gateway="$(wait_for_address "$work/stderr" gateway)"

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
expect "proxied to the upstream by host name" \
    "$(http GET "$gateway" /upstream/x 'Origin: https://app.example.com')" \
    'from the upstream'

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
