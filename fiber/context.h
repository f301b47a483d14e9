// Context is a saved execution context: a fiber's, or a scheduler thread's own.
// switch_context() is the one routine in the project that changes stacks, so it is
// also the one place that tells the sanitizers and libstdc++ about it.
//
// Threading: a Context is only ever switched to on the thread that owns it; fibers
// never migrate between threads (that is what makes thread_local safe in fibers).
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>
#include <cstdint>

#include "fiber/detail/sanitizer.h"

namespace fiber::detail {

namespace bctx = boost::context::detail;

// libstdc++'s per-thread exception state (__cxa_eh_globals). A fiber suspended in
// a catch block owns a "current exception"; it travels with the fiber.
struct EhState {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

struct Context;
using EntryFn = void (*)(Context* self);

struct Context {
  bctx::fcontext_t fctx = nullptr;
  // Set by make_context(), consumed by the first switch into this context.
  EntryFn entry_ = nullptr;
  EhState eh;
  // The owning thread's libstdc++ exception globals, looked up once: fibers
  // never change threads, and the lookup (a TLS call into libstdc++) would
  // otherwise cost two calls per switch.
  void* eh_globals = nullptr;
  // Lowest stack pointer seen when this context was switched out: how deep the
  // stack was ever touched at a switch. Read when a stack goes back to its pool.
  uintptr_t low_water = UINTPTR_MAX;
  // Set by the context itself just before its last switch; the context that
  // receives control then calls on_context_exit() to reclaim it.
  bool dead = false;
#if FIBER_ASAN
  void* asan_fake_stack = nullptr;
  const void* asan_bottom = nullptr;
  size_t asan_size = 0;
#endif
#if FIBER_TSAN
  void* tsan_fiber = nullptr;
#endif
};

// init_thread_context() prepares the Context of the calling thread's own stack.
void init_thread_context(Context* c);

// make_context() prepares `c` to start running entry(c) on the stack
// [stack_bottom, stack_top) at its first switch_context().
void make_context(Context* c, void* stack_bottom, void* stack_top, EntryFn entry);

// switch_context() saves the running context in `from` and resumes `to`. It
// returns when some context switches back to `from`.
void switch_context(Context* from, Context* to);

// exit_context() marks `from` dead and resumes `to` for good; `to` (whoever first
// receives control) calls on_context_exit(from) once it is off `from`'s stack.
[[noreturn]] void exit_context(Context* from, Context* to);

// destroy_context() releases the sanitizer state of a context that never ran or
// has exited.
void destroy_context(Context* c);

// Implemented by the layer that owns fibers: reclaims a context that exited.
void on_context_exit(Context* dead);

}  // namespace fiber::detail
