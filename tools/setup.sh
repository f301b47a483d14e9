#!/usr/bin/env bash
# Installs, from Debian's packages, whatever the project needs to build, test and
# benchmark that is not there yet. Idempotent; prints nothing when all is there.
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  libboost-context-dev  # fiber switches (fcontext)
  liburing-dev          # the io_uring driver
  libabsl-dev           # AnyInvocable, FunctionRef, ...
  libgtest-dev          # tests
  libbenchmark-dev      # micro benchmarks
  curl                  # HTTP tests
  node-llhttp           # the HTTP parser (llhttp C sources)
  libssl-dev            # TLS (OpenSSL 3: fiber::tls)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
