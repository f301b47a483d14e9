// Test hooks of the scheduler, for deterministic single-scheduler runs
// (fuzz/chan_script). Compiled in only with FIBER_TEST_HOOKS (the CMake option
// of that name; FIBER_BUILD_FUZZERS turns it on): a build without it has none of
// these functions, so a test that needs them fails to link instead of running
// on the real clock.
//
// With the hooks compiled in and the virtual clock on:
//  - now_ns() reads a counter instead of the steady clock. It moves only when
//    the scheduler has nothing to run and would sleep until a timer: it jumps to
//    that timer's deadline instead, so sleeps and timeouts cost no real time and
//    fire in the same order on every run.
//  - When the scheduler would sleep with fibers alive but no fiber runnable, no
//    timer armed and nothing in its inbox, every fiber is parked for good (with
//    one scheduler, no I/O in flight and no spawn_blocking call: the test's
//    side of the contract). The deadlock hook runs then, on the scheduler's
//    thread outside any fiber; it may ready fibers (close a channel, cancel a
//    context). If it readies none, the scheduler sleeps as usual.
//  - select() draws its random case order from the given seed.
// Always (with the hooks compiled in): waking a fiber that is not parked (a
// double wake) prints a message and aborts.
//
// Threading: set everything before fiber::run() and clear it after; the
// scheduler threads that run() starts read it (thread creation orders the two).
// Options::idle_spin must be 0 with the virtual clock (the spin waits on it).
#pragma once

#include <cstdint>

namespace fiber::detail::test {

// set_virtual_clock() turns the virtual clock on at `start_ns`, or off.
void set_virtual_clock(bool on, int64_t start_ns = 0);
bool virtual_clock();
// advance_clock() moves the virtual clock forward to `ns` (never backwards).
void advance_clock(int64_t ns);
int64_t virtual_now();

// set_deadlock_hook() installs `hook(arg)` (nullptr: none).
void set_deadlock_hook(void (*hook)(void*), void* arg);
void run_deadlock_hook();

// set_rand_seed() seeds select()'s order on scheduler threads started from now
// on; 0 restores the default (time and address).
void set_rand_seed(uint64_t seed);
uint64_t rand_seed();

// wake_not_parked() reports a wake-up of a fiber that is not parked and aborts.
[[noreturn]] void wake_not_parked(uint64_t fiber_id, int state);

}  // namespace fiber::detail::test
