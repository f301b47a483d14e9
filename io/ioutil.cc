// read_full, LimitReader and copy (fiber/ioutil.h).
//
// copy() between sockets splices socket -> pipe -> socket. Both sockets must be
// O_NONBLOCK: splice honours only the fd's own flag on the socket side, and a
// blocking socket would block the scheduler thread. It waits with
// wait_readable() / wait_writable(), so deadlines and bound contexts apply as to
// read() and write().
#include "fiber/ioutil.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>

#include "fiber/runtime.h"

namespace fiber {
namespace {

class IoCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fiber.io"; }
  std::string message(int v) const override {
    switch (static_cast<IoError>(v)) {
      case IoError::kEof:
        return "EOF";
      case IoError::kUnexpectedEof:
        return "unexpected EOF";
      case IoError::kBufferFull:
        return "buffer full";
      case IoError::kShortWrite:
        return "short write";
    }
    return "unknown io error " + std::to_string(v);
  }
};

constexpr size_t kCopyBuffer = 32 * 1024;
constexpr size_t kSpliceChunk = 64 * 1024;

bool non_blocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

std::error_code errno_now() { return {errno, std::generic_category()}; }

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    if (fd[0] >= 0) ::close(fd[0]);
    if (fd[1] >= 0) ::close(fd[1]);
  }
};

Result<uint64_t> splice_copy(Stream& dst, Stream& src) {
  Pipe p;
  if (::pipe2(p.fd, O_CLOEXEC | O_NONBLOCK) != 0) return errno_now();
  constexpr unsigned kFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
  uint64_t total = 0;
  for (;;) {
    fiber::maybe_yield();
    ssize_t in = ::splice(src.fd(), nullptr, p.fd[1], nullptr, kSpliceChunk, kFlags);
    if (in == 0) return total;
    if (in < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return errno_now();
      if (Result<void> r = src.wait_readable(); !r) return r.error();
      continue;
    }
    for (size_t left = static_cast<size_t>(in); left > 0;) {
      ssize_t out = ::splice(p.fd[0], nullptr, dst.fd(), nullptr, left, kFlags);
      if (out > 0) {
        left -= static_cast<size_t>(out);
        total += static_cast<uint64_t>(out);
        continue;
      }
      if (out < 0 && errno == EINTR) continue;
      if (out < 0 && errno != EAGAIN) return errno_now();
      if (Result<void> r = dst.wait_writable(); !r) return r.error();
    }
  }
}

}  // namespace

const std::error_category& io_category() {
  static const IoCategory category;
  return category;
}

Result<void> WriterRef::write_all(std::span<const char> b) const {
  while (!b.empty()) {
    Result<size_t> n = write(b);
    if (!n) return n.error();
    if (*n == 0) return std::error_code(IoError::kShortWrite);
    b = b.subspan(*n);
  }
  return {};
}

Result<size_t> read_full(ReaderRef r, std::span<char> buf) {
  size_t got = 0;
  while (got < buf.size()) {
    Result<size_t> n = r.read(buf.subspan(got));
    if (!n) return n.error();
    if (*n == 0) return std::error_code(got == 0 ? IoError::kEof : IoError::kUnexpectedEof);
    got += *n;
  }
  return got;
}

Result<size_t> LimitReader::read(std::span<char> buf) {
  if (left_ == 0 || buf.empty()) return size_t{0};
  if (buf.size() > left_) buf = buf.first(static_cast<size_t>(left_));
  Result<size_t> n = r_.read(buf);
  if (n) left_ -= *n;
  return n;
}

Result<uint64_t> copy(WriterRef dst, ReaderRef src) {
  auto buf = std::make_unique<char[]>(kCopyBuffer);
  uint64_t total = 0;
  for (;;) {
    Result<size_t> n = src.read({buf.get(), kCopyBuffer});
    if (!n) return n.error();
    if (*n == 0) return total;
    if (Result<void> w = dst.write_all({buf.get(), *n}); !w) return w.error();
    total += *n;
  }
}

Result<uint64_t> copy(Stream& dst, Stream& src, CopyMode mode) {
  if (!dst.is_open() || !src.is_open()) return std::errc::bad_file_descriptor;
  const bool can_splice = non_blocking(src.fd()) && non_blocking(dst.fd());
  if (mode == CopyMode::kSplice && !can_splice) return std::errc::operation_not_supported;
  if (mode != CopyMode::kReadWrite && can_splice) return splice_copy(dst, src);
  return copy(WriterRef(dst), ReaderRef(src));
}

}  // namespace fiber
