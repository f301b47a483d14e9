// resolve(ctx) and dial(ctx) (fiber/dial.h).
//
// resolve(ctx) runs the lookup in a fiber of its own that posts the answer to a
// channel of capacity 1, and selects on that channel and ctx.done(): an
// abandoned lookup finishes into the channel and is freed with it. dial(ctx)
// connects a socket bound to ctx (Socket::bind_context), so the end of ctx
// cancels the connect in flight; the binding is gone before the stream is
// handed back.
#include "fiber/dial.h"

#include <netinet/in.h>

#include <memory>
#include <string>
#include <utility>

#include "fiber/runtime.h"
#include "fiber/select.h"
#include "socket_ops.h"

namespace fiber {
namespace {

// Dialer reaches TcpStream's handle to connect a socket made beforehand.
class Dialer : public TcpStream {
 public:
  using TcpStream::TcpStream;
  detail::IoHandle& handle() { return *h_; }
};

}  // namespace

Result<std::vector<Address>> resolve(const Context& ctx, std::string_view host_port) {
  if (std::error_code e = ctx.err()) return e;
  if (Result<Address> numeric = Address::parse(host_port)) {
    return std::vector<Address>{*numeric};
  }
  using Answer = std::shared_ptr<Result<std::vector<Address>>>;
  Chan<Answer> answer = *Chan<Answer>::make(1);
  go([answer, name = std::string(host_port)] {
    (void)answer.try_send(std::make_shared<Result<std::vector<Address>>>(resolve(name)));
  });
  Answer got;
  select(on_recv(answer, [&](std::optional<Answer> a) { got = std::move(*a); }),
         on_recv(ctx.done()));
  if (got == nullptr) return ctx.err();
  return std::move(*got);
}

Result<TcpStream> dial(const Context& ctx, std::string_view host_port) {
  Result<std::vector<Address>> addrs = resolve(ctx, host_port);
  if (!addrs) return addrs.error();
  std::error_code last = std::make_error_code(std::errc::host_unreachable);
  for (const Address& a : *addrs) {
    if (std::error_code e = ctx.err()) return e;
    if (a.family() != AF_INET && a.family() != AF_INET6) continue;
    Result<int> fd = detail::new_socket(a.family());
    if (!fd) return fd.error();
    Dialer s(*fd);
    Result<void> r;
    {
      ContextBinding bound = s.bind_context(ctx);
      Deadline deadline{};
      if (std::optional<TimePoint> d = ctx.deadline()) deadline = *d;
      r = detail::connect_fd(s.handle(), a.data(), a.size(), deadline);
    }
    if (r) return TcpStream(std::move(s));
    if (std::error_code e = ctx.err()) return e;  // the context's words, not the socket's
    last = r.error();
  }
  return last;
}

}  // namespace fiber
