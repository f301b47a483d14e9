// sleepers: 100,000 fibers each sleep 10 ms; the main fiber waits for all of
// them with a WaitGroup. Prints how long it took and which driver ran.
#include <chrono>
#include <cstdio>

#include "fiber/fiber.h"

int main() {
  return fiber::run([] {
    auto start = std::chrono::steady_clock::now();
    fiber::WaitGroup wg;
    for (int i = 0; i < 100000; ++i) {
      wg.add(1);
      fiber::go([&wg] {
        fiber::sleep_for(std::chrono::milliseconds(10));
        wg.done();
      });
    }
    wg.wait();  // parks the main fiber, not the thread
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    std::printf("100000 fibers slept 10 ms each in %lld ms on %u schedulers (%s)\n",
                static_cast<long long>(ms), fiber::scheduler_count(),
                fiber::driver_info().reason.c_str());
    return 0;
  });
}
