// Test support: every runtime test runs once per driver.
//
//   class FooTest : public fiber::testing::DriverTest {};
//   TEST_P(FooTest, Works) { fiber::run([] { ... }, options(2)); }
//   FIBER_INSTANTIATE_DRIVER_TESTS(FooTest);
//
// The io_uring half skips, saying why, when the kernel refuses io_uring; with
// FIBER_REQUIRE_IO_URING=1 in the environment (as in CI) it fails instead.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <system_error>

#include "driver/internal/choose_driver.h"
#include "fiber/detail/sanitizer.h"
#include "fiber/runtime.h"

namespace fiber::testing {

class DriverTest : public ::testing::TestWithParam<DriverKind> {
 protected:
  void SetUp() override {
    if (GetParam() != DriverKind::kIoUring) return;
    try {
      detail::choose_driver(DriverKind::kIoUring);
    } catch (const std::system_error& e) {
      const char* require = std::getenv("FIBER_REQUIRE_IO_URING");
      if (require != nullptr && std::string(require) == "1") {
        FAIL() << "io_uring is required here but unavailable: " << e.what();
      }
      GTEST_SKIP() << "io_uring unavailable: " << e.what();
    }
  }

  // options() are the runtime options of this test: its driver, n schedulers.
  Options options(unsigned schedulers = 1) const {
    Options o;
    o.driver = GetParam();
    o.schedulers = schedulers;
    return o;
  }
};

inline std::string driver_name(const ::testing::TestParamInfo<DriverKind>& info) {
  return info.param == DriverKind::kIoUring ? "io_uring" : "epoll";
}

}  // namespace fiber::testing

#define FIBER_INSTANTIATE_DRIVER_TESTS(suite)                                        \
  INSTANTIATE_TEST_SUITE_P(                                                          \
      Drivers, suite,                                                                \
      ::testing::Values(::fiber::DriverKind::kIoUring, ::fiber::DriverKind::kEpoll), \
      ::fiber::testing::driver_name)

// Sanitizer builds: TSan needs ~90 KiB per live fiber, so big tests shrink.
// FIBER_SANITIZE reaches tests only through the compiler's own macros, which
// fiber/detail/sanitizer.h reads for gcc and clang alike (clang 14 does not
// define __SANITIZE_THREAD__).
#if defined(FIBER_TSAN)
#define FIBER_TEST_TSAN 1
#endif
