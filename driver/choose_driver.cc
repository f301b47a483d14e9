// Choosing the driver at run time, with a reason a person can act on.
#include "driver/internal/choose_driver.h"

#include <liburing.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

#if FIBER_FAULT_INJECTION
#include <optional>

#include "driver/testing/fault_poller.h"
#endif

namespace fiber::detail {
namespace {

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return line;
}

std::string seccomp_mode() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Seccomp:", 0) == 0) {
      size_t i = line.find_first_not_of(" \t", 8);
      return i == std::string::npos ? "" : line.substr(i);
    }
  }
  return "";
}

// explain_setup_error() turns io_uring_setup's errno into the likely cause.
std::string explain_setup_error(int err) {
  switch (err) {
    case ENOSYS:
      return "the kernel has no io_uring (io_uring_setup: ENOSYS; kernel before 5.1 or built "
             "without CONFIG_IO_URING)";
    case EPERM:
    case EACCES: {
      std::string disabled = read_first_line("/proc/sys/kernel/io_uring_disabled");
      if (disabled == "2") {
        return "kernel.io_uring_disabled = 2: io_uring is disabled for every process";
      }
      if (disabled == "1") {
        return "kernel.io_uring_disabled = 1: only CAP_SYS_ADMIN and members of "
               "kernel.io_uring_group may create rings";
      }
      if (seccomp_mode() == "2") {
        return "a seccomp filter denies io_uring_setup (Seccomp mode 2 in /proc/self/status, "
               "e.g. a container's default profile)";
      }
      return std::string("io_uring_setup was denied (") + std::strerror(err) +
             ") by a security policy (seccomp or an LSM)";
    }
    case ENOMEM: {
      struct rlimit rl = {};
      getrlimit(RLIMIT_MEMLOCK, &rl);
      return "not enough memory for the rings: RLIMIT_MEMLOCK is " + std::to_string(rl.rlim_cur) +
             " bytes (kernels before 5.12 charge rings to it; raise `ulimit -l`)";
    }
    default:
      return std::string("io_uring_setup failed: ") + std::strerror(err);
  }
}

// probe_io_uring() creates and destroys a small ring the way the schedulers
// will; on failure it returns false and says why.
bool probe_io_uring(std::string* why_not) {
  struct io_uring ring;
  struct io_uring_params params = {};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int ret = io_uring_queue_init_params(8, &ring, &params);
  if (ret == -EINVAL) {  // kernel before 6.1: no SINGLE_ISSUER / DEFER_TASKRUN
    params = {};
    ret = io_uring_queue_init_params(8, &ring, &params);
  }
  if (ret < 0) {
    *why_not = explain_setup_error(-ret);
    return false;
  }
  bool ok = (params.features & IORING_FEAT_EXT_ARG) != 0;
  io_uring_queue_exit(&ring);
  if (!ok) {
    *why_not = "the kernel's io_uring lacks IORING_FEAT_EXT_ARG (needs Linux 5.11 or newer)";
    return false;
  }
  return true;
}

}  // namespace

DriverInfo choose_driver(DriverKind requested) {
  DriverKind kind = requested;
  std::string forced_by = "Options::driver";
  if (kind == DriverKind::kAuto) {
    const char* env = std::getenv("FIBER_DRIVER");
    std::string value = env != nullptr ? env : "";
    forced_by = "FIBER_DRIVER=" + value;
    if (value == "io_uring" || value == "uring") {
      kind = DriverKind::kIoUring;
    } else if (value == "epoll") {
      kind = DriverKind::kEpoll;
    } else if (!value.empty() && value != "auto") {
      throw std::invalid_argument("fiber: FIBER_DRIVER is '" + value +
                                  "'; expected io_uring, epoll or auto");
    }
  }
  if (kind == DriverKind::kEpoll) return {DriverKind::kEpoll, "epoll: forced by " + forced_by};
  std::string why_not;
  if (probe_io_uring(&why_not)) {
    if (kind == DriverKind::kIoUring) {
      return {DriverKind::kIoUring, "io_uring: forced by " + forced_by};
    }
    return {DriverKind::kIoUring, "io_uring: the kernel allows it"};
  }
  if (kind == DriverKind::kIoUring) {
    throw std::system_error(
        std::make_error_code(std::errc::function_not_supported),
        "fiber: io_uring was forced by " + forced_by + " but is unavailable: " + why_not);
  }
  return {DriverKind::kEpoll, "epoll: io_uring unavailable: " + why_not};
}

std::unique_ptr<Poller> make_uring_poller(const Options& options);
std::unique_ptr<Poller> make_epoll_poller();

std::unique_ptr<Poller> make_poller(DriverKind kind, const Options& options) {
  std::unique_ptr<Poller> p =
      kind == DriverKind::kIoUring ? make_uring_poller(options) : make_epoll_poller();
#if FIBER_FAULT_INJECTION
  if (std::optional<FaultPlan> plan = active_fault_plan()) {
    p = make_fault_poller(std::move(p), kind, *plan);
  }
#endif
  return p;
}

}  // namespace fiber::detail
