#include "fiber/internal/context.h"

#include <cxxabi.h>
#include <unwind.h>

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

// An unwind request carried onto the target's stack.
struct UnwindCall {
  Context* from;
  Context* target;
  void** pcs;
  int max;
  int depth;
  bool past_self;  // the frames up to unwind_on_top's own are skipped
};

_Unwind_Reason_Code collect_pc(struct _Unwind_Context* ctx, void* arg) {
  auto* call = static_cast<UnwindCall*>(arg);
  void* pc = reinterpret_cast<void*>(_Unwind_GetIP(ctx));
  if (pc == nullptr) return _URC_END_OF_STACK;
  if (!call->past_self) {
    // _Unwind_Backtrace's first frame is unwind_on_top itself; its caller, as
    // ontop_fcontext left the stack, is the target's switch point.
    call->past_self = true;
    return _URC_NO_REASON;
  }
  call->pcs[call->depth++] = pc;
  return call->depth == call->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

// Runs on the target's stack, entered as if called where the target switched
// out. Unwinds, switches back to `from`, and when the target is resumed later
// (by an ordinary switch_context()) returns that switch's transfer as its own
// result, which is what the target's suspended jump_fcontext then returns.
[[gnu::noinline]] bctx::transfer_t unwind_on_top(bctx::transfer_t t) {
  auto* call = static_cast<UnwindCall*>(t.data);
  Context* target = call->target;
  Context* from = call->from;
  arrive(target, bctx::transfer_t{t.fctx, from}, /*first_entry=*/false);
  _Unwind_Backtrace(&collect_pc, call);
  before_switch(target, from, /*dying=*/false);
  return bctx::jump_fcontext(from->fctx, target);
}

}  // namespace

int unwind_suspended(Context* from, Context* target, void** pcs, int max) {
  if (target->entry_ != nullptr || target->dead || max <= 0) return 0;
  UnwindCall call{from, target, pcs, max, 0, false};
  before_switch(from, target, /*dying=*/false);
  bctx::transfer_t t = bctx::ontop_fcontext(target->fctx, &call, &unwind_on_top);
  arrive(from, t, /*first_entry=*/false);
  return call.depth;
}

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
