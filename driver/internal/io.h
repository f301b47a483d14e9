// I/O operations, written once and run by either driver.
//
// io_uring: the request becomes an SQE whose user_data is the IoOp on the parked
// fiber's stack; the scheduler submits once per loop turn and the CQE wakes the
// fiber.
// epoll: the request is tried as a non-blocking syscall; on EAGAIN the fiber parks
// until epoll reports the fd ready (edge-triggered, registered once per fd) and
// retries.
// Both: a deadline is a scheduler timer; when it fires, the op is cancelled
// (io_uring: an async cancel; epoll: the parked fiber is woken).
//
// Invariant (in-flight operations): io_execute() returns only after the kernel is
// done with the operation, even when it was cancelled or timed out. That is what
// makes a buffer on the fiber's stack safe to hand to the kernel.
//
// Threading: an IoHandle belongs to the scheduler that created it; every call
// here is core-local and fiber-only.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "fiber/detail/park.h"
#include "fiber/internal/control_block.h"
#include "fiber/options.h"

namespace fiber::detail {

// The kinds of operation. What each one does on either driver is its row in
// the operation table (driver/op_table.cc).
enum class IoKind : uint8_t {
  // Sockets and pipes: waited for with readiness under epoll.
  kRecv,           // recv(fd, buf, len, flags)
  kSend,           // send(fd, buf, len, flags | MSG_NOSIGNAL)
  kRead,           // read(fd, buf, len)
  kWrite,          // write(fd, buf, len)
  kRecvMsg,        // recvmsg(fd, msg, flags): UDP datagrams, scatter reads
  kSendMsg,        // sendmsg(fd, msg, flags | MSG_NOSIGNAL): UDP datagrams, gather writes
  kAccept,         // accept4(fd, addr, addrlen, SOCK_CLOEXEC [| SOCK_NONBLOCK])
  kConnect,        // connect(fd, addr, len)
  kConnectResult,  // the outcome (SO_ERROR) of a connect in progress; io_execute() only
  kPoll,           // poll(fd, flags = POLLIN or POLLOUT): the revents
  // Regular files: epoll cannot wait on them, so under epoll these run on the
  // spawn_blocking() pool (and cannot be cancelled once started).
  kReadAt,   // pread(fd, buf, len, offset)
  kWriteAt,  // pwrite(fd, buf, len, offset)
  kFsync,    // fsync(fd)
  kOpenAt,   // openat(AT_FDCWD, path, flags, mode): the new fd; ignores the handle's fd
};
inline constexpr size_t kIoKinds = static_cast<size_t>(IoKind::kOpenAt) + 1;

struct IoRequest {
  IoKind kind;
  int fd;
  void* buf = nullptr;
  size_t len = 0;
  int flags = 0;
  sockaddr* addr = nullptr;
  socklen_t* addrlen = nullptr;
  msghdr* msg = nullptr;       // kRecvMsg, kSendMsg
  uint64_t offset = 0;         // kReadAt, kWriteAt
  const char* path = nullptr;  // kOpenAt
  unsigned mode = 0;           // kOpenAt
};

// OpState is where an operation is in its life. One line per state: what it
// means [who moves the op into it].
enum class OpState : uint8_t {
  // Started: its SQE is queued or with the kernel (io_uring), or its fiber
  // waits for readiness (epoll). [the fiber that starts it]
  kInFlight,
  // A cancel (io_cancel, io_fail, io_close) asked the kernel to stop it; its
  // completion is still to come. [IoPoller::cancel()]
  kCancelling,
  // Its deadline passed and asked the same. [the op's deadline timer]
  kExpiring,
  // Done, no stop asked: the result is the kernel's. [the driver's completion]
  kCompleted,
  // A stop was asked, but the kernel completed it first: the result is the
  // kernel's (data may have moved, so it is kept). [the driver's completion]
  kCompletedAnyway,
  // Stopped by a cancel: returns -ECANCELED. [the driver's completion]
  kCancelled,
  // Stopped by its deadline: returns -ETIMEDOUT. [the driver's completion]
  kExpired,
  // Linked on its handle only so that close() waits for it, and out of reach
  // of a cancel: a file op running on the blocking pool, or a completion that
  // the fault-injecting poller holds back. [whoever links it]
  kUnstoppable,
};

// IoOp is one operation in progress; it lives on the parked fiber's stack.
struct IoOp {
  Fiber* fiber = nullptr;
  int32_t result = 0;
  uint32_t cqe_flags = 0;  // io_uring: the CQE's flags
  OpState state = OpState::kInFlight;
  bool input = false;  // epoll: waiting to read (else to write)
  uint64_t seq = 0;    // the operation's number (IoHandle::started when it began)
  // Links in IoHandle::ops.
  IoOp* prev = nullptr;
  IoOp* next = nullptr;
  bool linked = false;
};

// op_result() is what a finished op returns: the kernel's result, or
// -ECANCELED / -ETIMEDOUT when a cancel or the deadline stopped it.
inline int32_t op_result(const IoOp& op) {
  switch (op.state) {
    case OpState::kCancelled:
      return -ECANCELED;
    case OpState::kExpired:
      return -ETIMEDOUT;
    default:
      return op.result;
  }
}

// IoHandle is what a driver keeps per fd. Heap-allocated by its owner (a socket
// object) so that its address, which the epoll set holds, never moves.
struct IoHandle {
  // IoHandle() takes `fd` for the calling core (the owner: the scheduler of
  // the calling thread, or none off the runtime). Counted in
  // resource_counts().io_handles, for leak checks.
  explicit IoHandle(int fd = -1);
  ~IoHandle();
  IoHandle(const IoHandle&) = delete;
  IoHandle& operator=(const IoHandle&) = delete;

  int fd = -1;
  void* owner = nullptr;  // the scheduler of the core that made it
  // epoll: registered in the epoll set; ready flags remember an edge that came
  // while nobody waited. The ops waiting for readiness are those of `ops` in
  // OpState::kInFlight.
  bool registered = false;
  bool read_ready = false;
  bool write_ready = false;
  // io_uring: the last recv left the socket empty (no IORING_CQE_F_SOCK_NONEMPTY).
  bool input_drained = false;
  // Both drivers: every op in flight on this fd, for cancel and close.
  IntrusiveList<IoOp> ops;
  Fiber* closer = nullptr;  // a close() waiting for the ops to drain
  // Cancels asked from other cores and not yet run on the owner: close() waits
  // for them, so none runs on a freed handle. io_fail()'s are counted in
  // remote_cancels, a fiber each. io_cancel()'s are coalesced: remote_asks
  // counts them, at most one fiber per handle is posted at a time, and it acts
  // up to the highest number asked (remote_upto), so a caller cancelling in a
  // loop cannot flood the owner's inbox with fibers.
  std::atomic<int> remote_cancels{0};
  std::atomic<int> remote_asks{0};
  std::atomic<uint64_t> remote_upto{0};
  // How many operations have started on this handle; written by the owner only.
  // An op's number lets a cancel posted from another core act on exactly the
  // ops that had started when cancel() was called.
  std::atomic<uint64_t> started{0};
  // Non-zero after io_fail(): every op fails with -fail_errno (see io_fail()).
  std::atomic<int> fail_errno{0};
  // The highest op number a cancel has acted on, written when the cancel runs
  // on the owner. io_execute() reads it before retrying after -EINTR or
  // -EAGAIN, so a cancel that reached the first attempt also ends the retry.
  // Owner only.
  uint64_t cancelled_upto = 0;
};

// socket_flags() are the flags a new socket needs under the running driver
// (SOCK_NONBLOCK for epoll).
int socket_flags();

// io_execute() runs `req` on `h`, parking the caller until it is done. Returns the
// syscall's result (>= 0) or -errno; -ETIMEDOUT once `deadline_ns` (steady clock,
// 0 = none) passes; -ECANCELED after io_cancel() or io_close(). Never -EINTR
// (retried; but see kConnect below) nor, for the kinds that can wait for
// readiness, -EAGAIN (it waits for readiness and retries): both are what the
// kernel gives for a signal or a non-blocking fd, and neither moved any data.
// A kConnect interrupted by a signal goes on in the kernel, so its -EINTR is
// returned as is.
int32_t io_execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns);

// io_open() runs a kOpenAt request (no fd yet): the new fd or -errno.
int32_t io_open(const IoRequest& req);

// io_cancel() makes every op in flight on `h` return -ECANCELED (or its natural
// result if it completed first). Returns at once; the ops return once the kernel
// let go of them. Callable from any thread of the runtime: from another core it
// is posted to the owner's core (ops started before it runs there are cancelled).
void io_cancel(IoHandle& h);

// io_fail() makes the ops in flight on `h` and every later one return -err
// (ECANCELED or ETIMEDOUT), until io_unfail(). Callable from any thread of the
// runtime, as io_cancel(). It is how a cancelled context reaches a socket.
void io_fail(IoHandle& h, int err);
// io_unfail() lifts io_fail(). It first waits (yielding) until the cancels
// io_fail() posted from other cores have run, so none reaches a later op.
void io_unfail(IoHandle& h);

// io_close() cancels the ops in flight, waits until each has returned, then
// closes the fd. Safe to call with nothing in flight; idempotent. Also waits for
// cancels posted from other cores (see io_cancel()). From a fiber of another
// core it runs on the owner's core and parks the caller until it is done.
void io_close(IoHandle& h);

// io_detach() is io_close() without closing the fd: the ops in flight are
// cancelled and waited for, the driver forgets the fd, and `h` no longer
// refers to it (h.fd = -1). For a handle over an fd that someone else owns
// (the libc hooks' handles).
void io_detach(IoHandle& h);

}  // namespace fiber::detail
