#include "fiber/internal/context.h"

#include <cxxabi.h>

namespace fiber::detail {

thread_local constinit Context* t_starting = nullptr;
thread_local constinit EntryFn t_starting_entry = nullptr;
void (*on_context_exit)(Context* dead) = nullptr;

namespace {

void trampoline(bctx::transfer_t t) {
  Context* self = t_starting;
  EntryFn entry = t_starting_entry;
  arrive(self, t, /*first_entry=*/true);
  entry(self);
  __builtin_trap();  // entry() ends with exit_context()
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
