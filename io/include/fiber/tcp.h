// TCP for fibers: TcpListener accepts connections, TcpStream is one connection
// (its reads and writes are Stream's, fiber/stream.h). Calls look blocking:
// they park the calling fiber, never the thread.
//
// Threading: a socket belongs to the core that created or accepted it (see
// fiber/socket.h). With ListenOptions::reuse_port every core can accept on its
// own listener of one port.
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

#include <chrono>
#include <span>
#include <string_view>

#include "fiber/address.h"
#include "fiber/result.h"
#include "fiber/socket.h"
#include "fiber/stream.h"

namespace fiber {

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

class TcpListener : public Socket {
 public:
  TcpListener() = default;

  // bind() creates a listening socket; fails with address_in_use, ...
  // Fiber-only (the socket belongs to the caller's core).
  static Result<TcpListener> bind(const Address& at, const ListenOptions& options = {});

  // accept() waits for a connection; std::errc::too_many_files_open when the fd
  // table is full (back off and retry). Fiber-only: parks the caller.
  Result<TcpStream> accept(Address* peer = nullptr);

  // steer_group() chooses which sockets of this listener's SO_REUSEPORT group
  // get the group's new connections: those at the positions `targets` (a
  // socket's position is the order in which it joined the group), picked at
  // random for each connection. Empty: the kernel's own choice, a hash of the
  // addresses. Used to route connections away from a stuck core
  // (fiber/health.h). A classic BPF program attached with
  // SO_ATTACH_REUSEPORT_CBPF; at most 2000 targets. Any thread, while no other
  // thread closes the listener.
  Result<void> steer_group(std::span<const unsigned> targets) const {
    return steer_group(fd(), targets);
  }
  // The same on the listening socket `listener_fd`.
  static Result<void> steer_group(int listener_fd, std::span<const unsigned> targets);
};

}  // namespace fiber
