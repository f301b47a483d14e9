// IoPoller is a Poller that also runs I/O operations; both drivers are one.
//
// The split of work: the retry loop (io_execute(), io.cc) decides what to try
// and when to stop; a poller makes one attempt (execute()) or waits for
// readiness once (wait()); the operation table (op_table.h) says what each kind
// is on either driver; and the op lifecycle below (park_op(), complete(), the
// deadline timer, cancel()) is the same for both, each driver adding only how
// it asks the kernel to stop an op (abort()).
#pragma once

#include "driver/internal/io.h"
#include "sched/internal/poller.h"

namespace fiber::detail {

class IoPoller : public Poller {
 public:
  // execute() makes one attempt at `req` on `h`: the syscall's result (>= 0)
  // or -errno, including -EAGAIN and -EINTR, which the retry loop handles.
  // io_uring parks until the op's completion; epoll tries a non-blocking
  // syscall and never parks for readiness (file kinds park on the pool).
  virtual int32_t execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns) = 0;
  // wait() parks until `h` is ready for `events` (POLLIN or POLLOUT): >= 0, or
  // -ETIMEDOUT, -ECANCELED, -EINTR.
  virtual int32_t wait(IoHandle& h, int events, int64_t deadline_ns) = 0;
  // cancel() asks the kernel to stop the ops of `h` in flight numbered up to
  // `upto` (IoOp::seq). Ops already completed keep their results.
  virtual void cancel(IoHandle& h, uint64_t upto);
  // forget() is called just before the fd of `h` is closed.
  virtual void forget(IoHandle& h) { (void)h; }
  virtual int socket_flags() const = 0;

  // Seams for the fault-injecting poller (driver/testing/fault_poller.h); each does only
  // what the kernel could do, and nothing else calls them.
  //
  // wake_spuriously() wakes the ops of `h` waiting for readiness as if the fd
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

 protected:
  // park_op() parks the calling fiber on `op`, which the driver has just handed
  // to the kernel (or set up to wait for readiness), until complete() is called
  // for it; `deadline_ns` (0 = none) arms the deadline timer meanwhile. `op`
  // is linked on `h` while it is in flight, so cancel() and close() find it.
  void park_op(IoHandle& h, IoOp& op, int64_t deadline_ns);
  // complete() records the kernel's answer for `op` and queues its fiber. Once
  // per op, from the driver's completion path.
  void complete(IoOp& op, int32_t result);
  // abort() asks the kernel to stop `op`, in flight: io_uring posts an async
  // cancel (the op's own completion follows); epoll completes it at once.
  virtual void abort(IoOp& op) = 0;
  // in_flight() counts the ops between park_op() and complete().
  size_t in_flight() const { return in_flight_; }

 private:
  void stop(IoOp& op, OpState why);

  size_t in_flight_ = 0;
};

// Links and unlinks `op` in the list of ops in flight on `h`; unlink wakes a
// close() waiting for the list to drain.
void link_op(IoHandle& h, IoOp* op);
void unlink_op(IoHandle& h, IoOp* op);

}  // namespace fiber::detail
