// Stream is a connected byte stream: the reads and writes that TcpStream
// (fiber/tcp.h) and UnixStream (fiber/unix.h) share. Each call parks the
// calling fiber, never the thread, until the kernel answers.
//
// Threading: core-local, as every Socket (fiber/socket.h). Fiber-only: the
// calls park the caller.
//
// Example:
//   char buf[4096];
//   auto n = conn.read(buf);                   // Result<size_t>; 0 is end of stream
//   if (!n || *n == 0) return;
//   if (!conn.write_all({buf, *n})) return;    // across short writes
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <span>

#include "fiber/result.h"
#include "fiber/socket.h"

namespace fiber {

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

}  // namespace fiber
