#!/usr/bin/env bash
# Shared by run.sh and test.sh: install the Debian 12 packages Mahali needs (as root with
# apt-get; otherwise print the exact command and stop), then configure and build.
# usage: scripts/bootstrap.sh BUILD_DIR BUILD_TYPE [--test]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=$1
build_type=$2
want_tests=${3:-}

pkgs=(build-essential cmake pkg-config libpq-dev postgresql-15 postgresql-15-postgis-3
      libgeos-dev libproj-dev libcivetweb-dev libjansson-dev libsodium-dev)
if [[ $want_tests == --test ]]; then
    pkgs+=(libcmocka-dev clang-format)
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "mahali: missing Debian packages. Install them with:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "mahali: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" ${MAHALI_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
