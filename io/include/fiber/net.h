// Sockets for fibers: TCP (TcpListener, TcpStream), Unix-domain streams
// (UnixListener, UnixStream), UDP (UdpSocket) and name resolution. Calls look
// blocking: they park the calling fiber, never the thread, until the kernel
// answers (io_uring) or the socket is ready (epoll). Errors are values (Result),
// never exceptions.
//
// Threading: a socket belongs to the core (scheduler) that created or accepted
// it; use it on that core (cancel() and close() work from any core). With
// ListenOptions::reuse_port every core can accept on its own listener of one port.
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
#include <system_error>
#include <utility>
#include <vector>

#include "fiber/detail/handle_owner.h"
#include "fiber/result.h"

namespace fiber {
class Context;  // fiber/cancellation.h
class CancelHook;
class Socket;

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

// Address is an IPv4 or IPv6 socket address.
class Address {
 public:
  Address() = default;
  // parse() reads "1.2.3.4:80" or "[::1]:80" (numeric hosts only; see
  // resolve() for names). Fails with std::errc::invalid_argument.
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

// Socket is what every socket type shares: an owned fd and its deadlines.
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

// Stream is a connected byte stream: what TcpStream and UnixStream share.
// Fiber-only: the calls park the caller.
class Stream : public Socket {
 public:
  Stream() = default;
  explicit Stream(int fd) : Socket(fd) {}

  // read() reads at most buf.size() bytes (at most 1 GiB per call); 0 means end
  // of stream. An empty buffer is std::errc::invalid_argument.
  Result<size_t> read(std::span<char> buf);
  // read_exact() fills `buf`; end of stream first is std::errc::connection_aborted.
  Result<void> read_exact(std::span<char> buf);
  // write() writes some of `buf` (at least one byte unless it is empty). A
  // write to a connection the peer closed is an error (EPIPE), never SIGPIPE.
  Result<size_t> write(std::span<const char> buf);
  // write_all() writes all of `buf`, across short writes.
  Result<void> write_all(std::span<const char> buf);
  // readv() / writev() scatter and gather: one system call or submission for
  // up to kMaxIov buffers; the total moved, which may be short.
  static constexpr size_t kMaxIov = 64;
  Result<size_t> readv(std::span<const std::span<char>> bufs);
  Result<size_t> writev(std::span<const std::span<const char>> bufs);
  // shutdown() shuts down reading (SHUT_RD), writing (SHUT_WR) or both.
  Result<void> shutdown(int how = SHUT_WR);
};

class TcpStream : public Stream {
 public:
  TcpStream() = default;
  explicit TcpStream(int fd) : Stream(fd) {}

  // connect() opens a connection; fails with timed_out after `timeout` (zero:
  // no timeout), connection_refused, ... Fiber-only: parks the caller.
  static Result<TcpStream> connect(const Address& to,
                                   std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0});
  // dial() resolves "host:port" (see resolve()) and connects to the addresses
  // in turn until one answers, like Go's net.Dial; `timeout` bounds each attempt.
  static Result<TcpStream> dial(std::string_view host_port,
                                std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0});

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

// Unix-domain stream sockets. A path that starts with '@' names an abstract
// socket (Linux: no file). A path longer than sockaddr_un allows is
// std::errc::filename_too_long. The listener does not remove its socket file;
// bind() to an existing file fails with address_in_use.
class UnixStream : public Stream {
 public:
  UnixStream() = default;
  explicit UnixStream(int fd) : Stream(fd) {}

  static Result<UnixStream> connect(std::string_view path,
                                    std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0});
  // pair() is two connected streams (socketpair).
  static Result<std::pair<UnixStream, UnixStream>> pair();
};

class UnixListener : public Socket {
 public:
  UnixListener() = default;
  static Result<UnixListener> bind(std::string_view path, const ListenOptions& options = {});
  Result<UnixStream> accept();
};

// UdpSocket sends and receives datagrams. Fiber-only: the calls park the caller.
class UdpSocket : public Socket {
 public:
  UdpSocket() = default;
  explicit UdpSocket(int fd) : Socket(fd) {}

  // bind() makes a socket bound to `at` (port 0: any free port).
  static Result<UdpSocket> bind(const Address& at);
  // connect() fixes the peer, for send() and recv(); datagrams from others are
  // dropped by the kernel.
  Result<void> connect(const Address& peer);

  // send_to() sends one datagram; too big for the socket is
  // std::errc::message_size. An empty datagram is allowed.
  Result<size_t> send_to(std::span<const char> buf, const Address& to);
  // recv_from() receives one datagram into `buf`; one longer than `buf` is cut
  // to fit and the rest dropped, as recvfrom(2) does. `from` (optional) gets
  // the sender. An empty buffer is std::errc::invalid_argument.
  Result<size_t> recv_from(std::span<char> buf, Address* from = nullptr);
  Result<size_t> send(std::span<const char> buf);
  Result<size_t> recv(std::span<char> buf);
};

// resolve() turns "host:port" into addresses, with getaddrinfo(3) on the
// spawn_blocking() pool (numeric hosts skip it). The port may be a number or a
// service name. An unknown host is std::errc::host_unreachable... no: a
// resolver error, see resolver_category(). Fiber-only: parks the caller.
Result<std::vector<Address>> resolve(std::string_view host_port);

// resolver_category() is the category of getaddrinfo's errors (EAI_* codes).
const std::error_category& resolver_category();

}  // namespace fiber
