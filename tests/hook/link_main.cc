// The link check of the libc hooks: one scheduler, a 10 ms ticker fiber, and a
// fiber that sits in ::read on a silent pipe until the ticker has ticked three
// times and writes to it. With the hooks (linked, LD_PRELOADed or wrapped in
// statically), the read parks the fiber: exit 0. Without them the read blocks
// the core, the ticker stops, and a watchdog thread writes after 2 s instead:
// exit 1 ("blocked"), which the control build expects. io_uring refused:
// exit 77 (skipped), unless FIBER_REQUIRE_IO_URING=1.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "fiber/fiber.h"

int main() {
  using namespace std::chrono_literals;
  int fds[2];
  if (::pipe(fds) != 0) return 2;
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    auto until = std::chrono::steady_clock::now() + 2s;
    while (!done.load() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(5ms);
    if (!done.load()) (void)!::syscall(SYS_write, fds[1], "w", 1);
  });
  int during = -1;
  try {
    fiber::Options options;
    options.schedulers = 1;
    fiber::run(
        [&] {
          std::atomic<int> ticks{0};
          fiber::WaitGroup wg;
          wg.add(1);
          fiber::go([&] {
            while (ticks.load() < 3) {
              fiber::sleep_for(10ms);
              ticks.fetch_add(1);
            }
            (void)!::write(fds[1], "t", 1);
            wg.done();
          });
          char c = 0;
          (void)!::read(fds[0], &c, 1);
          during = ticks.load();
          done.store(true);
          wg.wait();
        },
        options);
  } catch (const std::system_error& e) {
    done.store(true);
    watchdog.join();
    const char* require = std::getenv("FIBER_REQUIRE_IO_URING");
    std::printf("driver refused: %s\n", e.what());
    return require != nullptr && std::strcmp(require, "1") == 0 ? 2 : 77;
  }
  watchdog.join();
  std::printf("ticks while blocked in read: %d (%s)\n", during, during >= 3 ? "parked" : "blocked");
  return during >= 3 ? 0 : 1;
}
