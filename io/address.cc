#include "fiber/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fiber/blocking.h"

namespace fiber {

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
