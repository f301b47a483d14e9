// Result<T> is the return type of every I/O call: a value or a std::error_code,
// in the shape of C++23's std::expected (which Debian 12's clang cannot compile).
// I/O calls never throw; conditions the runtime makes reuse errno values, so
// `r.error() == std::errc::timed_out` holds whoever produced the error.
//
// Example:
//   fiber::Result<size_t> n = conn.read(buf);
//   if (!n) return n.error();      // std::error_code
//   if (*n == 0) return {};        // end of stream
#pragma once

#include <cerrno>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

namespace fiber {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}             // NOLINT: implicit, as std::expected
  Result(std::error_code error) : error_(error) {}          // NOLINT
  Result(std::errc e) : error_(std::make_error_code(e)) {}  // NOLINT

  bool has_value() const { return value_.has_value(); }
  explicit operator bool() const { return has_value(); }

  // value() returns the value; throws std::system_error if there is none (a
  // programming error: check first).
  T& value() & {
    check();
    return *value_;
  }
  T&& value() && {
    check();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T& operator*() const& {
    check();
    return *value_;
  }

  // error() is the error; a default (success) error_code when there is a value.
  std::error_code error() const { return error_; }

 private:
  void check() const {
    if (!value_) throw std::system_error(error_, "fiber::Result: no value");
  }

  std::optional<T> value_;
  std::error_code error_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(std::error_code error) : error_(error) {}          // NOLINT
  Result(std::errc e) : error_(std::make_error_code(e)) {}  // NOLINT

  bool has_value() const { return !error_; }
  explicit operator bool() const { return has_value(); }
  std::error_code error() const { return error_; }

 private:
  std::error_code error_;
};

namespace detail {
// errno_result() turns a driver result (>= 0, or -errno) into a Result.
inline std::error_code errno_code(int32_t negative_errno) {
  return std::error_code(-negative_errno, std::generic_category());
}
}  // namespace detail

}  // namespace fiber
