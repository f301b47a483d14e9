// File: positional file I/O for fibers. Calls look blocking and park the calling
// fiber, never the thread: under io_uring each call is one submission; under
// epoll (which cannot wait on regular files) it runs on the spawn_blocking() pool.
//
// Threading: a File belongs to the core that opened it; use and close it there.
// Calls are fiber-only. Errors are values, never exceptions.
//
// Example:
//   auto f = fiber::File::open("/etc/hostname");
//   if (!f) return f.error();
//   char buf[256];
//   auto n = f->read_at(buf, 0);
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "fiber/detail/handle_owner.h"
#include "fiber/result.h"

namespace fiber {

class File {
 public:
  File() = default;
  File(File&&) noexcept = default;
  // operator=() closes this file (as close() does), then takes `other`'s fd.
  File& operator=(File&&) noexcept = default;
  ~File() = default;  // closes, as close() does

  // open() opens `path` with open(2) flags (O_CLOEXEC is always added) and, when
  // creating, `mode`. A path with a NUL byte is std::errc::invalid_argument.
  static Result<File> open(std::string_view path, int flags = O_RDONLY, mode_t mode = 0644);

  // read_at() reads at most buf.size() bytes at `offset`; 0 means end of file.
  // An empty buffer is std::errc::invalid_argument.
  Result<size_t> read_at(std::span<char> buf, uint64_t offset);
  // read_exact_at() fills `buf` from `offset`; a file too short for it is
  // std::errc::result_out_of_range.
  Result<void> read_exact_at(std::span<char> buf, uint64_t offset);
  // write_at() writes some of `buf` at `offset` (at least one byte unless empty).
  Result<size_t> write_at(std::span<const char> buf, uint64_t offset);
  // write_all_at() writes all of `buf` at `offset`, across short writes.
  Result<void> write_all_at(std::span<const char> buf, uint64_t offset);
  // fsync() flushes data and metadata to the device.
  Result<void> fsync();
  // size() is the file's current size (fstat).
  Result<uint64_t> size() const;

  // close() waits for operations in flight, then closes the fd. Idempotent.
  void close() { h_.close(); }
  bool is_open() const { return h_.is_open(); }
  int fd() const { return h_.fd(); }

 private:
  explicit File(int fd) : h_(fd) {}
  detail::HandleOwner h_;
};

}  // namespace fiber
