// park_memory: how much resident memory a parked fiber costs.
//
// Usage: park_memory [fibers]   (default 1000000)
//
// Spawns `fibers` fibers on one scheduler, each parked on a shared WaitGroup,
// and prints the growth of the process's RSS (VmRSS) divided by the number of
// fibers:
//   fibers=N rss_before_kib=... rss_after_kib=... rss_per_fiber_bytes=...
// Each live fiber holds 2 memory maps (its stack and the stack's guard page), so
// N fibers need vm.max_map_count >= 2N plus a margin. When the limit is lower
// the program raises it if it runs as root, else says what to run and exits 2.
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>

#include "fiber/fiber.h"

namespace {

constexpr int64_t kDefaultFibers = 1000000;
// Maps beyond the fibers' own: the program, its libraries, the runtime's threads.
constexpr int64_t kMapMargin = 65536;

// read_vm_rss_kib() is VmRSS from /proc/self/status, in KiB, or -1.
int64_t read_vm_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

int64_t read_max_map_count() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  int64_t value = -1;
  in >> value;
  return in ? value : -1;
}

// ensure_max_map_count() makes vm.max_map_count at least `needed`; returns false
// (after saying why and what to run) when it cannot.
bool ensure_max_map_count(int64_t needed) {
  int64_t current = read_max_map_count();
  if (current < 0) {
    std::fprintf(stderr, "park_memory: cannot read /proc/sys/vm/max_map_count\n");
    return false;
  }
  if (current >= needed) return true;
  if (geteuid() != 0) {
    std::fprintf(stderr,
                 "park_memory: vm.max_map_count = %" PRId64 " is too small: %" PRId64
                 " fibers need at least %" PRId64
                 " (2 maps per fiber + margin).\n"
                 "Run as root, or raise it first:\n"
                 "  sudo sysctl -w vm.max_map_count=%" PRId64 "\n",
                 current, needed > kMapMargin ? (needed - kMapMargin) / 2 : 0, needed, needed);
    return false;
  }
  FILE* f = std::fopen("/proc/sys/vm/max_map_count", "w");
  bool ok = f != nullptr && std::fprintf(f, "%" PRId64 "\n", needed) > 0;
  int err = errno;
  if (f != nullptr && std::fclose(f) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok || read_max_map_count() < needed) {
    std::fprintf(stderr,
                 "park_memory: cannot raise vm.max_map_count from %" PRId64 " to %" PRId64
                 ": %s\nRaise it by hand:\n  sysctl -w vm.max_map_count=%" PRId64 "\n",
                 current, needed, std::strerror(err), needed);
    return false;
  }
  std::fprintf(stderr, "park_memory: raised vm.max_map_count from %" PRId64 " to %" PRId64 "\n",
               current, needed);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = kDefaultFibers;
  if (argc > 2) {
    std::fprintf(stderr, "usage: %s [fibers]\n", argv[0]);
    return 2;
  }
  if (argc == 2) {
    char* end = nullptr;
    errno = 0;
    n = std::strtoll(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || n <= 0) {
      std::fprintf(stderr, "park_memory: bad fiber count '%s' (want a positive integer)\n",
                   argv[1]);
      return 2;
    }
  }
  if (!ensure_max_map_count(2 * n + kMapMargin)) return 2;

  fiber::Options opts;
  opts.schedulers = 1;
  try {
    return fiber::run(
        [n] {
          fiber::WaitGroup gate;      // every fiber parks on it
          fiber::WaitGroup parked;    // each fiber's done() just before parking on gate
          fiber::WaitGroup finished;  // each fiber's done() once released

          const int64_t rss_before = read_vm_rss_kib();
          gate.add(1);
          parked.add(n);
          finished.add(n);
          for (int64_t i = 0; i < n; ++i) {
            fiber::go([&] {
              parked.done();
              gate.wait();
              finished.done();
            });
          }
          // One scheduler: once main runs again after the last done(), that
          // fiber has gone on to park on gate. The yields are belt and braces.
          parked.wait();
          for (int i = 0; i < 3; ++i) fiber::yield();
          const int64_t rss_after = read_vm_rss_kib();

          std::printf("fibers=%" PRId64 " rss_before_kib=%" PRId64 " rss_after_kib=%" PRId64
                      " rss_per_fiber_bytes=%" PRId64 "\n",
                      n, rss_before, rss_after, (rss_after - rss_before) * 1024 / n);
          std::fflush(stdout);

          gate.done();
          finished.wait();
          return 0;
        },
        opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "park_memory: %s\n", e.what());
    return 1;
  }
}
