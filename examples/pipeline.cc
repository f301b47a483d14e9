// pipeline: a generator feeds numbers to N workers spread over every core, which
// square them and pass the results to a collector; closing each stage's channel
// tells the next one that the stream ended. The Go twin:
//
//   gen := make(chan int); results := make(chan int)
//   go func() { for i := 1; i <= n; i++ { gen <- i }; close(gen) }()
//   var wg sync.WaitGroup
//   for w := 0; w < workers; w++ {
//     wg.Add(1)
//     go func() { defer wg.Done(); for v := range gen { results <- v * v } }()
//   }
//   go func() { wg.Wait(); close(results) }()
//   sum := 0; for r := range results { sum += r }
#include <cstdint>
#include <cstdio>
#include <memory>

#include "fiber/fiber.h"

int main() {
  return fiber::run([] {
    constexpr int64_t n = 100000;
    const unsigned workers = 2 * fiber::scheduler_count();
    auto gen = *fiber::Chan<int64_t>::make(64);
    auto results = *fiber::Chan<int64_t>::make(64);

    fiber::go([gen] {
      for (int64_t i = 1; i <= n; ++i) (void)gen.send(i);
      (void)gen.close();
    });

    auto wg = std::make_shared<fiber::WaitGroup>();
    for (unsigned w = 0; w < workers; ++w) {
      wg->add(1);
      fiber::go_on(w % fiber::scheduler_count(), [gen, results, wg] {
        while (auto v = gen.recv()) (void)results.send(*v * *v);
        wg->done();
      });
    }
    fiber::go([results, wg] {
      wg->wait();
      (void)results.close();
    });

    int64_t sum = 0;
    while (auto r = results.recv()) sum += *r;
    const int64_t want = n * (n + 1) * (2 * n + 1) / 6;
    std::printf("sum of squares 1..%lld = %lld (%s)\n", static_cast<long long>(n),
                static_cast<long long>(sum), sum == want ? "ok" : "WRONG");
    return sum == want ? 0 : 1;
  });
}
