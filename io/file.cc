#include "fiber/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "driver/internal/io.h"

namespace fiber {
namespace {

// kMaxIo caps one transfer, as for sockets: the result must fit a completion.
constexpr size_t kMaxIo = size_t{1} << 30;

Result<size_t> positional(detail::IoHandle* h, detail::IoKind kind, void* buf, size_t len,
                          uint64_t offset) {
  if (h == nullptr || h->fd < 0) return std::errc::bad_file_descriptor;
  if (offset > static_cast<uint64_t>(INT64_MAX)) return std::errc::invalid_argument;
  detail::IoRequest req{kind, h->fd};
  req.buf = buf;
  req.len = std::min(len, kMaxIo);
  req.offset = offset;
  int32_t r = detail::io_execute(*h, req, 0);
  if (r < 0) return detail::errno_code(r);
  return static_cast<size_t>(r);
}

}  // namespace

Result<File> File::open(std::string_view path, int flags, mode_t mode) {
  if (path.empty() || path.find('\0') != std::string_view::npos) {
    return std::errc::invalid_argument;
  }
  std::string p(path);  // NUL-terminated, and alive until the kernel is done with it
  detail::IoRequest req{detail::IoKind::kOpenAt, -1};
  req.path = p.c_str();
  req.flags = flags | O_CLOEXEC;
  req.mode = mode;
  int32_t fd = detail::io_open(req);
  if (fd < 0) return detail::errno_code(fd);
  return File(fd);
}

Result<size_t> File::read_at(std::span<char> buf, uint64_t offset) {
  if (buf.empty()) return std::errc::invalid_argument;
  return positional(h_.get(), detail::IoKind::kReadAt, buf.data(), buf.size(), offset);
}

Result<void> File::read_exact_at(std::span<char> buf, uint64_t offset) {
  while (!buf.empty()) {
    Result<size_t> n = read_at(buf, offset);
    if (!n) return n.error();
    if (*n == 0) return std::errc::result_out_of_range;
    buf = buf.subspan(*n);
    offset += *n;
  }
  return {};
}

Result<size_t> File::write_at(std::span<const char> buf, uint64_t offset) {
  if (buf.empty()) return size_t{0};
  return positional(h_.get(), detail::IoKind::kWriteAt, const_cast<char*>(buf.data()), buf.size(),
                    offset);
}

Result<void> File::write_all_at(std::span<const char> buf, uint64_t offset) {
  while (!buf.empty()) {
    Result<size_t> n = write_at(buf, offset);
    if (!n) return n.error();
    if (*n == 0) return std::errc::io_error;  // no progress: never loop on it
    buf = buf.subspan(*n);
    offset += *n;
  }
  return {};
}

Result<void> File::fsync() {
  if (!is_open()) return std::errc::bad_file_descriptor;
  detail::IoRequest req{detail::IoKind::kFsync, fd()};
  int32_t r = detail::io_execute(*h_, req, 0);
  if (r < 0) return detail::errno_code(r);
  return {};
}

Result<uint64_t> File::size() const {
  if (!is_open()) return std::errc::bad_file_descriptor;
  struct stat st;
  if (::fstat(fd(), &st) != 0) return std::error_code(errno, std::generic_category());
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace fiber
