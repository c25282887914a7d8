#!/usr/bin/env bash
# Installs the Debian packages switchboard builds and tests with.
# Idempotent: asks dpkg first and only calls apt-get for what is missing.
set -euo pipefail
pkgs=(build-essential pkg-config
      libssl-dev libsodium-dev libwebsockets-dev libwebsockets-evlib-ev libev-dev
      libmsgpack-dev libhiredis-dev
      libpq-dev libsqlite3-dev libcurl4-openssl-dev libinih-dev libjansson-dev
      libcmocka-dev
      clang libclang-rt-14-dev gcc-mingw-w64-x86-64
      postgresql redis-server nginx-light wrk linux-perf valgrind curl jq openssl procps
      python3 prometheus chromium
      nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from elsewhere than Debian; a working node + npm is enough.
if command -v node >/dev/null && command -v npm >/dev/null; then
    tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
    missing=("${tmp[@]}")
fi
if ((${#missing[@]} == 0)); then
    echo "deps: all packages present"
    exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
