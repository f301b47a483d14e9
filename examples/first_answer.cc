// first_answer: ask several replicas the same question at once and take the
// first answer; give up after a timeout. The slower replicas are told to stop
// through a context. The Go twin:
//
//   ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
//   defer cancel()
//   answers := make(chan string, len(replicas))
//   for _, r := range replicas { go func() { answers <- r.Ask(ctx, q) }() }
//   select {
//   case a := <-answers: fmt.Println(a)
//   case <-ctx.Done():   fmt.Println(ctx.Err())
//   }
#include <chrono>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string>

#include "fiber/fiber.h"

using namespace std::chrono_literals;

// ask() pretends to be a replica that takes `latency` to answer, unless `ctx`
// ends first.
std::string ask(const fiber::Context& ctx, int replica, std::chrono::milliseconds latency) {
  if (fiber::sleep_for(ctx, latency)) return "";  // cancelled: nobody is listening
  return "answer from replica " + std::to_string(replica) + " after " +
         std::to_string(latency.count()) + " ms";
}

int main() {
  return fiber::run([] {
    const std::chrono::milliseconds latencies[] = {40ms, 5ms, 20ms, 80ms};
    auto [ctx, cancel] = fiber::with_timeout(fiber::background(), 50ms);
    // Buffered for every replica, so that late answers never park a sender.
    auto answers = *fiber::Chan<std::string>::make(std::size(latencies));
    for (int r = 0; r < static_cast<int>(std::size(latencies)); ++r) {
      fiber::go_on(r % fiber::scheduler_count(), [ctx = ctx, answers, r, lat = latencies[r]] {
        (void)answers.try_send(ask(ctx, r, lat));
      });
    }
    int status = 0;
    fiber::select(fiber::on_recv(answers,
                                 [](std::optional<std::string> a) {
                                   if (a) std::printf("%s\n", a->c_str());
                                 }),
                  fiber::on_recv(ctx.done(), [&, ctx = ctx](auto) {
                    std::printf("no answer: %s\n", ctx.err().message().c_str());
                    status = 1;
                  }));
    cancel();  // the slower replicas return early
    return status;
  });
}
