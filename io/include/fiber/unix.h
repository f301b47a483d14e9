// Unix-domain stream sockets for fibers: UnixListener accepts connections,
// UnixStream is one connection (its reads and writes are Stream's,
// fiber/stream.h). A path that starts with '@' names an abstract socket
// (Linux: no file). A path longer than sockaddr_un allows is
// std::errc::filename_too_long. The listener does not remove its socket file;
// bind() to an existing file fails with address_in_use.
//
// Threading: a socket belongs to the core that created or accepted it (see
// fiber/socket.h). The calls that wait are fiber-only: they park the caller.
//
// Example:
//   auto ln = fiber::UnixListener::bind("@my-service");
//   if (!ln) return ln.error();
//   auto conn = ln->accept();                    // Result<UnixStream>
//   auto [a, b] = *fiber::UnixStream::pair();    // two connected ends
#pragma once

#include <chrono>
#include <string_view>
#include <utility>

#include "fiber/result.h"
#include "fiber/socket.h"
#include "fiber/stream.h"

namespace fiber {

class UnixStream : public Stream {
 public:
  UnixStream() = default;
  explicit UnixStream(int fd) : Stream(fd) {}

  // connect() connects to the listener at `path`; fails with timed_out after
  // `timeout` (zero: no timeout), connection_refused, no_such_file_or_directory,
  // ... Fiber-only: parks the caller.
  static Result<UnixStream> connect(std::string_view path,
                                    std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0});
  // pair() is two connected streams (socketpair).
  static Result<std::pair<UnixStream, UnixStream>> pair();
};

class UnixListener : public Socket {
 public:
  UnixListener() = default;
  // bind() creates a listening socket at `path`; fails with address_in_use, ...
  // Fiber-only (the socket belongs to the caller's core).
  static Result<UnixListener> bind(std::string_view path, const ListenOptions& options = {});
  // accept() waits for a connection. Fiber-only: parks the caller.
  Result<UnixStream> accept();
};

}  // namespace fiber
