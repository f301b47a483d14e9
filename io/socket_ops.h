// The steps the socket types of io/ (socket.cc, stream.cc, tcp.cc, unix.cc,
// udp.cc) build their calls from: each makes one request of
// driver/internal/io.h and turns its result into a Result. Private to io/.
//
// Threading: as the sockets (core-local); the ones taking an IoHandle park the
// calling fiber.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include "driver/internal/io.h"
#include "fiber/result.h"
#include "fiber/socket.h"

namespace fiber::detail {

// kMaxIo caps one transfer: the kernel moves at most ~2 GiB per call, and the
// result must fit the int32 of a completion.
inline constexpr size_t kMaxIo = size_t{1} << 30;

// errno_error() is the calling thread's errno, after a failed system call.
inline std::error_code errno_error() { return std::error_code(errno, std::generic_category()); }

// deadline_ns() is `d` on the driver's clock (steady, in ns); 0 means none.
inline int64_t deadline_ns(Deadline d) {
  if (d == Deadline{}) return 0;
  int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
  return ns > 0 ? ns : 1;  // already past: fails at once
}

// deadline_after() is the deadline `timeout` from now; none for a timeout <= 0.
inline Deadline deadline_after(std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return Deadline{};
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
}

// run_op() performs one request on `h`; a result as the kernel gives it.
inline int32_t run_op(IoHandle& h, const IoRequest& req, Deadline deadline) {
  return io_execute(h, req, deadline_ns(deadline));
}

// new_socket() makes a socket with the flags the running driver needs.
inline Result<int> new_socket(int family, int type = SOCK_STREAM) {
  int fd = ::socket(family, type | SOCK_CLOEXEC | socket_flags(), 0);
  if (fd < 0) return errno_error();
  return fd;
}

// connect_fd() connects the fresh socket of `h` to `addr`.
inline Result<void> connect_fd(IoHandle& h, const sockaddr* addr, socklen_t len,
                               Deadline deadline) {
  IoRequest req{IoKind::kConnect, h.fd};
  req.addr = const_cast<sockaddr*>(addr);
  req.len = len;
  int32_t r = run_op(h, req, deadline);
  if (r < 0) return errno_code(r);
  return {};
}

// listen_fd() binds and listens.
inline Result<void> listen_fd(int fd, const sockaddr* addr, socklen_t len, int backlog) {
  if (::bind(fd, addr, len) != 0) return errno_error();
  if (::listen(fd, backlog) != 0) return errno_error();
  return {};
}

// accept_fd() accepts one connection on the listener `h`: the new fd.
inline Result<int> accept_fd(IoHandle& h, sockaddr* addr, socklen_t* addrlen, Deadline deadline) {
  IoRequest req{IoKind::kAccept, h.fd};
  req.addr = addr;
  req.addrlen = addrlen;
  int32_t r = run_op(h, req, deadline);
  if (r < 0) return errno_code(r);
  return r;
}

// msg_io() runs a kRecvMsg or kSendMsg request: the bytes moved.
inline Result<size_t> msg_io(IoHandle& h, IoKind kind, msghdr* msg, Deadline deadline) {
  IoRequest req{kind, h.fd};
  req.msg = msg;
  int32_t r = run_op(h, req, deadline);
  if (r < 0) return errno_code(r);
  return static_cast<size_t>(r);
}

}  // namespace fiber::detail
