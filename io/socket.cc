#include "fiber/socket.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <system_error>
#include <utility>

#include "driver/internal/io.h"
#include "fiber/cancellation.h"
#include "socket_ops.h"

namespace fiber {
namespace {

// poll_fd() parks until `h` is ready for `events` (POLLIN or POLLOUT).
Result<void> poll_fd(detail::IoHandle& h, int events, Deadline deadline) {
  detail::IoRequest req{detail::IoKind::kPoll, h.fd};
  req.flags = events;
  int32_t r = detail::run_op(h, req, deadline);
  if (r < 0) return detail::errno_code(r);
  return {};
}

}  // namespace

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
  if (getsockname(fd(), a.data(), a.size_ptr()) != 0) return detail::errno_error();
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

}  // namespace fiber
