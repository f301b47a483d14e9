#include "fiber/context.h"

#include <cxxabi.h>

#if FIBER_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if FIBER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace fiber::detail {
namespace {

// The layout of libstdc++'s __cxa_eh_globals, whose definition is not public.
struct CxaEhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

// Both contexts of a switch belong to the running thread, so `from`'s cached
// pointer is this thread's globals (see Context::eh_globals).
inline void swap_eh(Context* from, const Context* to) {
  auto* g = static_cast<CxaEhGlobals*>(from->eh_globals);
  from->eh.caught_exceptions = g->caught_exceptions;
  from->eh.uncaught_exceptions = g->uncaught_exceptions;
  g->caught_exceptions = to->eh.caught_exceptions;
  g->uncaught_exceptions = to->eh.uncaught_exceptions;
}

// A new context learns who it is from these, set by the switch that starts it.
thread_local Context* t_starting = nullptr;
thread_local EntryFn t_starting_entry = nullptr;

// arrive() runs first thing after every switch, on the stack of `self`.
inline void arrive(Context* self, bctx::transfer_t t, bool first_entry) {
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
  if (from->dead) on_context_exit(from);
}

void trampoline(bctx::transfer_t t) {
  Context* self = t_starting;
  EntryFn entry = t_starting_entry;
  arrive(self, t, /*first_entry=*/true);
  entry(self);
  __builtin_trap();  // entry() ends with exit_context()
}

inline void before_switch(Context* from, Context* to, bool dying) {
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

}  // namespace

void init_thread_context(Context* c) {
  c->eh_globals = abi::__cxa_get_globals();
#if FIBER_TSAN
  c->tsan_fiber = __tsan_get_current_fiber();
#else
  (void)c;
#endif
}

void make_context(Context* c, void* stack_bottom, void* stack_top, EntryFn entry) {
  auto size = static_cast<size_t>(static_cast<char*>(stack_top) - static_cast<char*>(stack_bottom));
  c->fctx = bctx::make_fcontext(stack_top, size, &trampoline);
  c->eh = {};
  c->eh_globals = abi::__cxa_get_globals();  // made on the thread that will run it
  c->dead = false;
  c->low_water = reinterpret_cast<uintptr_t>(stack_top);
#if FIBER_ASAN
  c->asan_fake_stack = nullptr;
  c->asan_bottom = stack_bottom;
  c->asan_size = size;
#endif
#if FIBER_TSAN
  c->tsan_fiber = __tsan_create_fiber(0);
#endif
  c->entry_ = entry;
}

void switch_context(Context* from, Context* to) {
  before_switch(from, to, /*dying=*/false);
  if (to->entry_ != nullptr) {
    t_starting = to;
    t_starting_entry = to->entry_;
    to->entry_ = nullptr;
  }
  bctx::transfer_t t = bctx::jump_fcontext(to->fctx, from);
  arrive(from, t, /*first_entry=*/false);
}

void exit_context(Context* from, Context* to) {
  from->dead = true;
  before_switch(from, to, /*dying=*/true);
  if (to->entry_ != nullptr) {
    t_starting = to;
    t_starting_entry = to->entry_;
    to->entry_ = nullptr;
  }
  bctx::jump_fcontext(to->fctx, from);
  __builtin_trap();
}

void destroy_context(Context* c) {
#if FIBER_TSAN
  if (c->tsan_fiber != nullptr) __tsan_destroy_fiber(c->tsan_fiber);
  c->tsan_fiber = nullptr;
#else
  (void)c;
#endif
}

}  // namespace fiber::detail
