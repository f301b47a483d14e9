// context_category(): the messages of a context's err(), as Go words them, with
// errno values underneath so that they compare equal to std::errc codes.
#include <string>
#include <system_error>

#include "fiber/cancellation.h"

namespace fiber {
namespace {

class ContextCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fiber.context"; }
  std::string message(int v) const override {
    switch (static_cast<ContextError>(v)) {
      case ContextError::kCanceled:
        return "context canceled";
      case ContextError::kDeadlineExceeded:
        return "context deadline exceeded";
    }
    return std::generic_category().message(v);
  }
  std::error_condition default_error_condition(int v) const noexcept override {
    return {v, std::generic_category()};
  }
};

}  // namespace

const std::error_category& context_category() {
  static const ContextCategory category;
  return category;
}

}  // namespace fiber
