#include "fiber/udp.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <span>

#include "driver/internal/io.h"
#include "socket_ops.h"

namespace fiber {

Result<UdpSocket> UdpSocket::bind(const Address& at) {
  if (at.family() != AF_INET && at.family() != AF_INET6) return std::errc::invalid_argument;
  Result<int> fd = detail::new_socket(at.family(), SOCK_DGRAM);
  if (!fd) return fd.error();
  UdpSocket s(*fd);
  if (::bind(*fd, at.data(), at.size()) != 0) return detail::errno_error();
  return s;
}

Result<void> UdpSocket::connect(const Address& peer) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  // A datagram connect only records the peer: it never blocks.
  if (::connect(fd(), peer.data(), peer.size()) != 0) return detail::errno_error();
  return {};
}

Result<size_t> UdpSocket::send_to(std::span<const char> buf, const Address& to) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  iovec iov{const_cast<char*>(buf.data()), buf.size()};
  msghdr msg = {};
  msg.msg_name = const_cast<sockaddr*>(to.data());
  msg.msg_namelen = to.size();
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return detail::msg_io(*h_, detail::IoKind::kSendMsg, &msg, write_deadline_);
}

Result<size_t> UdpSocket::recv_from(std::span<char> buf, Address* from) {
  if (buf.empty()) return std::errc::invalid_argument;
  if (!is_open()) return std::errc::bad_file_descriptor;
  Address scratch;
  Address* a = from != nullptr ? from : &scratch;
  iovec iov{buf.data(), std::min(buf.size(), detail::kMaxIo)};
  msghdr msg = {};
  msg.msg_name = a->data();
  msg.msg_namelen = sizeof(sockaddr_storage);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  Result<size_t> n = detail::msg_io(*h_, detail::IoKind::kRecvMsg, &msg, read_deadline_);
  if (n) *a->size_ptr() = msg.msg_namelen;
  return n;
}

Result<size_t> UdpSocket::send(std::span<const char> buf) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  iovec iov{const_cast<char*>(buf.data()), buf.size()};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return detail::msg_io(*h_, detail::IoKind::kSendMsg, &msg, write_deadline_);
}

Result<size_t> UdpSocket::recv(std::span<char> buf) { return recv_from(buf, nullptr); }

}  // namespace fiber
