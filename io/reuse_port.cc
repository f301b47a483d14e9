// check_reuse_port() and note_reuse_port() (reuse_port.h). The record is the set
// of socket inodes of this process's reuse_port listeners, taken when each was
// made. Whether one of them still listens on an address is asked of the kernel
// (sock_diag, which lists each listener's address and inode), never by looking
// at an fd number again: another thread may have closed that fd and got the
// number back for something else.
#include "reuse_port.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <set>

namespace fiber::detail {
namespace {

std::mutex g_mu;
std::map<ino_t, int> g_ours;  // inode -> address family; guarded by g_mu

// Listener is one listening socket as sock_diag reports it.
struct Listener {
  inet_diag_sockid id;  // addresses and ports in network order
  ino_t inode = 0;
};

// same_address() is true when `l` (of `at`'s family) listens on exactly `at`.
bool same_address(const Listener& l, const Address& at) {
  if (ntohs(l.id.idiag_sport) != at.port()) return false;
  if (at.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(at.data());
    return std::memcmp(&l.id.idiag_src[0], &in->sin_addr, 4) == 0;
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(at.data());
  return std::memcmp(l.id.idiag_src, &in6->sin6_addr, 16) == 0;
}

// for_each_listener() calls f(listener) for every listening TCP socket of
// `family` in this network namespace, asking the kernel through sock_diag
// (which filters by state itself, so connections cost nothing). False if the
// kernel could not be asked.
template <class F>
bool for_each_listener(int family, F f) {
  int nl = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return false;
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } ask = {};
  ask.nlh.nlmsg_len = sizeof ask;
  ask.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  ask.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  ask.req.sdiag_family = static_cast<uint8_t>(family);
  ask.req.sdiag_protocol = IPPROTO_TCP;
  ask.req.idiag_states = 1u << TCP_LISTEN;
  sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  bool ok = ::sendto(nl, &ask, sizeof ask, 0, reinterpret_cast<sockaddr*>(&kernel),
                     sizeof kernel) == static_cast<ssize_t>(sizeof ask);
  alignas(nlmsghdr) char buf[16384];
  for (bool done = !ok; !done;) {
    ssize_t n = ::recv(nl, buf, sizeof buf, 0);
    if (n <= 0) {
      ok = false;
      break;
    }
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        ok = false;
        done = true;
        break;
      }
      const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      f(Listener{msg->id, static_cast<ino_t>(msg->idiag_inode)});
    }
  }
  ::close(nl);
  return ok;
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
