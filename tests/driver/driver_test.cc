// Choosing the driver: the option, $FIBER_DRIVER, and the fallback to epoll with
// a reason when io_uring is forbidden.
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>

#include "driver/internal/choose_driver.h"
#include "fiber/fiber.h"

namespace fiber {
namespace {

bool io_uring_available() {
  try {
    detail::choose_driver(DriverKind::kIoUring);
    return true;
  } catch (const std::system_error&) {
    return false;
  }
}

TEST(DriverChoice, TheEnvironmentForcesADriverWhenTheOptionIsAuto) {
  setenv("FIBER_DRIVER", "epoll", 1);
  DriverInfo info = run([] { return driver_info(); }, Options{.schedulers = 1});
  EXPECT_EQ(info.kind, DriverKind::kEpoll);
  EXPECT_NE(info.reason.find("FIBER_DRIVER=epoll"), std::string::npos) << info.reason;
  if (io_uring_available()) {
    setenv("FIBER_DRIVER", "io_uring", 1);
    info = run([] { return driver_info(); }, Options{.schedulers = 1});
    EXPECT_EQ(info.kind, DriverKind::kIoUring);
  }
  unsetenv("FIBER_DRIVER");
}

TEST(DriverChoice, TheOptionWinsOverTheEnvironment) {
  setenv("FIBER_DRIVER", "io_uring", 1);
  DriverInfo info =
      run([] { return driver_info(); }, Options{.schedulers = 1, .driver = DriverKind::kEpoll});
  EXPECT_EQ(info.kind, DriverKind::kEpoll);
  EXPECT_NE(info.reason.find("Options::driver"), std::string::npos) << info.reason;
  unsetenv("FIBER_DRIVER");
}

TEST(DriverChoice, AnUnknownDriverNameIsAnError) {
  setenv("FIBER_DRIVER", "kqueue", 1);
  try {
    run([] {});
    ADD_FAILURE() << "run() accepted FIBER_DRIVER=kqueue";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("kqueue"), std::string::npos);
  }
  unsetenv("FIBER_DRIVER");
}

TEST(DriverChoice, AutoPicksIoUringWhenTheKernelAllowsIt) {
  if (!io_uring_available()) GTEST_SKIP() << "io_uring unavailable on this machine";
  unsetenv("FIBER_DRIVER");
  DriverInfo info = run([] { return driver_info(); }, Options{.schedulers = 1});
  EXPECT_EQ(info.kind, DriverKind::kIoUring);
}

// deny_io_uring_setup() installs a seccomp filter that fails io_uring_setup with
// EPERM, as a container's default profile does.
void deny_io_uring_setup() {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) std::_Exit(3);
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) std::_Exit(4);
}

TEST(DriverChoiceDeathTest, ForbiddenIoUringFallsBackToEpollAndSaysWhy) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  unsetenv("FIBER_DRIVER");
  EXPECT_EXIT(
      {
        deny_io_uring_setup();
        DriverInfo info = run([] { return driver_info(); }, Options{.schedulers = 1});
        std::fprintf(stderr, "%s\n", info.reason.c_str());
        std::exit(info.kind == DriverKind::kEpoll ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "epoll: io_uring unavailable: .*seccomp");
}

TEST(DriverChoiceDeathTest, ForcingAForbiddenIoUringIsAClearError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        deny_io_uring_setup();
        try {
          run([] {}, Options{.schedulers = 1, .driver = DriverKind::kIoUring});
        } catch (const std::system_error& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::exit(0);
        }
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "io_uring was forced by Options::driver but is unavailable");
}

}  // namespace
}  // namespace fiber
