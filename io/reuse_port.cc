// check_reuse_port() and note_reuse_port() (reuse_port.h). The record is the set
// of socket inodes of this process's reuse_port listeners, taken when each was
// made. Whether one of them still listens on an address is read from the
// kernel's socket tables (/proc/net/tcp and tcp6, which give each listener's
// address and inode), never by looking at an fd number again: another thread
// may have closed that fd and got the number back for something else.
#include "reuse_port.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

namespace fiber::detail {
namespace {

std::mutex g_mu;
std::map<ino_t, int> g_ours;  // inode -> address family; guarded by g_mu

constexpr unsigned kListenState = 0x0A;  // TCP_LISTEN as the tables print it

// Listener is one line of a socket table: a listening socket's address (the
// 32-bit words as the kernel prints them, in host order) and inode.
struct Listener {
  uint32_t addr[4] = {};
  unsigned port = 0;
  ino_t inode = 0;
};

// same_address() is true when `l` (from the table of `at`'s family) listens on
// exactly `at`.
bool same_address(const Listener& l, const Address& at) {
  if (l.port != at.port()) return false;
  if (at.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(at.data());
    return std::memcmp(&l.addr[0], &in->sin_addr.s_addr, 4) == 0;
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(at.data());
  return std::memcmp(l.addr, in6->sin6_addr.s6_addr, 16) == 0;
}

// for_each_listener() calls f(listener) for every listening socket of `at`'s
// family in this network namespace. False if the table cannot be read.
template <class F>
bool for_each_listener(int family, F f) {
  FILE* table = std::fopen(family == AF_INET ? "/proc/net/tcp" : "/proc/net/tcp6", "re");
  if (table == nullptr) return false;
  char line[512];
  (void)std::fgets(line, sizeof line, table);  // the heading
  while (std::fgets(line, sizeof line, table) != nullptr) {
    Listener l;
    char local[64];
    unsigned state = 0;
    unsigned long inode = 0;
    // "sl local rem st tx:rx tr:when retrnsmt uid timeout inode"
    if (std::sscanf(line, " %*u: %63[0-9A-Fa-f:] %*s %x %*s %*s %*s %*u %*u %lu", local, &state,
                    &inode) != 3 ||
        state != kListenState) {
      continue;
    }
    const int words = family == AF_INET ? 1 : 4;
    const char* p = local;
    bool ok = true;
    for (int i = 0; i < words && ok; ++i) {
      unsigned w = 0;
      ok = std::sscanf(p, "%8x", &w) == 1;
      l.addr[i] = w;
      p += 8;
    }
    if (!ok || *p != ':' || std::sscanf(p + 1, "%x", &l.port) != 1) continue;
    // The kernel prints each 32-bit word of the address as a number in host
    // order; read back the same way, it holds the address's bytes again.
    l.inode = static_cast<ino_t>(inode);
    f(l);
  }
  std::fclose(table);
  return true;
}

}  // namespace

Result<void> check_reuse_port(const Address& at) {
  if (at.port() == 0) return {};
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (!g_ours.empty()) {
      std::set<ino_t> alive;
      bool ours_there = false;
      const bool read = for_each_listener(at.family(), [&](const Listener& l) {
        if (!g_ours.count(l.inode)) return;
        alive.insert(l.inode);
        if (same_address(l, at)) ours_there = true;
      });
      if (read) {
        // Forget the closed ones of this family (only its table was read).
        std::erase_if(g_ours, [&](const auto& o) {
          return o.second == at.family() && !alive.count(o.first);
        });
      }
      if (ours_there) return {};
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
  struct stat st;
  if (::fstat(fd, &st) != 0) return;  // fd was made by the caller a moment ago
  std::lock_guard<std::mutex> g(g_mu);
  sockaddr_storage addr;
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
  g_ours[st.st_ino] = addr.ss_family;
}

}  // namespace fiber::detail
