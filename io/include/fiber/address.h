// Address is an IPv4 or IPv6 socket address; resolve() turns "host:port" into
// addresses, names included.
//
// Threading: Address is a plain value. resolve() is fiber-only (it parks the
// caller while getaddrinfo runs on the blocking pool).
//
// Example:
//   auto a = fiber::Address::parse("127.0.0.1:9000");  // numeric: no lookup
//   auto all = fiber::resolve("example.com:http");      // Result<std::vector<Address>>
//   if (!all) return all.error();                       // resolver_category() or errno
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fiber/result.h"

namespace fiber {

class Address {
 public:
  Address() = default;
  // parse() reads "1.2.3.4:80" or "[::1]:80" (numeric hosts only; see
  // resolve() for names). Fails with std::errc::invalid_argument.
  static Result<Address> parse(std::string_view host_port);

  uint16_t port() const;
  std::string to_string() const;
  const sockaddr* data() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const { return size_; }
  socklen_t* size_ptr() { return &size_; }
  int family() const { return storage_.ss_family; }

 private:
  sockaddr_storage storage_ = {};
  socklen_t size_ = sizeof(sockaddr_storage);
};

// resolve() turns "host:port" into addresses, with getaddrinfo(3) on the
// spawn_blocking() pool (numeric hosts skip it). The port may be a number or a
// service name; the host may be bracketed ("[::1]:80"). A malformed argument
// is std::errc::invalid_argument; an unknown host or service is a resolver
// error (resolver_category(), e.g. EAI_NONAME), as is a name with no IPv4 or
// IPv6 address; EAI_SYSTEM comes back as its errno. Fiber-only: parks the
// caller.
Result<std::vector<Address>> resolve(std::string_view host_port);

// resolver_category() is the category of getaddrinfo's errors (EAI_* codes).
const std::error_category& resolver_category();

}  // namespace fiber
