// Fiber is the control block of one fiber. It lives at the top of the fiber's own
// stack, so spawning allocates nothing beyond the (pooled) stack.
//
// Threading: a fiber belongs to one scheduler thread for its whole life. Only that
// thread touches its fields, except `next`, which another thread may use while
// the fiber is parked and queued in some wait list (the list's lock guards it).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "fiber/detail/body.h"
#include "fiber/detail/wait_reason.h"
#include "fiber/internal/context.h"
#include "fiber/internal/stack.h"

namespace fiber::detail {

// FiberState: who moves a fiber from each state.
enum class FiberState : uint8_t {
  kReady,    // in a run queue or an inbox; the scheduler moves it to kRunning
  kRunning,  // on the CPU; it moves itself to kReady (yield), kParked or kDead
  kParked,   // waiting; whoever wakes it (timer, sync object, other core) makes it kReady
  kDead,     // returned; the next context reclaims its stack
};

struct Fiber : Context {
  Fiber* next = nullptr;  // run queue / inbox / wait list link
  Fiber* live_prev = nullptr;
  Fiber* live_next = nullptr;
  uint64_t id = 0;
  void* owner = nullptr;  // the scheduler that runs this fiber
  Stack stack;
  FiberBody* body = nullptr;
  bool body_on_heap = false;
  FiberState state = FiberState::kReady;
  // Why it is parked (set at each park, with its detail), for reports.
  WaitReason wait_reason = WaitReason::kUnknown;
  int32_t wait_fd = -1;       // kIo, kIoClose: the fd
  int64_t wait_until_ns = 0;  // a deadline (sleep, timed waits, I/O); 0: none
  // When it parked: the scheduler's clock hint (see Scheduler::park()), exact
  // to about a millisecond, not a clock read per park.
  int64_t wait_since_ns = 0;
  // Where go() was called, for reports: a string literal of the program.
  const char* site_file = nullptr;
  uint32_t site_line = 0;
  // Fiber-local values, indexed by key; destroyed when the fiber ends.
  std::vector<std::pair<void*, void (*)(void*)>>* fls = nullptr;
};

// The fiber running on this thread, or nullptr on a scheduler's own context.
// Written only by the owning scheduler; read by the overflow signal handler.
extern thread_local constinit Fiber* t_current_fiber;

// create_fiber() takes a stack from `pool` and builds a fiber on it, ready to
// run `body` once switched to: moved onto the stack, or adopted if on the heap.
// Throws std::system_error if no stack can be mapped, std::length_error if the
// callable does not fit a quarter of the stack.
Fiber* create_fiber(StackPool& pool, size_t stack_size, FiberBody* body, bool body_on_heap);

// free_fiber() returns an exited or never-started fiber's stack to `pool`. For a
// fiber abandoned at stop, nothing on its stack is destroyed, nor its callable.
void free_fiber(StackPool& pool, Fiber* f);

// fiber_exit is called on the fiber's own stack once its body has returned, and
// switches away for good (it must not return). Set by the scheduler layer, as
// on_context_exit (see context.h).
extern void (*fiber_exit)(Fiber* self);

// install_overflow_handler() installs, once per process, the SIGSEGV handler that
// reports a fiber stack overflow; other faults go to the previous handler.
void install_overflow_handler();

// SignalStack is the alternate signal stack of one thread, on which the overflow
// handler runs (the faulting stack has no room left).
class SignalStack {
 public:
  SignalStack();
  ~SignalStack();
  SignalStack(const SignalStack&) = delete;
  SignalStack& operator=(const SignalStack&) = delete;

 private:
  void* mem_ = nullptr;
  size_t size_ = 0;
};

}  // namespace fiber::detail
