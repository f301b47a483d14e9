// UdpSocket sends and receives datagrams. Each call parks the calling fiber,
// never the thread, until the kernel answers; deadlines, cancel() and close()
// are Socket's (fiber/socket.h).
//
// Threading: a socket belongs to the core that created it. Fiber-only: the
// calls park the caller.
//
// Example:
//   auto s = fiber::UdpSocket::bind(*fiber::Address::parse("127.0.0.1:0"));
//   if (!s) return s.error();
//   char buf[1500];
//   fiber::Address from;
//   auto n = s->recv_from(buf, &from);          // one datagram
//   if (n) (void)s->send_to({buf, *n}, from);   // echo it back
#pragma once

#include <cstddef>
#include <span>

#include "fiber/address.h"
#include "fiber/result.h"
#include "fiber/socket.h"

namespace fiber {

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
  // send() and recv() are send_to() and recv_from() with the peer connect()
  // fixed.
  Result<size_t> send(std::span<const char> buf);
  Result<size_t> recv(std::span<char> buf);
};

}  // namespace fiber
