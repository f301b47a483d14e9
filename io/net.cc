#include "fiber/net.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "driver/io.h"
#include "fiber/detail/park.h"
#include "sched/scheduler.h"

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

// new_socket() makes a socket of `family` with the flags the running driver needs.
Result<int> new_socket(int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | detail::socket_flags(), 0);
  if (fd < 0) return last_error();
  return fd;
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

Socket::Socket() = default;

Socket::Socket(int fd) : h_(std::make_unique<detail::IoHandle>()) {
  h_->fd = fd;
  h_->owner = detail::t_scheduler;
}

Socket::Socket(Socket&&) noexcept = default;

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    h_ = std::move(other.h_);
    read_deadline_ = other.read_deadline_;
    write_deadline_ = other.write_deadline_;
  }
  return *this;
}

Socket::~Socket() { close(); }

void Socket::close() {
  if (h_ != nullptr) detail::io_close(*h_);
}

void Socket::cancel() {
  if (h_ != nullptr) detail::io_cancel(*h_);
}

bool Socket::is_open() const { return h_ != nullptr && h_->fd >= 0; }

int Socket::fd() const { return h_ != nullptr ? h_->fd : -1; }

Result<Address> Socket::local_address() const {
  Address a;
  if (getsockname(fd(), a.data(), a.size_ptr()) != 0) return last_error();
  return a;
}

// --- TcpStream ---------------------------------------------------------------

Result<TcpStream> TcpStream::connect(const Address& to, std::chrono::nanoseconds timeout) {
  Result<int> fd = new_socket(to.family());
  if (!fd) return fd.error();
  TcpStream s(*fd);
  Deadline deadline{};
  if (timeout.count() > 0) {
    deadline = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  }
  detail::IoRequest req{detail::IoKind::kConnect, *fd};
  req.addr = const_cast<sockaddr*>(to.data());
  req.len = to.size();
  int32_t r = run(*s.h_, req, deadline);
  if (r < 0) return detail::errno_code(r);
  return s;
}

Result<size_t> TcpStream::read(std::span<char> buf) {
  if (buf.empty()) return std::errc::invalid_argument;
  if (!is_open()) return std::errc::bad_file_descriptor;
  detail::IoRequest req{detail::IoKind::kRecv, fd()};
  req.buf = buf.data();
  req.len = buf.size();
  int32_t r = run(*h_, req, read_deadline_);
  if (r < 0) return detail::errno_code(r);
  return static_cast<size_t>(r);
}

Result<void> TcpStream::read_exact(std::span<char> buf) {
  while (!buf.empty()) {
    Result<size_t> n = read(buf);
    if (!n) return n.error();
    if (*n == 0) return std::errc::connection_aborted;
    buf = buf.subspan(*n);
  }
  return {};
}

Result<size_t> TcpStream::write(std::span<const char> buf) {
  if (buf.empty()) return size_t{0};
  if (!is_open()) return std::errc::bad_file_descriptor;
  detail::IoRequest req{detail::IoKind::kSend, fd()};
  req.buf = const_cast<char*>(buf.data());
  req.len = buf.size();
  int32_t r = run(*h_, req, write_deadline_);
  if (r < 0) return detail::errno_code(r);
  return static_cast<size_t>(r);
}

Result<void> TcpStream::write_all(std::span<const char> buf) {
  while (!buf.empty()) {
    Result<size_t> n = write(buf);
    if (!n) return n.error();
    buf = buf.subspan(*n);
  }
  return {};
}

Result<void> TcpStream::shutdown(int how) {
  if (::shutdown(fd(), how) != 0) return last_error();
  return {};
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
  Result<int> fd = new_socket(at.family());
  if (!fd) return fd.error();
  TcpListener l;
  static_cast<Socket&>(l) = Socket(*fd);
  int one = 1;
  setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (options.reuse_port && setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return last_error();
  }
  if (::bind(*fd, at.data(), at.size()) != 0) return last_error();
  if (::listen(*fd, options.backlog) != 0) return last_error();
  return l;
}

Result<TcpStream> TcpListener::accept(Address* peer) {
  if (!is_open()) return std::errc::bad_file_descriptor;
  Address scratch;
  Address* a = peer != nullptr ? peer : &scratch;
  *a->size_ptr() = sizeof(sockaddr_storage);
  detail::IoRequest req{detail::IoKind::kAccept, fd()};
  req.addr = a->data();
  req.addrlen = a->size_ptr();
  int32_t r = run(*h_, req, read_deadline_);
  if (r < 0) return detail::errno_code(r);
  return TcpStream(r);
}

}  // namespace fiber
