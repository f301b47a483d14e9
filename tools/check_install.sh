#!/usr/bin/env bash
# Installs the library into a scratch prefix and builds a small program against it
# twice: with find_package(fiber) and with pkg-config. Both must run and print 42.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake -S . -B "$prefix/build" -DCMAKE_BUILD_TYPE=Release -DFIBER_BUILD_TESTS=OFF \
  -DFIBER_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX="$prefix/usr" >/dev/null
cmake --build "$prefix/build" -j2 >/dev/null
cmake --install "$prefix/build" >/dev/null
cmake -S tests/install -B "$prefix/app" -DCMAKE_PREFIX_PATH="$prefix/usr" >/dev/null
cmake --build "$prefix/app" >/dev/null
"$prefix/app/uses_fiber"
PKG_CONFIG_PATH="$prefix/usr/lib/pkgconfig:$prefix/usr/lib/x86_64-linux-gnu/pkgconfig" \
  g++ tests/install/main.cc -o "$prefix/uses_fiber_pc" \
  $(PKG_CONFIG_PATH="$prefix/usr/lib/pkgconfig:$prefix/usr/lib/x86_64-linux-gnu/pkgconfig" \
    pkg-config --cflags --libs fiber)
"$prefix/uses_fiber_pc"
echo "install check: find_package and pkg-config both work"
