// A stuck core does not strand new connections: while one scheduler is held by
// a fiber that makes no runtime call, fiber::http::Server has the kernel hand
// new connections to the other core's listener (ServerOptions::
// steer_from_stuck_cores). Each connection below must be answered while the
// core is still stuck: an ordering, not a timing, so a loaded machine cannot
// fail it. The times to first byte are printed, not asserted.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string_view>
#include <vector>

#include "fiber/health.h"
#include "fiber/join_handle.h"
#include "http_test_support.h"

namespace fiber::http::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class HttpStallTest : public fiber::testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(HttpStallTest);

// Holds its core, with no runtime call, until released.
[[gnu::noinline]] void HoldTheCore(const std::atomic<bool>& release) {
  const auto give_up = Clock::now() + 60s;
  while (!release.load(std::memory_order_acquire) && Clock::now() < give_up) {
  }
}

// Waits until scheduler `core` is unresponsive or responsive again, as the
// runtime says.
bool wait_responsive(unsigned core, bool want) {
  const auto give_up = Clock::now() + 30s;
  while (scheduler_responsive(core) != want) {
    if (Clock::now() > give_up) return false;
    fiber::sleep_for(1ms);
  }
  return true;
}

// first_byte() sends one request and returns the time to the first byte of
// the answer, or a negative duration if none came within 5 s.
Clock::duration first_byte(const TestServer& s) {
  const auto start = Clock::now();
  auto c = TcpStream::connect(s.addr(), 5s);
  if (!c) return -1ns;
  c->set_read_deadline(Clock::now() + 5s);
  std::string_view req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (!c->write_all({req.data(), req.size()})) return -1ns;
  char b;
  auto n = c->read({&b, 1});
  if (!n || *n != 1) return -1ns;
  return Clock::now() - start;
}

TEST_P(HttpStallTest, NewConnectionsAreAnsweredByTheOtherCoreWhileOneIsStuck) {
  constexpr int kConnections = 100;
  std::vector<Clock::duration> ttfb;
  bool answered_while_stuck = false;
  run(
      [&] {
        TestServer s;
        std::atomic<bool> release{false};
        auto holder = fiber::spawn_on(1, [&] { HoldTheCore(release); });
        ASSERT_TRUE(wait_responsive(1, false));
        for (int i = 0; i < kConnections; ++i) ttfb.push_back(first_byte(s));
        answered_while_stuck = !scheduler_responsive(1);
        release.store(true, std::memory_order_release);
        holder.join();
        EXPECT_TRUE(wait_responsive(1, true));
        // Steering is undone: both cores answer again (the kernel's hash
        // spreads 50 connections over both with near certainty).
        for (int i = 0; i < 50; ++i) EXPECT_GT(first_byte(s).count(), 0);
      },
      options(2));
  EXPECT_TRUE(answered_while_stuck);
  ASSERT_EQ(ttfb.size(), static_cast<size_t>(kConnections));
  EXPECT_EQ(std::count_if(ttfb.begin(), ttfb.end(), [](auto d) { return d.count() < 0; }), 0)
      << "connections not answered while core 1 was stuck";
  std::sort(ttfb.begin(), ttfb.end());
  auto us = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  };
  std::printf("time to first byte while core 1 is stuck: p50 %lld us, p99 %lld us\n",
              static_cast<long long>(us(ttfb[kConnections / 2])),
              static_cast<long long>(us(ttfb[kConnections * 99 / 100])));
}

}  // namespace
}  // namespace fiber::http::testing
