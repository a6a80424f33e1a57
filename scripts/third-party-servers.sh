#!/usr/bin/env bash
# Installs the third-party CORS servers the tests run (crates/testkit/third_party):
# the npm packages pinned by its package-lock.json into target/third-party/node,
# the PyPI packages pinned below into the venv target/third-party/venv.
# nginx comes from Debian (scripts/test.sh installs it). Idempotent: does
# nothing when the pinned versions are already there.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fixtures="$repo_root/crates/testkit/third_party"
target="$repo_root/target/third-party"
# flask-cors and Starlette with their servers; jsonschema validates SARIF output.
pypi_packages=(flask==3.1.3 flask-cors==6.0.5 starlette==1.10.0 uvicorn==0.54.0 jsonschema==4.26.0)

mkdir -p "$target/node"
if ! cmp -s "$fixtures/node/package-lock.json" "$target/node/package-lock.json" \
    || [[ ! -d "$target/node/node_modules" ]]; then
    echo "==> installing the npm CORS servers into target/third-party/node"
    cp "$fixtures/node/package.json" "$fixtures/node/package-lock.json" "$target/node/"
    # --ignore-scripts: none of these packages needs an install script.
    npm ci --prefix "$target/node" --ignore-scripts --no-audit --no-fund
fi

stamp="$target/venv/.crossgate-pins"
if [[ "$(cat "$stamp" 2>/dev/null)" != "${pypi_packages[*]}" ]]; then
    echo "==> installing the PyPI CORS servers into target/third-party/venv"
    rm -rf "$target/venv"
    python3 -m venv "$target/venv"
    "$target/venv/bin/pip" install --quiet "${pypi_packages[@]}"
    printf '%s' "${pypi_packages[*]}" >"$stamp"
fi
