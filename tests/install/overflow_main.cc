// A user's 64 KiB frame on a 16 KiB fiber stack, among fibers whose stacks
// hold canaries. Built against the installed package, it must die with the
// runtime's report, "fiber stack overflow: fiber N used all of its 16384-byte
// stack ...": the package passes -fstack-clash-protection, so the frame probes
// its pages top down and faults on the guard page below the stack.
//
// Without the flag nothing touches the guard page: the frame's far end lands
// some 44 KiB below it, in whatever the kernel mapped there. The fibers all have
// 16 KiB stacks and are spawned in a row, so past the first few (put in gaps
// between the shared libraries) their stacks lie one below the other, and the
// far end usually falls on the third neighbour's canary. As that is the
// kernel's choice, the program never exits 0 without the report: it exits 3 if
// a canary was overwritten, 4 if the write landed elsewhere (a library's data,
// say), or dies of the stray write (a bare SIGSEGV, on a read-only mapping).
#include <cstdint>
#include <cstdio>
#include <vector>

#include "fiber/fiber.h"

namespace {

constexpr size_t kStackBytes = 16 * 1024;
constexpr size_t kFrameBytes = 64 * 1024;
constexpr int kFibers = 32;  // kept alive together
constexpr int kBig = 16;     // the one that calls the big frame
constexpr size_t kCanaryWords = 12 * 1024 / sizeof(uint64_t);
constexpr uint64_t kCanary = 0x5a5a'c0de'5a5a'c0deULL;

// g_far_end is the index big_frame() writes: 0, the array's far end, but read at
// run time, so that no compiler can shrink the array to the one element it sees
// used (clang -O2 does that to a volatile array written at a constant index).
volatile size_t g_far_end = 0;

// big_frame() writes the far (lowest) end of a 64 KiB local array first, as a
// function that fills a buffer from its start does. noinline keeps the frame
// this function's own.
[[gnu::noinline]] char big_frame() {
  volatile char buf[kFrameBytes];
  const size_t i = g_far_end;
  buf[i] = 1;
  return buf[i];
}

}  // namespace

int main() {
  fiber::Options options;
  options.schedulers = 1;
  return fiber::run(
      [] {
        fiber::SpawnOptions small;
        small.stack_size = kStackBytes;
        fiber::WaitGroup filled;  // neighbours whose canaries are in place
        auto done = *fiber::Chan<int>::make();
        std::vector<fiber::JoinHandle<size_t>> fibers;
        for (int i = 0; i < kFibers; ++i) {
          if (i == kBig) {
            fibers.push_back(fiber::spawn(small, [&] {
              filled.wait();
              std::fprintf(stderr, "fiber %llu, on a %zu-byte stack, calls a %zu-byte frame\n",
                           static_cast<unsigned long long>(fiber::current_id()), kStackBytes,
                           kFrameBytes);
              big_frame();
              done.close();
              return size_t{0};
            }));
            continue;
          }
          filled.add(1);
          fibers.push_back(fiber::spawn(small, [&] {
            volatile uint64_t canary[kCanaryWords];
            for (size_t w = 0; w < kCanaryWords; ++w) canary[w] = kCanary;
            filled.done();
            done.recv();
            size_t overwritten = 0;
            for (size_t w = 0; w < kCanaryWords; ++w) overwritten += canary[w] != kCanary;
            return overwritten;
          }));
        }
        size_t overwritten = 0;
        for (auto& f : fibers) overwritten += f.join();
        if (overwritten > 0) {
          std::fprintf(stderr,
                       "no overflow report: the frame jumped over the guard page and silently "
                       "overwrote %zu canary word(s) on a neighbouring fiber's stack\n",
                       overwritten);
          return 3;
        }
        std::fprintf(stderr,
                     "no overflow report: the frame jumped over the guard page and its write "
                     "landed outside the canaries\n");
        return 4;
      },
      options);
}
