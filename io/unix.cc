#include "fiber/unix.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <string_view>
#include <system_error>
#include <utility>

#include "driver/internal/io.h"
#include "socket_ops.h"

namespace fiber {
namespace {

// unix_address() fills `sun` from `path` ('@' first: abstract namespace).
Result<socklen_t> unix_address(std::string_view path, sockaddr_un* sun) {
  *sun = {};
  sun->sun_family = AF_UNIX;
  if (path.empty() || path.find('\0') != std::string_view::npos) return std::errc::invalid_argument;
  if (path.size() >= sizeof sun->sun_path) return std::errc::filename_too_long;
  path.copy(sun->sun_path, path.size());
  if (path.front() == '@') sun->sun_path[0] = '\0';
  // Abstract names are exactly as long as given; file names end with a NUL.
  size_t used = path.size() + (path.front() == '@' ? 0 : 1);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + used);
}

}  // namespace

Result<UnixStream> UnixStream::connect(std::string_view path, std::chrono::nanoseconds timeout) {
  sockaddr_un sun;
  Result<socklen_t> len = unix_address(path, &sun);
  if (!len) return len.error();
  Result<int> fd = detail::new_socket(AF_UNIX);
  if (!fd) return fd.error();
  UnixStream s(*fd);
  Result<void> r = detail::connect_fd(*s.h_, reinterpret_cast<const sockaddr*>(&sun), *len,
                                      detail::deadline_after(timeout));
  if (!r) return r.error();
  return s;
}

Result<std::pair<UnixStream, UnixStream>> UnixStream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | detail::socket_flags(), 0, fds) != 0) {
    return detail::errno_error();
  }
  return std::pair<UnixStream, UnixStream>(UnixStream(fds[0]), UnixStream(fds[1]));
}

Result<UnixListener> UnixListener::bind(std::string_view path, const ListenOptions& options) {
  if (options.backlog <= 0) return std::errc::invalid_argument;
  sockaddr_un sun;
  Result<socklen_t> len = unix_address(path, &sun);
  if (!len) return len.error();
  Result<int> fd = detail::new_socket(AF_UNIX);
  if (!fd) return fd.error();
  UnixListener l;
  static_cast<Socket&>(l) = Socket(*fd);
  Result<void> r =
      detail::listen_fd(*fd, reinterpret_cast<const sockaddr*>(&sun), *len, options.backlog);
  if (!r) return r.error();
  return l;
}

Result<UnixStream> UnixListener::accept() {
  if (!is_open()) return std::errc::bad_file_descriptor;
  Result<int> fd = detail::accept_fd(*h_, nullptr, nullptr, read_deadline_);
  if (!fd) return fd.error();
  return UnixStream(*fd);
}

}  // namespace fiber
