// The operation table: everything a driver needs to know about one kind of I/O
// operation, in one row per kind (driver/op_table.cc). The pollers, the retry
// loop (io.cc) and the fault-injecting poller read these rows; none of them
// switches on IoKind. Adding a kind is adding a row.
#pragma once

#include <liburing.h>
#include <poll.h>

#include <cstdint>

#include "driver/internal/io.h"

namespace fiber::detail {

// Transfer is the user memory an operation hands the kernel.
enum class Transfer : uint8_t {
  kNone,     // none (connect, poll, fsync, openat)
  kBuffer,   // req.buf, req.len
  kMessage,  // req.msg's iovecs, name and control
  kAddress,  // req.addr, req.addrlen (accept: the peer's address)
};

struct OpTraits {
  IoKind kind;
  const char* name;
  // What the operation waits for when the kernel says -EAGAIN: POLLIN or
  // POLLOUT, then it is tried again; kWaitsFromFlags (poll) takes req.flags;
  // 0: -EAGAIN is the answer.
  short waits;
  // A regular-file operation: epoll cannot wait for it, so the epoll driver
  // runs it on the spawn_blocking() pool, where no cancel reaches it.
  bool file;
  // -EINTR moved nothing and is tried again (all but connect, which goes on in
  // the kernel after a signal).
  bool retry_eintr;
  // A stream transfer on a socket (recv, send, recvmsg, sendmsg): a reset by
  // the peer can end it.
  bool socket_stream;
  Transfer transfer;
  bool kernel_writes;  // the kernel writes into `transfer` (reads), else reads it
  // On -EINPROGRESS (connect on a non-blocking socket) the operation goes on in
  // the kernel: wait for `waits`, then run this kind to learn the outcome.
  // Rows without -EINPROGRESS name their own kind.
  IoKind in_progress;
  // io_uring: fills the SQE. nullptr: the kind is a plain non-blocking syscall
  // even there (try_now below).
  void (*prepare)(io_uring_sqe* sqe, const IoRequest& req);
  // epoll (and io_uring without prepare): the request as a non-blocking syscall
  // (a blocking one for file kinds, on the pool): the result, >= 0, or -errno.
  int32_t (*try_now)(const IoRequest& req);
};

inline constexpr short kWaitsFromFlags = -1;

// op_traits() is the row of `kind`.
const OpTraits& op_traits(IoKind kind);

// readiness() is what `req` waits for after -EAGAIN (POLLIN, POLLOUT), or 0.
inline int readiness(const OpTraits& t, const IoRequest& req) {
  return t.waits == kWaitsFromFlags ? req.flags : t.waits;
}

}  // namespace fiber::detail
