#include "driver/internal/io.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <thread>

#include "fiber/detail/park.h"
#include "fiber/internal/resource_counts.h"
#include "fiber/join_handle.h"
#include "io_poller.h"
#include "op_table.h"
#include "sched/internal/scheduler.h"

namespace fiber::detail {
namespace {

IoPoller& io_poller() { return *static_cast<IoPoller*>(t_scheduler->poller()); }

}  // namespace

IoHandle::IoHandle(int fd) : fd(fd), owner(t_scheduler) {
  count_resource(resource_counts().io_handles, 1);
}
IoHandle::~IoHandle() { count_resource(resource_counts().io_handles, -1); }

int socket_flags() {
  current_fiber("fiber: socket");
  return io_poller().socket_flags();
}

namespace {

// remote_cancels_pending() is true while cancels asked from other cores have
// not finished running here.
bool remote_cancels_pending(const IoHandle& h) {
  return h.remote_cancels.load(std::memory_order_acquire) > 0 ||
         h.remote_asks.load(std::memory_order_acquire) > 0;
}

// note_cancel() records that a cancel up to `upto` ran on the owner. Ops that
// start later have higher numbers than the count now, so the record is clamped
// to it: it never reaches an op that had not started.
void note_cancel(IoHandle& h, uint64_t upto) {
  uint64_t started = h.started.load(std::memory_order_relaxed);
  if (upto > started) upto = started;
  if (upto > h.cancelled_upto) h.cancelled_upto = upto;
}

// retry_stop() is why operation `seq` must not be tried again (-errno), or 0.
int32_t retry_stop(IoHandle& h, uint64_t seq, int64_t deadline_ns) {
  // A cancel posted from another core before now must be able to end the
  // operation: let it run, then look at what it reached.
  while (remote_cancels_pending(h)) yield();
  if (int err = h.fail_errno.load(std::memory_order_acquire)) return -err;
  if (h.cancelled_upto >= seq) return -ECANCELED;
  if (deadline_ns > 0 && now_ns() >= deadline_ns) return -ETIMEDOUT;
  return 0;
}

}  // namespace

int32_t io_execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns) {
  current_fiber("fiber: I/O");
  if (h.fd < 0) return -EBADF;
  const uint64_t seq = h.started.load(std::memory_order_relaxed) + 1;
  h.started.store(seq, std::memory_order_release);
  if (int err = h.fail_errno.load(std::memory_order_acquire)) return -err;
  t_scheduler->io_begin();
  IoPoller& poller = io_poller();
  IoRequest attempt = req;
  const OpTraits* op = &op_traits(req.kind);
  int32_t r = poller.execute(h, attempt, deadline_ns);
  // The one retry loop of both drivers. -EINTR and -EAGAIN moved no data: try
  // again, after waiting for readiness for -EAGAIN, unless the operation was
  // cancelled or its deadline passed meanwhile. -EINPROGRESS (a connect on a
  // non-blocking socket) goes on in the kernel: wait, then ask for its outcome.
  for (;;) {
    if (r == -EINPROGRESS && op->in_progress != attempt.kind) {
      attempt.kind = op->in_progress;
      op = &op_traits(attempt.kind);
      r = -EAGAIN;
    }
    const int events = r == -EAGAIN ? readiness(*op, attempt) : 0;
    if (!(r == -EINTR && op->retry_eintr) && events == 0) break;
    if (int32_t stop = retry_stop(h, seq, deadline_ns)) {
      r = stop;
      break;
    }
    if (events != 0) {
      r = poller.wait(h, events, deadline_ns);
      if (r < 0 && r != -EINTR) break;
      // A cancel may have come after the wait completed and before this fiber
      // ran: the wait kept its result, so the cancel must end the retry.
      if (int32_t stop = retry_stop(h, seq, deadline_ns)) {
        r = stop;
        break;
      }
    }
    r = poller.execute(h, attempt, deadline_ns);
  }
  t_scheduler->io_end();
  if (r == -ECANCELED) {
    if (int err = h.fail_errno.load(std::memory_order_acquire)) r = -err;
  }
  // An operation that completed at once did not switch: a time slice that ran
  // out ends here, so a fiber that only ever finds data ready cannot hold the
  // core.
  fiber::maybe_yield();
  return r;
}

int32_t io_open(const IoRequest& req) {
  current_fiber("fiber: open");
  IoHandle scratch;  // no fd yet: nothing can cancel or close it
  t_scheduler->io_begin();
  int32_t r = io_poller().execute(scratch, req, 0);
  t_scheduler->io_end();
  return r;
}

namespace {

// cancel_upto() cancels the ops of `h` numbered up to `upto`, here or, from
// another thread, on the owner's core. `upto` comes from h.started (so it only
// grows from call to call) except for io_fail()'s UINT64_MAX.
void cancel_upto(IoHandle& h, uint64_t upto) {
  auto* owner = static_cast<Scheduler*>(h.owner);
  if (t_scheduler == owner) {
    note_cancel(h, upto);
    if (!h.ops.empty()) io_poller().cancel(h, upto);
    return;
  }
  // Another core: the op list is the owner's, so the cancel runs there, in a
  // small fiber. The count keeps the handle alive until that fiber is done.
  if (upto == UINT64_MAX) {
    // io_fail(): its own fiber, so that the mark below never holds a number
    // past what had started when a cancel was asked.
    h.remote_cancels.fetch_add(1, std::memory_order_relaxed);
    go_on(owner->index(), [hp = &h] {
      note_cancel(*hp, UINT64_MAX);
      if (hp->fd >= 0 && !hp->ops.empty()) io_poller().cancel(*hp, UINT64_MAX);
      hp->remote_cancels.fetch_sub(1, std::memory_order_release);
    });
    return;
  }
  // io_cancel(): coalesced. The mark is raised before the count, so the posted
  // fiber either sees this request's number when it reads the mark, or sees the
  // count move when it gives back what it read, and reads the mark again.
  uint64_t mark = h.remote_upto.load(std::memory_order_relaxed);
  while (mark < upto && !h.remote_upto.compare_exchange_weak(mark, upto, std::memory_order_release,
                                                             std::memory_order_relaxed)) {
  }
  if (h.remote_asks.fetch_add(1, std::memory_order_acq_rel) != 0) return;  // one is posted
  go_on(owner->index(), [hp = &h] {
    for (;;) {
      int asked = hp->remote_asks.load(std::memory_order_acquire);
      uint64_t mark = hp->remote_upto.load(std::memory_order_acquire);
      note_cancel(*hp, mark);
      if (hp->fd >= 0 && !hp->ops.empty()) io_poller().cancel(*hp, mark);
      if (hp->remote_asks.fetch_sub(asked, std::memory_order_acq_rel) == asked) return;
    }
  });
}

}  // namespace

void io_cancel(IoHandle& h) {
  // Only ops started by now are cancelled: one that starts later (say, the
  // retry after this cancel was seen) must not be hit by a stale request.
  cancel_upto(h, h.started.load(std::memory_order_acquire));
}

void io_fail(IoHandle& h, int err) {
  // Ops that start from now on see fail_errno at once; those in flight are
  // cancelled by a request that, posted after the store, acts on every op in
  // flight when it runs. So no op escapes, with no fence on the I/O path.
  h.fail_errno.store(err, std::memory_order_release);
  cancel_upto(h, UINT64_MAX);
}

void io_unfail(IoHandle& h) {
  // A cancel io_fail() posted from another core must run before the failure is
  // lifted: run later, it would end ops started after this (note_cancel() clamps
  // to the ops started when it runs, not when it was asked).
  while (h.remote_cancels.load(std::memory_order_acquire) > 0) {
    if (t_current_fiber != nullptr) {
      yield();
    } else {
      std::this_thread::yield();  // off the runtime: the owner runs it meanwhile
    }
  }
  h.fail_errno.store(0, std::memory_order_release);
}

void io_close(IoHandle& h) {
  const int fd = h.fd;
  // The fd must stay open until every op on it returned, else its number
  // could be reused under a stale op: detach first.
  io_detach(h);
  if (fd >= 0) ::close(fd);
}

void io_detach(IoHandle& h) {
  auto* owner = static_cast<Scheduler*>(h.owner);
  if (owner != nullptr && t_scheduler != nullptr && t_scheduler != owner &&
      t_current_fiber != nullptr) {
    // Another core: the op list and the ring or epoll set are the owner's, so
    // the detach runs there; wait for it.
    spawn_on(owner->index(), [&h] { io_detach(h); }).join();
    return;
  }
  // The owner core. Cancels posted from elsewhere run here; let them.
  while (remote_cancels_pending(h)) yield();
  if (h.fd < 0) return;
  note_cancel(h, UINT64_MAX);
  if (!h.ops.empty()) {
    Fiber* self = current_fiber("fiber: close");
    io_poller().cancel(h, UINT64_MAX);
    while (!h.ops.empty()) {
      h.closer = self;
      park(WaitReason::kIoClose, 0, h.fd);
    }
  }
  if (t_scheduler != nullptr) io_poller().forget(h);
  h.fd = -1;
}

}  // namespace fiber::detail
