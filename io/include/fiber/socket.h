// Socket is what every socket type (fiber/tcp.h, fiber/unix.h, fiber/udp.h)
// shares: an owned fd, its deadlines, cancel() and close(), and the binding of
// a Context to the socket. Calls look blocking: they park the calling fiber,
// never the thread, until the kernel answers (io_uring) or the socket is ready
// (epoll). Errors are values (Result), never exceptions.
//
// Threading: a socket belongs to the core (scheduler) that created or accepted
// it; use it on that core (cancel() and close() work from any core).
//
// Deadlines work as Go's net.Conn: an absolute time after which operations fail
// with std::errc::timed_out, set before the operation starts.
//
// Example:
//   conn.set_read_deadline(std::chrono::steady_clock::now() + 5s);
//   auto n = conn.read(buf);                       // timed_out after 5 s
//   fiber::go_on(1, [&conn] { conn.cancel(); });   // or: from another core
#pragma once

#include <chrono>
#include <memory>

#include "fiber/address.h"
#include "fiber/detail/handle_owner.h"
#include "fiber/result.h"

namespace fiber {

class Context;  // fiber/cancellation.h
class CancelHook;
class Socket;

// Deadline is an absolute time on the steady clock; Deadline{} means none.
using Deadline = std::chrono::steady_clock::time_point;

// ContextBinding ties a socket to a Context (see Socket::bind_context()); the
// tie lasts as long as the binding. Movable; destroy it on any thread.
class [[nodiscard]] ContextBinding {
 public:
  ContextBinding(ContextBinding&&) noexcept;
  ContextBinding& operator=(ContextBinding&&) = delete;
  ~ContextBinding();

 private:
  friend class Socket;
  ContextBinding(detail::IoHandle* h, std::unique_ptr<CancelHook> hook);
  detail::IoHandle* h_;
  std::unique_ptr<CancelHook> hook_;
};

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : h_(fd) {}
  Socket(Socket&&) noexcept = default;
  // operator=() closes this socket (as close() does), then takes `other`'s fd
  // and deadlines.
  Socket& operator=(Socket&&) noexcept = default;
  ~Socket() = default;  // closes, as close() does

  // close() cancels operations in flight, waits for the kernel to let go of
  // them, then closes the fd. Idempotent. Callable from any fiber: from
  // another core it runs on the socket's core and parks the caller until done
  // (so the fd number is never free while an operation on it is in flight).
  void close() { h_.close(); }
  // cancel() makes the operations in progress on this socket return
  // std::errc::operation_canceled (or their own result, if they finished
  // first); operations started after the call are not affected, and the socket
  // stays usable. Callable from any fiber or thread of the runtime; from
  // another core it takes effect when the owner core runs it. The socket must
  // outlive the call.
  void cancel() { h_.cancel(); }

  // Deadlines apply to operations that start after they are set.
  void set_deadline(Deadline d) { read_deadline_ = write_deadline_ = d; }
  void set_read_deadline(Deadline d) { read_deadline_ = d; }
  void set_write_deadline(Deadline d) { write_deadline_ = d; }

  // bind_context() makes the end of `ctx` fail this socket's operations, those
  // in progress and those that start later, with ctx.err() (operation_canceled
  // or timed_out), until the binding is destroyed: Go's "...Context" calls for
  // a whole socket. The socket must outlive the binding.
  //   auto [ctx, cancel] = fiber::with_timeout(parent, 2s);
  //   auto bound = conn.bind_context(ctx);
  //   auto n = conn.read(buf);  // fails with timed_out after 2 s
  ContextBinding bind_context(const Context& ctx);

  // wait_readable() / wait_writable() park until the socket is ready (or its
  // read / write deadline passes), without moving any data: for code that does
  // its own non-blocking I/O on fd().
  Result<void> wait_readable();
  Result<void> wait_writable();

  bool is_open() const { return h_.is_open(); }
  int fd() const { return h_.fd(); }
  Result<Address> local_address() const;

 protected:
  detail::HandleOwner h_;
  Deadline read_deadline_{};
  Deadline write_deadline_{};
};

// ListenOptions are the options of TcpListener::bind() and UnixListener::bind().
struct ListenOptions {
  int backlog = 1024;
  // reuse_port sets SO_REUSEPORT, so that each core can have its own listener on
  // one port. The first such listener of this process on a port checks that no
  // other socket listens there (another process would silently share the port)
  // and fails with address_in_use if one does; the next ones of this process
  // join it.
  bool reuse_port = false;
};

}  // namespace fiber
