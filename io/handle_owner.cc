#include "fiber/detail/handle_owner.h"

#include <utility>

#include "driver/internal/io.h"

namespace fiber::detail {

HandleOwner::HandleOwner() = default;

HandleOwner::HandleOwner(int fd) : h_(std::make_unique<IoHandle>(fd)) {}

HandleOwner::HandleOwner(HandleOwner&&) noexcept = default;

HandleOwner& HandleOwner::operator=(HandleOwner&& other) noexcept {
  if (this != &other) {
    close();
    h_ = std::move(other.h_);
  }
  return *this;
}

HandleOwner::~HandleOwner() { close(); }

void HandleOwner::close() {
  if (h_ != nullptr) io_close(*h_);
}

void HandleOwner::cancel() {
  if (h_ != nullptr) io_cancel(*h_);
}

bool HandleOwner::is_open() const { return h_ != nullptr && h_->fd >= 0; }

int HandleOwner::fd() const { return h_ != nullptr ? h_->fd : -1; }

}  // namespace fiber::detail
