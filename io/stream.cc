#include "fiber/stream.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <span>

#include "driver/internal/io.h"
#include "socket_ops.h"

namespace fiber {

Result<size_t> Stream::read(std::span<char> buf) {
  if (buf.empty()) return std::errc::invalid_argument;
  if (!is_open()) return std::errc::bad_file_descriptor;
  detail::IoRequest req{detail::IoKind::kRecv, fd()};
  req.buf = buf.data();
  req.len = std::min(buf.size(), detail::kMaxIo);
  int32_t r = detail::run_op(*h_, req, read_deadline_);
  if (r < 0) return detail::errno_code(r);
  return static_cast<size_t>(r);
}

Result<void> Stream::read_exact(std::span<char> buf) {
  while (!buf.empty()) {
    Result<size_t> n = read(buf);
    if (!n) return n.error();
    if (*n == 0) return std::errc::connection_aborted;
    buf = buf.subspan(*n);
  }
  return {};
}

Result<size_t> Stream::write(std::span<const char> buf) {
  if (buf.empty()) return size_t{0};
  if (!is_open()) return std::errc::bad_file_descriptor;
  detail::IoRequest req{detail::IoKind::kSend, fd()};
  req.buf = const_cast<char*>(buf.data());
  req.len = std::min(buf.size(), detail::kMaxIo);
  int32_t r = detail::run_op(*h_, req, write_deadline_);
  if (r < 0) return detail::errno_code(r);
  return static_cast<size_t>(r);
}

Result<void> Stream::write_all(std::span<const char> buf) {
  while (!buf.empty()) {
    Result<size_t> n = write(buf);
    if (!n) return n.error();
    buf = buf.subspan(*n);
  }
  return {};
}

namespace {

// fill_iov() builds the iovec array of a readv/writev call; the total is
// capped at kMaxIo.
template <class Span>
Result<size_t> fill_iov(std::span<const Span> bufs, iovec* iov) {
  if (bufs.size() > Stream::kMaxIov) return std::errc::invalid_argument;
  size_t total = 0;
  for (size_t i = 0; i < bufs.size(); ++i) {
    size_t len = std::min(bufs[i].size(), detail::kMaxIo - total);
    iov[i].iov_base = const_cast<char*>(bufs[i].data());
    iov[i].iov_len = len;
    total += len;
  }
  return total;
}

}  // namespace

Result<size_t> Stream::readv(std::span<const std::span<char>> bufs) {
  iovec iov[kMaxIov];
  Result<size_t> total = fill_iov(bufs, iov);
  if (!total) return total.error();
  if (*total == 0) return std::errc::invalid_argument;
  if (!is_open()) return std::errc::bad_file_descriptor;
  msghdr msg = {};
  msg.msg_iov = iov;
  msg.msg_iovlen = bufs.size();
  return detail::msg_io(*h_, detail::IoKind::kRecvMsg, &msg, read_deadline_);
}

Result<size_t> Stream::writev(std::span<const std::span<const char>> bufs) {
  iovec iov[kMaxIov];
  Result<size_t> total = fill_iov(bufs, iov);
  if (!total) return total.error();
  if (*total == 0) return size_t{0};
  if (!is_open()) return std::errc::bad_file_descriptor;
  msghdr msg = {};
  msg.msg_iov = iov;
  msg.msg_iovlen = bufs.size();
  return detail::msg_io(*h_, detail::IoKind::kSendMsg, &msg, write_deadline_);
}

Result<void> Stream::shutdown(int how) {
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return std::errc::invalid_argument;
  if (::shutdown(fd(), how) != 0) return detail::errno_error();
  return {};
}

}  // namespace fiber
