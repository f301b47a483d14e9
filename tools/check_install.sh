#!/usr/bin/env bash
# Does what README.md's "Install and link" says, verbatim but for the prefix (a
# scratch folder, given at install time): configures with the library's own
# dependencies only, builds, installs with --prefix, then builds two programs
# against the package with find_package(fiber COMPONENTS http) and two with
# pkg-config (fiber, fiber-http). Each must run and print 42. A user's -std=c++23
# must stand (the package states C++20 as a minimum, it does not force it).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/usr"
build="$scratch/build"

# The README's recipe (there with build/install and $HOME/.local).
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFIBER_BUILD_TESTS=OFF -DFIBER_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j2 >/dev/null
cmake --install "$build" --prefix "$prefix" >/dev/null

cmake -S tests/install -B "$scratch/app" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_STANDARD=23 >/dev/null
cmake --build "$scratch/app" >/dev/null
"$scratch/app/uses_fiber"
"$scratch/app/uses_fiber_http"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
cflags=$(pkg-config --cflags fiber)
incdir=$(pkg-config --variable=includedir fiber)
[ "$(realpath "$incdir")" = "$(realpath "$prefix/include")" ] && [ -f "$incdir/fiber/fiber.h" ] ||
  { echo "check_install: fiber.pc's includedir is '$incdir', not under $prefix" >&2; exit 1; }
case $cflags in *-std=*) echo "check_install: fiber.pc forces a standard: $cflags" >&2; exit 1 ;; esac
g++ -std=c++23 tests/install/main.cc -o "$scratch/uses_fiber_pc" $(pkg-config --cflags --libs fiber)
"$scratch/uses_fiber_pc"
g++ -std=c++20 tests/install/http_main.cc -o "$scratch/uses_fiber_http_pc" $(pkg-config --cflags --libs fiber-http)
"$scratch/uses_fiber_http_pc"
echo "install check: installed with --prefix; find_package and pkg-config both work, runtime and http"
