// The runtime's side of the libc hooks (hook/, libfiber_hook): what the hooks
// may ask of the running runtime, as a table of plain function pointers.
//
// Why a table: the hook library must also work when it is LD_PRELOADed into a
// program that was linked against the runtime without it. Such a program
// exports none of the runtime's symbols, so the hooks cannot call them by name.
// Instead, run() looks the hook up (a weak reference for the static hook, else
// dlsym(RTLD_DEFAULT, "fiber_hook_attach")) and hands it this table; the hook
// hands back its callbacks. Both halves are built from this one header, so
// they always agree.
//
// Threading: every entry is safe on any thread of the process; those marked
// "fiber-only" must be called from a fiber of a running runtime (on_fiber()).
#pragma once

#include <cstdint>

#include "driver/internal/io.h"

namespace fiber::detail {

struct HookRuntime {
  // on_fiber() is true when the caller is a fiber of a running scheduler
  // (false on the scheduler's own loop, on spawn_blocking() threads and on
  // any other thread).
  bool (*on_fiber)();
  // uring() is true when the caller's scheduler runs the io_uring driver.
  // Fiber-only.
  bool (*uring)();
  // now_ns() is the runtime's clock (CLOCK_MONOTONIC), for deadlines.
  int64_t (*now_ns)();
  // sleep_until() parks the caller until `deadline_ns` (INT64_MAX: for
  // ever; a past one returns at once). Fiber-only.
  void (*sleep_until)(int64_t deadline_ns);
  // yield() lets the other fibers of the caller's core run. Fiber-only.
  void (*yield)();
  // run_blocking() runs fn(arg) on the spawn_blocking() pool and parks until it
  // returned. Fiber-only.
  void (*run_blocking)(void (*fn)(void*), void* arg);

  // handle_new() makes an IoHandle for `fd`, owned by the caller's core.
  // Fiber-only.
  IoHandle* (*handle_new)(int fd);
  // wait() parks until `h`'s fd is ready for `events` (POLLIN, POLLOUT, ...):
  // the revents, or -ETIMEDOUT once `deadline_ns` (now_ns() clock, 0 = none)
  // passed, -ECANCELED after fail(), or another -errno (the fd cannot be
  // waited on). From another core than the owner's, the wait runs on the
  // owner's core and the caller parks until it is done. Fiber-only.
  int32_t (*wait)(IoHandle* h, int events, int64_t deadline_ns);
  // execute() runs `req` on a fresh handle of the caller's core (io_execute()):
  // for regular files on io_uring. Fiber-only.
  int32_t (*execute)(const IoRequest* req);
  // fail() makes every wait on `h`, in flight or to come, return -ECANCELED.
  // Any thread of the runtime.
  void (*fail)(IoHandle* h);
  // release() lets go of `h` on its owner's core (it must have no wait in
  // flight and none to come) and deletes it. From a fiber on another core or
  // from a thread that is not a fiber, it runs there and waits for it. Any
  // thread, while the runtime runs.
  void (*release)(IoHandle* h);
  // drop() deletes `h` without touching its core's driver: for a handle whose
  // runtime has ended (its driver is gone). Any thread.
  void (*drop)(IoHandle* h);
};

// HookClient is what the hook hands back when it is attached.
struct HookClient {
  // run_ended() is called by run(), on its thread, once every scheduler of the
  // runtime has stopped: the hook drops the handles it still holds.
  void (*run_ended)();
};

// attach_hook() finds the hook library, if the program has one, and hands it
// the runtime's table: its callbacks, or nullptr when there is no hook.
// Called by run() on entry.
const HookClient* attach_hook();

}  // namespace fiber::detail

// fiber_hook_attach() is defined by the hook library (hook/), if linked or
// preloaded.
extern "C" const fiber::detail::HookClient* fiber_hook_attach(
    const fiber::detail::HookRuntime* runtime);
