#!/usr/bin/env bash
# Install what ingot needs to build and test, from Debian's packages and npm, only when missing.
# Safe to run again and again: with everything present it does nothing and prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(gcc make pkg-config clang libclang-rt-14-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libcurl4-openssl-dev libsodium-dev libzstd-dev libsnappy-dev zlib1g-dev liblz4-dev libbrotli-dev
      libcmocka-dev
      time curl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Test tools from npm (DuckDB reads the lake back in the API tests). Installed when the lock
# file is newer than the installed tree.
if [ -f tests/package.json ]; then
  if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
    echo "deps: npm ci in tests/"
    (cd tests && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi
