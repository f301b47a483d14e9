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
#if FIBER_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if FIBER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

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
// returns when some context switches back to `from`. Inline, below: each call
// frame between a parking fiber and the switch costs a mispredicted return when
// the fiber resumes (the return stack buffer holds the other fiber's calls).
void switch_context(Context* from, Context* to);

// exit_context() marks `from` dead and resumes `to` for good; `to` (whoever first
// receives control) calls on_context_exit(from) once it is off `from`'s stack.
[[noreturn]] void exit_context(Context* from, Context* to);

// unwind_suspended() writes the return addresses of the frames of `target`, a
// context suspended by switch_context() (not one that never ran), innermost
// first, into pcs[0..max) and returns how many. It runs the unwinder on top of
// `target`'s own stack (Boost.Context's ontop_fcontext): the unwinder then
// sees a call made from the point where `target` switched out, and walks its
// frames with their DWARF unwind tables (no frame pointers needed). `from` is
// the running context, whose state is saved meanwhile, as by a switch. Needs
// some 16 KiB free below `target`'s stack pointer; the caller checks.
// Same thread only.
int unwind_suspended(Context* from, Context* target, void** pcs, int max);

// destroy_context() releases the sanitizer state of a context that never ran or
// has exited.
void destroy_context(Context* c);

// on_context_exit reclaims a context that exited. The layer that owns fibers
// (sched) sets it before any thread switches, and this layer never names that
// layer: a hook, not a link-time dependency running the wrong way. Written
// before the switching threads start, read-only while they run.
extern void (*on_context_exit)(Context* dead);

// --- the switch itself: the one place that tells the sanitizers and libstdc++ ---

// A new context learns who it is from these, set by the switch that starts it.
extern thread_local constinit Context* t_starting;
extern thread_local constinit EntryFn t_starting_entry;

// The layout of libstdc++'s __cxa_eh_globals, whose definition is not public.
struct CxaEhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

// Both contexts of a switch belong to the running thread, so `from`'s cached
// pointer is this thread's globals (see Context::eh_globals).
[[gnu::always_inline]] inline void swap_eh(Context* from, const Context* to) {
  auto* g = static_cast<CxaEhGlobals*>(from->eh_globals);
  from->eh.caught_exceptions = g->caught_exceptions;
  from->eh.uncaught_exceptions = g->uncaught_exceptions;
  g->caught_exceptions = to->eh.caught_exceptions;
  g->uncaught_exceptions = to->eh.uncaught_exceptions;
}

// arrive() runs first thing after every switch, on the stack of `self`.
[[gnu::always_inline]] inline void arrive(Context* self, bctx::transfer_t t, bool first_entry) {
  auto* from = static_cast<Context*>(t.data);
  from->fctx = t.fctx;
  auto sp = reinterpret_cast<uintptr_t>(t.fctx);
  if (sp < from->low_water) from->low_water = sp;
#if FIBER_ASAN
  // Must run right after the switch; it also teaches us the bounds of the stack we
  // came from, which is how a thread's own stack gets its bounds.
  __sanitizer_finish_switch_fiber(first_entry ? nullptr : self->asan_fake_stack, &from->asan_bottom,
                                  &from->asan_size);
#else
  (void)self;
  (void)first_entry;
#endif
  if (from->dead) [[unlikely]]
    on_context_exit(from);
}

[[gnu::always_inline]] inline void before_switch(Context* from, Context* to, bool dying) {
#if FIBER_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &from->asan_fake_stack, to->asan_bottom,
                                 to->asan_size);
#else
  (void)dying;
#endif
#if FIBER_TSAN
  // Flag 0: a switch is a synchronisation point between the two contexts.
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
  swap_eh(from, to);
}

// switch_context(): see the declarations above.
[[gnu::always_inline]] inline void switch_context(Context* from, Context* to) {
  before_switch(from, to, /*dying=*/false);
  if (to->entry_ != nullptr) [[unlikely]] {
    t_starting = to;
    t_starting_entry = to->entry_;
    to->entry_ = nullptr;
  }
  bctx::transfer_t t = bctx::jump_fcontext(to->fctx, from);
  arrive(from, t, /*first_entry=*/false);
}

}  // namespace fiber::detail
