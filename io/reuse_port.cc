// check_reuse_port() and note_reuse_port() (reuse_port.h). The record is a list
// of (fd, socket inode) pairs, pruned as they close: an fd counts as ours only
// while it is still the same socket (an fd number can be reused) and listens,
// with SO_REUSEPORT, on the very address.
#include "reuse_port.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace fiber::detail {
namespace {

struct Listener {
  int fd;
  ino_t inode;
};

std::mutex g_mu;
std::vector<Listener> g_listeners;  // guarded by g_mu

ino_t inode_of(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

bool int_option(int fd, int opt) {
  int v = 0;
  socklen_t len = sizeof v;
  return ::getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 && v != 0;
}

bool listens_on(int fd, const Address& at) {
  Address mine;
  if (::getsockname(fd, mine.data(), mine.size_ptr()) != 0) return false;
  return mine.size() == at.size() && std::memcmp(mine.data(), at.data(), at.size()) == 0 &&
         int_option(fd, SO_ACCEPTCONN) && int_option(fd, SO_REUSEPORT);
}

}  // namespace

Result<void> check_reuse_port(const Address& at) {
  if (at.port() == 0) return {};
  {
    std::lock_guard<std::mutex> g(g_mu);
    std::erase_if(g_listeners, [](const Listener& l) { return inode_of(l.fd) != l.inode; });
    for (const Listener& l : g_listeners) {
      if (listens_on(l.fd, at)) return {};
    }
  }
  int probe = ::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return std::error_code(errno, std::generic_category());
  int one = 1;
  ::setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool taken = ::bind(probe, at.data(), at.size()) != 0 && errno == EADDRINUSE;
  ::close(probe);
  if (taken) return std::errc::address_in_use;
  return {};
}

void note_reuse_port(int fd) {
  std::lock_guard<std::mutex> g(g_mu);
  g_listeners.push_back(Listener{fd, inode_of(fd)});
}

}  // namespace fiber::detail
