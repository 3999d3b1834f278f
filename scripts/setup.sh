#!/usr/bin/env bash
# Makes this machine able to run the whole suite: the system packages, the Python module,
# the Garage binary and the Docker test image that the tests need. Each step does nothing
# when its part is already there, so scripts/test.sh runs it every time; a fresh Debian
# bookworm machine with Docker and a Rust toolchain needs nothing else.
#
#   scripts/setup.sh     # prints each phase with the time the previous one took
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

phase_start=$(date +%s)
phase() {
    local now
    now=$(date +%s)
    printf '\n=== [%s] %s (previous phase: %ss)\n' "$(date -u +%H:%M:%S)" "$*" \
        "$((now - phase_start))" >&2
    phase_start=$now
}

# Commands the tests need, as "command:debian-package". Add new requirements here; a
# package is only installed when its command is missing, so a prepared image costs nothing.
#   cc        -- C compiler for bundled C sources (rusqlite, zstd) and for building Garage
#   openssl   -- random secrets for the throwaway Garage (scripts/garage-env.sh)
#   python3   -- picks free ports for Garage
#   flock     -- serialises the one-time Garage build between concurrent runs
#   debootstrap -- builds the local database image for the Docker tests (scripts/test-images.sh)
#   systemd-analyze -- verifies the units `drctl schedule install --systemd` writes
#   pip3      -- installs prometheus_client, whose parser checks the metrics file
#   setfattr, setfacl -- set extended attributes and ACLs that a backup must keep
#   docker-compose -- runs the Compose projects `drctl discover` is tested against
REQUIRED=(
    cc:build-essential
    openssl:openssl
    python3:python3
    flock:util-linux
    debootstrap:debootstrap
    systemd-analyze:systemd
    pip3:python3-pip
    chromium:chromium
    setfattr:attr
    setfacl:acl
    docker-compose:docker-compose
)

phase "checking system packages"
missing=()
for entry in "${REQUIRED[@]}"; do
    if ! command -v "${entry%%:*}" >/dev/null 2>&1; then
        missing+=("${entry#*:}")
    fi
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    sudo=()
    if ((EUID != 0)); then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

phase "checking Python modules"
# The Prometheus project's own text-format parser, for the metrics file test.
if ! python3 -c "import prometheus_client" 2>/dev/null; then
    python3 -m pip install --quiet --user prometheus_client==0.21.1 2>/dev/null ||
        python3 -m pip install --quiet --user --break-system-packages prometheus_client==0.21.1
fi

phase "checking Rust toolchain"
if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; the CI image must provide a Rust toolchain (rustup)" >&2
    exit 1
fi
cargo --version >&2
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest --version | head -n 1 >&2
else
    echo "warning: cargo-nextest not installed; scripts/test.sh will use cargo test" >&2
fi

# Separate phase so that the one-time Garage build (10-15 min, then cached) shows up in
# the timings on its own instead of inflating the test phase.
phase "ensuring the garage binary"
if [[ "${DRCTL_TEST_NO_S3:-}" != "1" ]]; then
    scripts/garage-env.sh bin >&2
fi

# Likewise for the database image of the Docker tests (a few minutes once, then cached).
phase "ensuring the test database image"
scripts/test-images.sh >&2

phase "set-up done"
