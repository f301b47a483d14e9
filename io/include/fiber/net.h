// TCP for fibers: TcpListener and TcpStream. Calls look blocking: they park the
// calling fiber, never the thread, until the kernel answers (io_uring) or the
// socket is ready (epoll). Errors are values (Result), never exceptions.
//
// Threading: a socket belongs to the core (scheduler) that created or accepted
// it; use it, cancel it and close it on that core. With ListenOptions::reuse_port
// every core can accept on its own listener of one port.
//
// Deadlines work as Go's net.Conn: an absolute time after which operations fail
// with std::errc::timed_out, set before the operation starts.
//
// Example:
//   auto ln = fiber::TcpListener::bind(*fiber::Address::parse("127.0.0.1:9000"));
//   if (!ln) return ln.error();
//   for (;;) {
//     auto conn = ln->accept();
//     if (!conn) continue;
//     fiber::go([c = std::move(*conn)]() mutable {
//       char buf[4096];
//       for (;;) {
//         auto n = c.read(buf);
//         if (!n || *n == 0) return;
//         if (!c.write_all({buf, *n})) return;
//       }
//     });
//   }
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fiber/result.h"

namespace fiber {
namespace detail {
struct IoHandle;
}

// Address is an IPv4 or IPv6 socket address.
class Address {
 public:
  Address() = default;
  // parse() reads "1.2.3.4:80" or "[::1]:80" (numeric hosts only; resolving
  // names arrives with the resolver). Fails with std::errc::invalid_argument.
  static Result<Address> parse(std::string_view host_port);

  uint16_t port() const;
  std::string to_string() const;
  const sockaddr* data() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const { return size_; }
  socklen_t* size_ptr() { return &size_; }
  int family() const { return storage_.ss_family; }

 private:
  sockaddr_storage storage_ = {};
  socklen_t size_ = sizeof(sockaddr_storage);
};

using Deadline = std::chrono::steady_clock::time_point;  // Deadline{} means none

// Socket is what TcpStream and TcpListener share: an owned fd and its deadlines.
class Socket {
 public:
  Socket();
  explicit Socket(int fd);
  Socket(Socket&&) noexcept;
  Socket& operator=(Socket&&) noexcept;
  ~Socket();

  // close() cancels operations in flight, waits for the kernel to let go of
  // them, then closes the fd. Idempotent.
  void close();
  // cancel() makes the operations parked on this socket return
  // std::errc::operation_canceled. Core-local.
  void cancel();

  void set_deadline(Deadline d) { read_deadline_ = write_deadline_ = d; }
  void set_read_deadline(Deadline d) { read_deadline_ = d; }
  void set_write_deadline(Deadline d) { write_deadline_ = d; }

  bool is_open() const;
  int fd() const;
  Result<Address> local_address() const;

 protected:
  std::unique_ptr<detail::IoHandle> h_;
  Deadline read_deadline_{};
  Deadline write_deadline_{};
};

class TcpStream : public Socket {
 public:
  TcpStream() = default;
  explicit TcpStream(int fd) : Socket(fd) {}

  // connect() opens a connection; fails with timed_out after `timeout` (zero:
  // no timeout), connection_refused, ... Fiber-only: parks the caller.
  static Result<TcpStream> connect(const Address& to,
                                   std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0});

  // read() reads at most buf.size() bytes; 0 means end of stream. An empty
  // buffer is std::errc::invalid_argument. Fiber-only: parks the caller.
  Result<size_t> read(std::span<char> buf);
  // read_exact() fills `buf`; end of stream first is std::errc::connection_aborted.
  Result<void> read_exact(std::span<char> buf);
  // write() writes some of `buf` (at least one byte unless it is empty).
  Result<size_t> write(std::span<const char> buf);
  // write_all() writes all of `buf`, across short writes.
  Result<void> write_all(std::span<const char> buf);
  // shutdown() shuts down reading (SHUT_RD), writing (SHUT_WR) or both.
  Result<void> shutdown(int how = SHUT_WR);
  Result<void> set_nodelay(bool on);
  Result<Address> peer_address() const;
};

struct ListenOptions {
  int backlog = 1024;
  // reuse_port sets SO_REUSEPORT, so that each core can have its own listener on
  // one port. Off by default: with it, a port another process of the same user
  // listens on is shared instead of being reported as address_in_use.
  bool reuse_port = false;
};

class TcpListener : public Socket {
 public:
  TcpListener() = default;

  // bind() creates a listening socket; fails with address_in_use, ...
  // Fiber-only (the socket belongs to the caller's core).
  static Result<TcpListener> bind(const Address& at, const ListenOptions& options = {});

  // accept() waits for a connection; std::errc::too_many_files_open when the fd
  // table is full (back off and retry). Fiber-only: parks the caller.
  Result<TcpStream> accept(Address* peer = nullptr);
};

}  // namespace fiber
