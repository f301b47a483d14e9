// I/O operations, written once and run by either driver.
//
// io_uring: the request becomes an SQE whose user_data is the IoOp on the parked
// fiber's stack; the scheduler submits once per loop turn and the CQE wakes the
// fiber. A deadline is a linked timeout (IORING_TIMEOUT_ABS).
// epoll: the request is tried as a non-blocking syscall; on EAGAIN the fiber parks
// until epoll reports the fd ready (edge-triggered, registered once per fd) and
// retries. A deadline is a scheduler timer.
//
// Invariant (in-flight operations): io_execute() returns only after the kernel is
// done with the operation, even when it was cancelled or timed out. That is what
// makes a buffer on the fiber's stack safe to hand to the kernel.
//
// Threading: an IoHandle belongs to the scheduler that created it; every call
// here is core-local and fiber-only.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "fiber/control_block.h"
#include "fiber/runtime.h"

namespace fiber::detail {

enum class IoKind : uint8_t {
  kRecv,     // recv(fd, buf, len, flags)
  kSend,     // send(fd, buf, len, flags | MSG_NOSIGNAL)
  kRead,     // read(fd, buf, len)
  kWrite,    // write(fd, buf, len)
  kAccept,   // accept4(fd, addr, addrlen, SOCK_CLOEXEC [| SOCK_NONBLOCK])
  kConnect,  // connect(fd, addr, len)
};

struct IoRequest {
  IoKind kind;
  int fd;
  void* buf = nullptr;
  size_t len = 0;
  int flags = 0;
  sockaddr* addr = nullptr;
  socklen_t* addrlen = nullptr;
};

struct IoOp;

// IoHandle is what a driver keeps per fd. Heap-allocated by its owner (a socket
// object) so that its address, which the epoll set holds, never moves.
struct IoHandle {
  int fd = -1;
  void* owner = nullptr;  // the scheduler of the core that made it
  // epoll: registered in the epoll set; ready flags remember an edge that came
  // while nobody waited. The ops parked for readiness are those of `ops` with
  // IoOp::parked set.
  bool registered = false;
  bool read_ready = false;
  bool write_ready = false;
  // Both drivers: every op in flight on this fd, for cancel and close.
  IoOp* ops = nullptr;
  Fiber* closer = nullptr;  // a close() waiting for the ops to drain
};

// IoOp is one operation in progress; it lives on the parked fiber's stack.
struct IoOp {
  Fiber* fiber = nullptr;
  int32_t result = 0;
  bool cancelled = false;  // io_cancel() asked for it
  bool timed_out = false;  // epoll: the deadline timer fired
  bool parked = false;     // epoll: waiting for readiness; cleared by whoever wakes it
  bool input = false;      // epoll: waiting to read (else to write)
  IoOp* prev = nullptr;
  IoOp* next = nullptr;
};

// socket_flags() are the flags a new socket needs under the running driver
// (SOCK_NONBLOCK for epoll).
int socket_flags();

// io_execute() runs `req` on `h`, parking the caller until it is done. Returns the
// syscall's result (>= 0) or -errno; -ETIMEDOUT once `deadline_ns` (steady clock,
// 0 = none) passes; -ECANCELED after io_cancel() or io_close().
int32_t io_execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns);

// io_cancel() makes every op in flight on `h` return -ECANCELED (or its natural
// result if it completed first). Returns at once; the ops return once the kernel
// let go of them.
void io_cancel(IoHandle& h);

// io_close() cancels the ops in flight, waits until each has returned, then
// closes the fd. Safe to call with nothing in flight; idempotent.
void io_close(IoHandle& h);

}  // namespace fiber::detail
