// IoPoller is a Poller that also runs I/O operations; both drivers are one.
#pragma once

#include "driver/internal/io.h"
#include "sched/internal/poller.h"

namespace fiber::detail {

class IoPoller : public Poller {
 public:
  // execute(), cancel(): see io_execute() and io_cancel() in driver/internal/io.h.
  virtual int32_t execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns) = 0;
  // cancel() acts on the ops of `h` numbered up to `upto` (IoOp::seq).
  virtual void cancel(IoHandle& h, uint64_t upto) = 0;
  // forget() is called just before the fd of `h` is closed.
  virtual void forget(IoHandle& h) { (void)h; }
  virtual int socket_flags() const = 0;

  // Seams for the fault-injecting poller (driver/testing/fault_poller.h); each does only
  // what the kernel could do, and nothing else calls them.
  //
  // wake_spuriously() wakes the ops of `h` parked for readiness as if the fd
  // had reported ready, when it may not be: they must look again. Returns false
  // where the driver has no such wait (io_uring wakes an op only on its
  // completion). Core-local.
  virtual bool wake_spuriously(IoHandle& h) {
    (void)h;
    return false;
  }
  // poll_refused() is poll(0) on a turn where the kernel refuses new
  // submissions, as io_uring_enter does with -EBUSY or -EAGAIN: completions
  // already posted are handled, queued entries wait for a later turn. Returns
  // false where the driver has no submission queue (epoll). Core-local.
  virtual bool poll_refused() { return false; }
};

// Links and unlinks `op` in the list of ops in flight on `h`; unlink wakes a
// close() waiting for the list to drain.
void link_op(IoHandle& h, IoOp* op);
void unlink_op(IoHandle& h, IoOp* op);

}  // namespace fiber::detail
