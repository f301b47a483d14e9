// The runtime's table for the libc hooks (internal/hook_api.h).
#include "driver/internal/hook_api.h"

#include <dlfcn.h>

#include <atomic>

#include "fiber/blocking.h"
#include "fiber/join_handle.h"
#include "fiber/runtime.h"
#include "io_poller.h"
#include "sched/internal/scheduler.h"

// Weak: defined when the static hook library is linked in (whole-archive);
// else null, and attach_hook() asks the dynamic linker.
extern "C" const fiber::detail::HookClient* fiber_hook_attach(
    const fiber::detail::HookRuntime* runtime) __attribute__((weak));

namespace fiber::detail {
namespace {

bool on_fiber() { return t_current_fiber != nullptr && t_scheduler != nullptr; }

bool uring() { return fiber::driver_info().kind == DriverKind::kIoUring; }

void hook_sleep_until(int64_t deadline_ns) { sleep_until_ns(deadline_ns); }

void hook_yield() { fiber::yield(); }

void hook_run_blocking(void (*fn)(void*), void* arg) {
  run_blocking([=]() noexcept { fn(arg); });
}

IoHandle* handle_new(int fd) { return new IoHandle(fd); }

Scheduler* owner_of(const IoHandle* h) { return static_cast<Scheduler*>(h->owner); }

int32_t poll_once(IoHandle& h, int events, int64_t deadline_ns) {
  IoRequest req{.kind = IoKind::kPoll, .fd = h.fd, .flags = events};
  return io_execute(h, req, deadline_ns);
}

int32_t wait(IoHandle* h, int events, int64_t deadline_ns) {
  Scheduler* owner = owner_of(h);
  if (owner == t_scheduler) return poll_once(*h, events, deadline_ns);
  // The handle's op list and epoll registration are its owner's: the wait
  // runs there, and this fiber parks on the join meanwhile.
  return spawn_on(owner->index(), [=] { return poll_once(*h, events, deadline_ns); }).join();
}

int32_t execute(const IoRequest* req) {
  IoHandle h(req->fd);
  return io_execute(h, *req, 0);  // file kinds: nothing to forget afterwards
}

void fail(IoHandle* h) { io_fail(*h, ECANCELED); }

void release(IoHandle* h) {
  Scheduler* owner = owner_of(h);
  if (owner == t_scheduler && t_current_fiber != nullptr) {
    io_detach(*h);
  } else if (t_current_fiber != nullptr) {
    spawn_on(owner->index(), [h] { io_detach(*h); }).join();
  } else {
    // Not a fiber (a plain thread, a spawn_blocking() thread): post the detach
    // to the owner and block this thread until it is done.
    std::atomic<bool> done{false};
    go_on(owner->index(), [h, &done] {
      io_detach(*h);
      done.store(true, std::memory_order_release);
      done.notify_one();
    });
    done.wait(false, std::memory_order_acquire);
  }
  delete h;
}

void drop(IoHandle* h) { delete h; }

constexpr HookRuntime kTable{
    .on_fiber = &on_fiber,
    .uring = &uring,
    .now_ns = &now_ns,
    .sleep_until = &hook_sleep_until,
    .yield = &hook_yield,
    .run_blocking = &hook_run_blocking,
    .handle_new = &handle_new,
    .wait = &wait,
    .execute = &execute,
    .fail = &fail,
    .release = &release,
    .drop = &drop,
};

}  // namespace

const HookClient* attach_hook() {
  using Attach = const HookClient* (*)(const HookRuntime*);
  Attach attach = &fiber_hook_attach;
  if (attach == nullptr)
    attach = reinterpret_cast<Attach>(dlsym(RTLD_DEFAULT, "fiber_hook_attach"));
  return attach != nullptr ? attach(&kTable) : nullptr;
}

}  // namespace fiber::detail
