#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every workspace test
# (the headless-Chromium browser suite included) and a short bounded run of each
# fuzz target. On a fresh Debian machine it first installs what the suite needs.
#
# Knobs (environment):
#   FUZZ_SECONDS   seconds of fuzzing per target (default 30; 0 builds the targets only)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
source scripts/lib.sh

fuzz_seconds="${FUZZ_SECONDS:-30}"
suite_start=$SECONDS

step() {
    printf '\n==> %s\n' "$*"
}

finish_step() {
    printf '==> done in %ss\n' "$((SECONDS - $1))"
}

# Debian packages the tests need, as command=package (nginx, node and npm run
# the third-party CORS servers). wrk is only used by bench/gateway.sh, HAProxy
# by bench/scale-out.sh; each installs its own.
test_packages=(
    chromium
    chromedriver=chromium-driver
    firefox-esr
    WebKitWebDriver=webkit2gtk-driver
    Xvfb=xvfb
    file
    nginx
    node=nodejs
    npm
)

# cargo-fuzz is a cargo subcommand from crates.io; --locked pins the versions
# its authors tested.
install_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        return
    fi
    step "installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
}

# The Kubernetes manifest validator (PyPI, ships the Kubernetes JSON schemas,
# works offline) in its own venv under target/, pinned; see docs/deployment.md.
deploy_venv="$repo_root/target/tools/deploy-venv"
kubernetes_validate_version="1.37.0"
install_deploy_validator() {
    if "$deploy_venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qF "$kubernetes_validate_version"; then
        return
    fi
    step "installing kubernetes-validate $kubernetes_validate_version from PyPI into target/tools/deploy-venv"
    if ! python3 -m venv --help >/dev/null 2>&1; then
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends python3-venv
    fi
    rm -rf "$deploy_venv"
    python3 -m venv "$deploy_venv"
    "$deploy_venv/bin/pip" install --quiet "kubernetes-validate==$kubernetes_validate_version"
}

# geckodriver (Firefox's WebDriver server) is not packaged by Debian; the browser
# suite looks for it in ~/.cargo/bin. See docs/browsers.md.
install_geckodriver() {
    if command -v geckodriver >/dev/null 2>&1 || [[ -x "$HOME/.cargo/bin/geckodriver" ]]; then
        return
    fi
    step "installing geckodriver from crates.io"
    cargo install geckodriver --locked
}

install_missing_packages "${test_packages[@]}"
install_geckodriver
install_cargo_fuzz
install_deploy_validator
# The third-party CORS servers (npm, PyPI) that audit and check are tested against.
scripts/third-party-servers.sh

t=$SECONDS
step "cargo fmt --check (workspace and fuzz/)"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
finish_step "$t"

t=$SECONDS
step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
finish_step "$t"

# The machine has one stable toolchain and no other can be fetched. cargo-fuzz
# needs unstable rustc flags (-Zsanitizer=address, sanitizer coverage);
# RUSTC_BOOTSTRAP=1 unlocks them on the stable compiler, whose rust-std ships the
# AddressSanitizer runtime. See docs/testing.md.
t=$SECONDS
step "fuzz targets: build, then ${fuzz_seconds}s each"
(
    cd fuzz
    export RUSTC_BOOTSTRAP=1
    cargo fuzz build
    if ((fuzz_seconds > 0)); then
        for target in $(cargo fuzz list); do
            step "cargo fuzz run $target (${fuzz_seconds}s)"
            # The first directory collects the corpus (ignored by git); the
            # committed seeds only feed the fuzzer.
            mkdir -p "corpus/$target"
            cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
                -max_total_time="$fuzz_seconds" -print_final_stats=1
        done
    fi
)
finish_step "$t"

t=$SECONDS
step "deploy/: Kubernetes manifests (schemas, consistency) and the container's static binary"
"$deploy_venv/bin/python" scripts/check-deploy.py
scripts/container-smoke.sh
finish_step "$t"

t=$SECONDS
step "cargo test --workspace"
cargo test --workspace
finish_step "$t"

printf '\nscripts/test.sh: all steps passed in %ss\n' "$((SECONDS - suite_start))"
