// IoPoller is a Poller that also runs I/O operations; both drivers are one.
#pragma once

#include "driver/io.h"
#include "sched/poller.h"

namespace fiber::detail {

class IoPoller : public Poller {
 public:
  // execute(), cancel(): see io_execute() and io_cancel() in driver/io.h.
  virtual int32_t execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns) = 0;
  // cancel() acts on the ops of `h` numbered up to `upto` (IoOp::seq).
  virtual void cancel(IoHandle& h, uint64_t upto) = 0;
  // forget() is called just before the fd of `h` is closed.
  virtual void forget(IoHandle& h) { (void)h; }
  virtual int socket_flags() const = 0;
};

// Links and unlinks `op` in the list of ops in flight on `h`; unlink wakes a
// close() waiting for the list to drain.
void link_op(IoHandle& h, IoOp* op);
void unlink_op(IoHandle& h, IoOp* op);

}  // namespace fiber::detail
