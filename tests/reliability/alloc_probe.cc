// alloc_probe: a small program for tools/ci/alloc_faults.sh (RELIABILITY.md
// T39), which runs it with mmap() failing at the Nth call of each thread. It
// starts a two-scheduler runtime, makes channels and spawns fibers on both
// schedulers (locally, across cores and joinable), passing values through the
// channels.
//
// Run with --stop-first, it stops itself first so that strace can attach with
// its system-call counts at zero: the dynamic loader's own mmap()s are not
// counted.
//
// Exit status: 0 when everything ran; 3 when the runtime reported a failure
// (an exception caught here, its message printed as "alloc_probe: error: ...").
// Anything else (a signal, a hang) is a bug in the runtime.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <vector>

#include "fiber/fiber.h"

namespace {

constexpr int kRounds = 40;

int probe() {
  fiber::Options o;
  o.schedulers = 2;
  return fiber::run(
      [] {
        int sum = 0;
        for (int i = 0; i < kRounds; ++i) {
          // A buffer big enough for malloc to map it on its own (at first).
          auto made = fiber::Chan<int>::make(64 * 1024);
          if (!made) throw std::runtime_error("Chan::make refused a valid capacity");
          fiber::Chan<int> ch = *made;
          fiber::WaitGroup wg;
          wg.add(1);
          try {
            fiber::go_on(static_cast<unsigned>(i % 2), [ch, &wg, i] {
              (void)ch.send(i);
              wg.done();
            });
          } catch (...) {
            wg.done();
            throw;
          }
          auto h = fiber::spawn_on(static_cast<unsigned>((i + 1) % 2), [ch] {
            auto r = ch.recv();
            return r ? *r : -1;
          });
          sum += h.join();
          wg.wait();
          // A batch of live local fibers, each with its own stack.
          std::vector<fiber::JoinHandle<int>> hs;
          for (int j = 0; j < 8; ++j) {
            hs.push_back(fiber::spawn([j] {
              fiber::yield();
              return j;
            }));
          }
          for (auto& jh : hs) sum += jh.join();
        }
        return sum;
      },
      o);
}

}  // namespace

int main(int argc, char** argv) {
  // --stop-first: stop (SIGSTOP) before anything else, for a tracer to attach
  // and count system calls from here on, then resume on SIGCONT.
  if (argc > 1 && std::strcmp(argv[1], "--stop-first") == 0) raise(SIGSTOP);
  try {
    int sum = probe();
    const int want = kRounds * (kRounds - 1) / 2 + kRounds * 28;
    if (sum != want) {
      std::fprintf(stderr, "alloc_probe: wrong sum %d, want %d\n", sum, want);
      return 1;
    }
    std::printf("alloc_probe: ok\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "alloc_probe: error: %s\n", e.what());
    return 3;
  }
}
