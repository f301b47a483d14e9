#include "fiber/net.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>

#include "driver/internal/io.h"
#include "fiber/blocking.h"
#include "fiber/cancellation.h"
#include "fiber/detail/park.h"

namespace fiber {
namespace {

std::error_code last_error() { return std::error_code(errno, std::generic_category()); }

int64_t to_ns(Deadline d) {
  if (d == Deadline{}) return 0;
  int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
  return ns > 0 ? ns : 1;  // already past: fails at once
}

// run() performs one request on `h`; a result as the kernel gives it.
int32_t run(detail::IoHandle& h, detail::IoRequest req, Deadline deadline) {
  return detail::io_execute(h, req, to_ns(deadline));
}

// kMaxIo caps one transfer: the kernel moves at most ~2 GiB per call, and the
// result must fit the int32 of a completion.
constexpr size_t kMaxIo = size_t{1} << 30;

// new_socket() makes a socket with the flags the running driver needs.
Result<int> new_socket(int family, int type = SOCK_STREAM) {
  int fd = ::socket(family, type | SOCK_CLOEXEC | detail::socket_flags(), 0);
  if (fd < 0) return last_error();
  return fd;
}

Deadline deadline_after(std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return Deadline{};
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
}

// connect_fd() connects the fresh socket `s` to `addr`.
Result<void> connect_fd(detail::IoHandle& h, const sockaddr* addr, socklen_t len,
                        Deadline deadline) {
  detail::IoRequest req{detail::IoKind::kConnect, h.fd};
  req.addr = const_cast<sockaddr*>(addr);
  req.len = len;
  int32_t r = run(h, req, deadline);
  if (r < 0) return detail::errno_code(r);
  return {};
}

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

// accept_fd() accepts one connection on the listener `h`.
Result<int> accept_fd(detail::IoHandle& h, sockaddr* addr, socklen_t* addrlen, Deadline deadline) {
  detail::IoRequest req{detail::IoKind::kAccept, h.fd};
  req.addr = addr;
  req.addrlen = addrlen;
  int32_t r = run(h, req, deadline);
  if (r < 0) return detail::errno_code(r);
  return r;
}

// listen_fd() binds and listens.
Result<void> listen_fd(int fd, const sockaddr* addr, socklen_t len, int backlog) {
  if (::bind(fd, addr, len) != 0) return last_error();
  if (::listen(fd, backlog) != 0) return last_error();
  return {};
}

// msg_io() runs a kRecvMsg or kSendMsg request.
Result<size_t> msg_io(detail::IoHandle& h, detail::IoKind kind, msghdr* msg, Deadline deadline) {
  detail::IoRequest req{kind, h.fd};
  req.msg = msg;
  int32_t r = run(h, req, deadline);
  if (r < 0) return detail::errno_code(r);
  return static_cast<size_t>(r);
}

// poll_fd() parks until `h` is ready for `events` (POLLIN or POLLOUT).
Result<void> poll_fd(detail::IoHandle& h, int events, Deadline deadline) {
  detail::IoRequest req{detail::IoKind::kPoll, h.fd};
  req.flags = events;
  int32_t r = run(h, req, deadline);
  if (r < 0) return detail::errno_code(r);
  return {};
}

}  // namespace

// --- Address -----------------------------------------------------------------

Result<Address> Address::parse(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == s.size()) return std::errc::invalid_argument;
  std::string_view host = s.substr(0, colon);
  std::string_view port_text = s.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return std::errc::invalid_argument;
  }
  Address a;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    std::string h(host.substr(1, host.size() - 2));
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    if (inet_pton(AF_INET6, h.c_str(), &sin6->sin6_addr) != 1) return std::errc::invalid_argument;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    a.size_ = sizeof(sockaddr_in6);
    return a;
  }
  std::string h(host);
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  if (inet_pton(AF_INET, h.c_str(), &sin->sin_addr) != 1) return std::errc::invalid_argument;
  sin->sin_family = AF_INET;
  sin->sin_port = htons(static_cast<uint16_t>(port));
  a.size_ = sizeof(sockaddr_in);
  return a;
}

uint16_t Address::port() const {
  if (storage_.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
}

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (storage_.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof buf);
    std::string out = "[";  // built piecewise: gcc 12's -Wrestrict misfires on "[" + s
    out += buf;
    out += "]:";
    out += std::to_string(port());
    return out;
  }
  inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(port());
}

// --- Socket ------------------------------------------------------------------

Result<void> Socket::wait_readable() {
  if (!is_open()) return std::errc::bad_file_descriptor;
  return poll_fd(*h_, POLLIN, read_deadline_);
}

Result<void> Socket::wait_writable() {
  if (!is_open()) return std::errc::bad_file_descriptor;
  return poll_fd(*h_, POLLOUT, write_deadline_);
}

Result<Address> Socket::local_address() const {
  Address a;
  if (getsockname(fd(), a.data(), a.size_ptr()) != 0) return last_error();
  return a;
}

ContextBinding Socket::bind_context(const Context& ctx) {
  detail::IoHandle* h = h_.get();
  if (h == nullptr) return ContextBinding(nullptr, nullptr);
  // The hook runs on whichever thread ends the context; io_fail() may be
  // called from any thread of the runtime.
  auto hook = std::make_unique<CancelHook>(ctx, [h, ctx] {
    std::error_code err = ctx.err();
    detail::io_fail(*h, err == std::errc::timed_out ? ETIMEDOUT : ECANCELED);
  });
  return ContextBinding(h, std::move(hook));
}

ContextBinding::ContextBinding(detail::IoHandle* h, std::unique_ptr<CancelHook> hook)
    : h_(h), hook_(std::move(hook)) {}

ContextBinding::ContextBinding(ContextBinding&& other) noexcept
    : h_(std::exchange(other.h_, nullptr)), hook_(std::move(other.hook_)) {}

ContextBinding::~ContextBinding() {
  if (hook_ != nullptr) hook_->stop();  // after this the hook cannot run
  if (h_ != nullptr) detail::io_unfail(*h_);
}

// --- Stream ------------------------------------------------------------------

Result<size_t> Stream::read(std::span<char> buf) {
  if (buf.empty()) return std::errc::invalid_argument;
  if (!is_open()) return std::errc::bad_file_descriptor;
  detail::IoRequest req{detail::IoKind::kRecv, fd()};
  req.buf = buf.data();
  req.len = std::min(buf.size(), kMaxIo);
  int32_t r = run(*h_, req, read_deadline_);
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
  req.len = std::min(buf.size(), kMaxIo);
  int32_t r = run(*h_, req, write_deadline_);
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

// Builds the iovec array of a readv/writev call; the total is capped at kMaxIo.
template <class Span>
Result<size_t> fill_iov(std::span<const Span> bufs, iovec* iov) {
  if (bufs.size() > Stream::kMaxIov) return std::errc::invalid_argument;
  size_t total = 0;
  for (size_t i = 0; i < bufs.size(); ++i) {
    size_t len = std::min(bufs[i].size(), kMaxIo - total);
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
  return msg_io(*h_, detail::IoKind::kRecvMsg, &msg, read_deadline_);
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
  return msg_io(*h_, detail::IoKind::kSendMsg, &msg, write_deadline_);
}

Result<void> Stream::shutdown(int how) {
  if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return std::errc::invalid_argument;
  if (::shutdown(fd(), how) != 0) return last_error();
  return {};
}

// --- TcpStream ---------------------------------------------------------------

Result<TcpStream> TcpStream::connect(const Address& to, std::chrono::nanoseconds timeout) {
  if (to.family() != AF_INET && to.family() != AF_INET6) return std::errc::invalid_argument;
  Result<int> fd = new_socket(to.family());
  if (!fd) return fd.error();
  TcpStream s(*fd);
  Result<void> r = connect_fd(*s.h_, to.data(), to.size(), deadline_after(timeout));
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
  if (setsockopt(fd(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0) return last_error();
  return {};
}

Result<Address> TcpStream::peer_address() const {
  Address a;
  if (getpeername(fd(), a.data(), a.size_ptr()) != 0) return last_error();
  return a;
}

// --- TcpListener -------------------------------------------------------------

Result<TcpListener> TcpListener::bind(const Address& at, const ListenOptions& options) {
  if (options.backlog <= 0) return std::errc::invalid_argument;
  if (at.family() != AF_INET && at.family() != AF_INET6) return std::errc::invalid_argument;
  Result<int> fd = new_socket(at.family());
  if (!fd) return fd.error();
  TcpListener l;
  static_cast<Socket&>(l) = Socket(*fd);
  int one = 1;
  setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (options.reuse_port && setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return last_error();
  }
  Result<void> r = listen_fd(*fd, at.data(), at.size(), options.backlog);
  if (!r) return r.error();
  return l;
}

Result<TcpStream> TcpListener::accept(Address* peer) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  Address scratch;
  Address* a = peer != nullptr ? peer : &scratch;
  *a->size_ptr() = sizeof(sockaddr_storage);
  Result<int> fd = accept_fd(*h_, a->data(), a->size_ptr(), read_deadline_);
  if (!fd) return fd.error();
  return TcpStream(*fd);
}

// --- Unix-domain streams -------------------------------------------------------

Result<UnixStream> UnixStream::connect(std::string_view path, std::chrono::nanoseconds timeout) {
  sockaddr_un sun;
  Result<socklen_t> len = unix_address(path, &sun);
  if (!len) return len.error();
  Result<int> fd = new_socket(AF_UNIX);
  if (!fd) return fd.error();
  UnixStream s(*fd);
  Result<void> r =
      connect_fd(*s.h_, reinterpret_cast<const sockaddr*>(&sun), *len, deadline_after(timeout));
  if (!r) return r.error();
  return s;
}

Result<std::pair<UnixStream, UnixStream>> UnixStream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | detail::socket_flags(), 0, fds) != 0) {
    return last_error();
  }
  return std::pair<UnixStream, UnixStream>(UnixStream(fds[0]), UnixStream(fds[1]));
}

Result<UnixListener> UnixListener::bind(std::string_view path, const ListenOptions& options) {
  if (options.backlog <= 0) return std::errc::invalid_argument;
  sockaddr_un sun;
  Result<socklen_t> len = unix_address(path, &sun);
  if (!len) return len.error();
  Result<int> fd = new_socket(AF_UNIX);
  if (!fd) return fd.error();
  UnixListener l;
  static_cast<Socket&>(l) = Socket(*fd);
  Result<void> r = listen_fd(*fd, reinterpret_cast<const sockaddr*>(&sun), *len, options.backlog);
  if (!r) return r.error();
  return l;
}

Result<UnixStream> UnixListener::accept() {
  if (!is_open()) return std::errc::bad_file_descriptor;
  Result<int> fd = accept_fd(*h_, nullptr, nullptr, read_deadline_);
  if (!fd) return fd.error();
  return UnixStream(*fd);
}

// --- UDP -------------------------------------------------------------------------

Result<UdpSocket> UdpSocket::bind(const Address& at) {
  if (at.family() != AF_INET && at.family() != AF_INET6) return std::errc::invalid_argument;
  Result<int> fd = new_socket(at.family(), SOCK_DGRAM);
  if (!fd) return fd.error();
  UdpSocket s(*fd);
  if (::bind(*fd, at.data(), at.size()) != 0) return last_error();
  return s;
}

Result<void> UdpSocket::connect(const Address& peer) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  // A datagram connect only records the peer: it never blocks.
  if (::connect(fd(), peer.data(), peer.size()) != 0) return last_error();
  return {};
}

Result<size_t> UdpSocket::send_to(std::span<const char> buf, const Address& to) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  iovec iov{const_cast<char*>(buf.data()), buf.size()};
  msghdr msg = {};
  msg.msg_name = const_cast<sockaddr*>(to.data());
  msg.msg_namelen = to.size();
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return msg_io(*h_, detail::IoKind::kSendMsg, &msg, write_deadline_);
}

Result<size_t> UdpSocket::recv_from(std::span<char> buf, Address* from) {
  if (buf.empty()) return std::errc::invalid_argument;
  if (!is_open()) return std::errc::bad_file_descriptor;
  Address scratch;
  Address* a = from != nullptr ? from : &scratch;
  iovec iov{buf.data(), std::min(buf.size(), kMaxIo)};
  msghdr msg = {};
  msg.msg_name = a->data();
  msg.msg_namelen = sizeof(sockaddr_storage);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  Result<size_t> n = msg_io(*h_, detail::IoKind::kRecvMsg, &msg, read_deadline_);
  if (n) *a->size_ptr() = msg.msg_namelen;
  return n;
}

Result<size_t> UdpSocket::send(std::span<const char> buf) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  iovec iov{const_cast<char*>(buf.data()), buf.size()};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return msg_io(*h_, detail::IoKind::kSendMsg, &msg, write_deadline_);
}

Result<size_t> UdpSocket::recv(std::span<char> buf) { return recv_from(buf, nullptr); }

// --- name resolution ---------------------------------------------------------------

namespace {

class ResolverCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "resolver"; }
  std::string message(int code) const override { return gai_strerror(code); }
};

}  // namespace

const std::error_category& resolver_category() {
  static const ResolverCategory category;
  return category;
}

Result<std::vector<Address>> resolve(std::string_view host_port) {
  if (Result<Address> numeric = Address::parse(host_port)) {
    return std::vector<Address>{*numeric};
  }
  size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == host_port.size() ||
      host_port.find('\0') != std::string_view::npos) {
    return std::errc::invalid_argument;
  }
  std::string host(host_port.substr(0, colon));
  std::string service(host_port.substr(colon + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::vector<Address> out;
  int sys_errno = 0;
  int rc = spawn_blocking([&] {
    addrinfo hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    int r = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
    if (r == EAI_SYSTEM) sys_errno = errno;  // the pool thread's errno
    if (r != 0) return r;
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
      Address a;
      std::memcpy(a.data(), ai->ai_addr, ai->ai_addrlen);
      *a.size_ptr() = ai->ai_addrlen;
      out.push_back(a);
    }
    ::freeaddrinfo(list);
    return 0;
  });
  if (rc == EAI_SYSTEM) return std::error_code(sys_errno, std::generic_category());
  if (rc != 0) return std::error_code(rc, resolver_category());
  if (out.empty()) return std::error_code(EAI_NONAME, resolver_category());
  return out;
}

}  // namespace fiber
