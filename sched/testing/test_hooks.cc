// See test_hooks.h. Only built with FIBER_TEST_HOOKS.
#include "sched/testing/test_hooks.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#ifndef FIBER_TEST_HOOKS
#error "sched/test_hooks.cc is only built with FIBER_TEST_HOOKS"
#endif

namespace fiber::detail::test {
namespace {
// Written before fiber::run() starts its threads, read by them: thread creation
// orders the two. The clock itself moves on the scheduler thread and may be
// read anywhere, hence relaxed atomics.
std::atomic<bool> g_virtual{false};
std::atomic<int64_t> g_now{0};
void (*g_hook)(void*) = nullptr;
void* g_hook_arg = nullptr;
uint64_t g_seed = 0;
}  // namespace

void set_virtual_clock(bool on, int64_t start_ns) {
  g_now.store(start_ns, std::memory_order_relaxed);
  g_virtual.store(on, std::memory_order_relaxed);
}

bool virtual_clock() { return g_virtual.load(std::memory_order_relaxed); }

void advance_clock(int64_t ns) {
  if (ns > g_now.load(std::memory_order_relaxed)) g_now.store(ns, std::memory_order_relaxed);
}

int64_t virtual_now() { return g_now.load(std::memory_order_relaxed); }

void set_deadlock_hook(void (*hook)(void*), void* arg) {
  g_hook = hook;
  g_hook_arg = arg;
}

void run_deadlock_hook() {
  if (g_hook != nullptr) g_hook(g_hook_arg);
}

void set_rand_seed(uint64_t seed) { g_seed = seed; }

uint64_t rand_seed() { return g_seed; }

void wake_not_parked(uint64_t fiber_id, int state) {
  std::fprintf(stderr, "fiber: fiber %llu woken while not parked (state %d): a double wake-up\n",
               static_cast<unsigned long long>(fiber_id), state);
  std::abort();
}

}  // namespace fiber::detail::test
