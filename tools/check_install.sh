#!/usr/bin/env bash
# Does what README.md's "Install and link" says, verbatim but for the prefix (a
# scratch folder, given at install time): configures with the library's own
# dependencies only, builds, installs with --prefix, then builds two programs
# against the package with find_package(fiber COMPONENTS http) and two with
# pkg-config (fiber, fiber-http). Each must run and print 42. The libc hooks
# are built both ways too (fiber::hook, fiber::hook_static, fiber-hook,
# fiber-hook-static, and LD_PRELOAD), each run on both drivers. A user's -std=c++23
# must stand (the package states C++20 as a minimum, it does not force it).
#
# Both routes must put -fstack-clash-protection on the user's compile line, and
# tests/install/overflow_main.cc, built by each, must die of the runtime's fiber
# stack overflow report (a 64 KiB frame on a 16 KiB stack), not of a bare
# SIGSEGV. As a control, the same program built with -fno-stack-clash-protection
# after the package's flags must not print the report nor exit 0: its stray
# write usually lands silently on a neighbouring fiber's canary (exit 3), which
# is what the flag is for; where it lands is the kernel's choice, so the check
# asserts no more than that and says what happened.
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

fail() { echo "check_install: $*" >&2; exit 1; }

# run_overflow BINARY: runs it (no core dump, bounded in time), stderr to
# $scratch/err; prints its status (128+N when killed by signal N).
run_overflow() {
  local status=0
  { (ulimit -c 0; exec timeout 30 "$1") >/dev/null 2>"$scratch/err"; } 2>/dev/null || status=$?
  echo "$status"
}

# expect_overflow_report WHAT BINARY: the program must abort (SIGABRT: 134) with
# the runtime's report naming the fiber that announced the big frame.
expect_overflow_report() {
  local status id
  status=$(run_overflow "$2")
  id=$(sed -n 's/^fiber \([0-9]*\), on a 16384-byte stack, calls a 65536-byte frame$/\1/p' "$scratch/err")
  if [ "$status" != 134 ] || [ -z "$id" ] || ! grep -qxF \
      "fiber stack overflow: fiber $id used all of its 16384-byte stack (raise SpawnOptions::stack_size)" \
      "$scratch/err"; then
    fail "$1: a 64 KiB frame on a 16 KiB fiber stack must end in the fiber stack overflow" \
         "report and SIGABRT (status 134); got status $status and stderr:"$'\n'"$(cat "$scratch/err")"
  fi
}

cmake -S tests/install -B "$scratch/app" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_STANDARD=23 \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
cmake --build "$scratch/app" >/dev/null
"$scratch/app/uses_fiber"
"$scratch/app/uses_fiber_http"
grep -F 'overflow_main.cc.o' "$scratch/app/compile_commands.json" | grep -qF -- -fstack-clash-protection ||
  fail "fiber::fiber does not put -fstack-clash-protection on its users' compile line"
expect_overflow_report "find_package build" "$scratch/app/overflows_fiber_stack"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
cflags=$(pkg-config --cflags fiber)
incdir=$(pkg-config --variable=includedir fiber)
[ "$(realpath "$incdir")" = "$(realpath "$prefix/include")" ] && [ -f "$incdir/fiber/fiber.h" ] ||
  { echo "check_install: fiber.pc's includedir is '$incdir', not under $prefix" >&2; exit 1; }
case $cflags in *-std=*) fail "fiber.pc forces a standard: $cflags" ;; esac
case " $cflags " in *" -fstack-clash-protection "*) ;; *) fail "fiber.pc's Cflags lack -fstack-clash-protection: $cflags" ;; esac
g++ -std=c++23 tests/install/main.cc -o "$scratch/uses_fiber_pc" $(pkg-config --cflags --libs fiber)
"$scratch/uses_fiber_pc"
g++ -std=c++20 tests/install/http_main.cc -o "$scratch/uses_fiber_http_pc" $(pkg-config --cflags --libs fiber-http)
"$scratch/uses_fiber_http_pc"
g++ -std=c++20 tests/install/overflow_main.cc -o "$scratch/overflows_pc" $(pkg-config --cflags --libs fiber)
expect_overflow_report "pkg-config build" "$scratch/overflows_pc"

# The libc hooks: each program must see its read park the fiber (exit 0), on
# both drivers (epoll forced; io_uring where the kernel allows it: 77 skips).
run_hook() {  # run_hook WHAT BINARY
  local status
  for driver in epoll io_uring; do
    status=0
    FIBER_DRIVER=$driver timeout 30 "$2" >"$scratch/hook_out" 2>&1 || status=$?
    [ "$status" = 0 ] || { [ "$driver" = io_uring ] && [ "$status" = 77 ]; } ||
      fail "$1 on $driver: status $status: $(cat "$scratch/hook_out")"
  done
}
run_hook "find_package fiber::hook" "$scratch/app/uses_fiber_hook"
run_hook "find_package fiber::hook_static" "$scratch/app/uses_fiber_hook_static"
g++ -std=c++20 tests/hook/link_main.cc -o "$scratch/uses_hook_pc" $(pkg-config --cflags --libs fiber-hook)
run_hook "pkg-config fiber-hook" "$scratch/uses_hook_pc"
g++ -std=c++20 tests/hook/link_main.cc -o "$scratch/uses_hook_static_pc" \
  $(pkg-config --cflags --libs fiber-hook-static)
run_hook "pkg-config fiber-hook-static" "$scratch/uses_hook_static_pc"
g++ -std=c++20 tests/hook/link_main.cc -o "$scratch/uses_fiber_plain" $(pkg-config --cflags --libs fiber)
LD_PRELOAD="$(pkg-config --variable=libdir fiber-hook)/libfiber_hook.so" \
  run_hook "LD_PRELOAD libfiber_hook.so" "$scratch/uses_fiber_plain"

# The control: the same program without the flag.
g++ -std=c++20 tests/install/overflow_main.cc -o "$scratch/overflows_unprotected" \
  $(pkg-config --cflags --libs fiber) -fno-stack-clash-protection
status=$(run_overflow "$scratch/overflows_unprotected")
if [ "$status" = 0 ] || grep -q '^fiber stack overflow:' "$scratch/err"; then
  fail "built with -fno-stack-clash-protection, the program should neither print the overflow" \
       "report nor succeed; got status $status and stderr:"$'\n'"$(cat "$scratch/err")"
fi
case $status in
  3 | 4) unprotected=$(tail -n 1 "$scratch/err") ;;
  139) unprotected="killed by a bare SIGSEGV" ;;
  124) unprotected="hung (killed after 30 s)" ;;
  *) unprotected="exit status $status" ;;
esac

echo "install check: installed with --prefix; find_package and pkg-config both work, runtime, http and hook (shared, static, LD_PRELOAD)"
echo "install check: with -fstack-clash-protection from both, a 64 KiB frame on a 16 KiB stack gets the overflow report"
echo "install check: without it (control): $unprotected (status $status)"
