// Micro benchmarks of channels and select. As in runtime_bench.cc, each
// benchmark runs its timed loop in the main fiber of a fiber::run(); helper
// fibers end when their channel closes, and the main fiber waits for them.
//
// Run: chan_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include "fiber/fiber.h"

namespace {

fiber::Options with_schedulers(unsigned n) {
  fiber::Options opts;
  opts.schedulers = n;
  opts.stall_threshold = std::chrono::nanoseconds(0);  // timed loops hold the core by design
  return opts;
}

// PingPong: the measuring fiber sends on `ping` (unbuffered) and receives the
// echo on `pong`; the echo fiber runs on scheduler `echo_core`. One iteration is
// one round trip: two hand-offs, each parking one fiber and waking the other.
void PingPong(benchmark::State& state, unsigned schedulers, unsigned echo_core) {
  fiber::run(
      [&] {
        auto ping = *fiber::Chan<int64_t>::make(0);
        auto pong = *fiber::Chan<int64_t>::make(0);
        auto echo = fiber::spawn_on(echo_core, [ping, pong] {
          while (auto v = ping.recv()) (void)pong.send(*v);
        });
        int64_t i = 0;
        for (auto _ : state) {
          (void)ping.send(i++);
          benchmark::DoNotOptimize(pong.recv());
        }
        (void)ping.close();
        echo.join();
      },
      with_schedulers(schedulers));
}

// BM_ChanPingPongOneCore: both fibers on one scheduler (compare with Go's
// unbuffered ping-pong at GOMAXPROCS=1).
void BM_ChanPingPongOneCore(benchmark::State& state) { PingPong(state, 1, 0); }
BENCHMARK(BM_ChanPingPongOneCore)->UseRealTime();

// BM_ChanPingPongTwoCores: the echo fiber on the other scheduler; every hand-off
// crosses cores through the inbox (and the doorbell when the other core sleeps).
void BM_ChanPingPongTwoCores(benchmark::State& state) { PingPong(state, 2, 1); }
BENCHMARK(BM_ChanPingPongTwoCores)->UseRealTime();

// BM_SelectTwoReadyChannels: an uncontended select over two buffered channels
// that always hold a value; the chosen one is refilled with try_send (included in
// the time: one uncontended lock/unlock).
void BM_SelectTwoReadyChannels(benchmark::State& state) {
  fiber::run(
      [&] {
        auto a = *fiber::Chan<int64_t>::make(1);
        auto b = *fiber::Chan<int64_t>::make(1);
        (void)a.try_send(1);
        (void)b.try_send(2);
        for (auto _ : state) {
          int idx = fiber::select(fiber::on_recv(a), fiber::on_recv(b));
          (void)(idx == 0 ? a : b).try_send(idx);
        }
      },
      with_schedulers(1));
}
BENCHMARK(BM_SelectTwoReadyChannels)->UseRealTime();

// BM_SelectTwoChannelsDefault: a select over two empty channels with a default
// case: the non-blocking poll of both.
void BM_SelectTwoChannelsDefault(benchmark::State& state) {
  fiber::run(
      [&] {
        auto a = *fiber::Chan<int64_t>::make(1);
        auto b = *fiber::Chan<int64_t>::make(1);
        for (auto _ : state) {
          benchmark::DoNotOptimize(
              fiber::select(fiber::on_recv(a), fiber::on_recv(b), fiber::on_default()));
        }
      },
      with_schedulers(1));
}
BENCHMARK(BM_SelectTwoChannelsDefault)->UseRealTime();

// BM_BufferedSendRecv: try_send then try_recv on a buffered channel, one fiber:
// the cost of the channel itself without any switch.
void BM_BufferedSendRecv(benchmark::State& state) {
  fiber::run(
      [&] {
        auto ch = *fiber::Chan<int64_t>::make(64);
        for (auto _ : state) {
          (void)ch.try_send(1);
          benchmark::DoNotOptimize(ch.try_recv());
        }
      },
      with_schedulers(1));
}
BENCHMARK(BM_BufferedSendRecv)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
