#include "fiber/tcp.h"

#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <system_error>
#include <vector>

#include "driver/internal/io.h"
#include "reuse_port.h"
#include "socket_ops.h"

namespace fiber {

Result<TcpStream> TcpStream::connect(const Address& to, std::chrono::nanoseconds timeout) {
  if (to.family() != AF_INET && to.family() != AF_INET6) return std::errc::invalid_argument;
  Result<int> fd = detail::new_socket(to.family());
  if (!fd) return fd.error();
  TcpStream s(*fd);
  Result<void> r = detail::connect_fd(*s.h_, to.data(), to.size(), detail::deadline_after(timeout));
  if (!r) return r.error();
  return s;
}

Result<TcpStream> TcpStream::dial(std::string_view host_port, std::chrono::nanoseconds timeout) {
  Result<std::vector<Address>> addrs = resolve(host_port);
  if (!addrs) return addrs.error();
  std::error_code last = std::make_error_code(std::errc::host_unreachable);
  for (const Address& a : *addrs) {
    Result<TcpStream> s = connect(a, timeout);
    if (s) return s;
    last = s.error();
  }
  return last;
}

Result<void> TcpStream::set_nodelay(bool on) {
  int v = on ? 1 : 0;
  if (setsockopt(fd(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0) return detail::errno_error();
  return {};
}

Result<Address> TcpStream::peer_address() const {
  Address a;
  if (getpeername(fd(), a.data(), a.size_ptr()) != 0) return detail::errno_error();
  return a;
}

Result<TcpListener> TcpListener::bind(const Address& at, const ListenOptions& options) {
  if (options.backlog <= 0) return std::errc::invalid_argument;
  if (at.family() != AF_INET && at.family() != AF_INET6) return std::errc::invalid_argument;
  Result<int> fd = detail::new_socket(at.family());
  if (!fd) return fd.error();
  TcpListener l;
  static_cast<Socket&>(l) = Socket(*fd);
  int one = 1;
  setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (options.reuse_port) {
    if (Result<void> free = detail::check_reuse_port(at); !free) return free.error();
    if (setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      return detail::errno_error();
    }
  }
  Result<void> r = detail::listen_fd(*fd, at.data(), at.size(), options.backlog);
  if (!r) return r.error();
  if (options.reuse_port) detail::note_reuse_port(*fd);
  return l;
}

Result<void> TcpListener::steer_group(int listener_fd, std::span<const unsigned> targets) {
  if (listener_fd < 0) return std::errc::bad_file_descriptor;
  if (targets.size() > 2000) return std::errc::invalid_argument;
  std::vector<sock_filter> prog;
  if (targets.empty()) {
    // An index past the group's end makes the kernel fall back to its hash.
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, 0xffffffffu));
  } else {
    // A = random % n; then return targets[A] through a chain of comparisons
    // (classic BPF has no indexed load from a table).
    const auto n = static_cast<uint32_t>(targets.size());
    prog.push_back(
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM)));
    prog.push_back(BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n));
    for (uint32_t i = 0; i + 1 < n; ++i) {
      prog.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, i, 0, 1));
      prog.push_back(BPF_STMT(BPF_RET | BPF_K, targets[i]));
    }
    prog.push_back(BPF_STMT(BPF_RET | BPF_K, targets[n - 1]));
  }
  sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
  if (setsockopt(listener_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog, sizeof fprog) != 0) {
    return detail::errno_error();
  }
  return {};
}

Result<TcpStream> TcpListener::accept(Address* peer) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  Address scratch;
  Address* a = peer != nullptr ? peer : &scratch;
  *a->size_ptr() = sizeof(sockaddr_storage);
  Result<int> fd = detail::accept_fd(*h_, a->data(), a->size_ptr(), read_deadline_);
  if (!fd) return fd.error();
  return TcpStream(*fd);
}

}  // namespace fiber
