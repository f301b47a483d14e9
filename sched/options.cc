// Parsing a driver name (fiber/options.h).
#include "fiber/options.h"

namespace fiber {

std::optional<DriverKind> parse_driver(std::string_view name) {
  if (name == "io_uring") return DriverKind::kIoUring;
  if (name == "epoll") return DriverKind::kEpoll;
  if (name == "auto") return DriverKind::kAuto;
  return std::nullopt;
}

}  // namespace fiber
