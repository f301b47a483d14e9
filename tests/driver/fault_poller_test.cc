// The fault-injecting driver itself, on both drivers: the plan syntax, faults
// that must not change any result (short, EAGAIN, EINTR, delays) even when every
// chance is taken, the bound on faults in a row, and the two faults the user
// sees (ECONNRESET after a real reset, ENOBUFS).
#include "driver/testing/fault_poller.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"
#include "tests/support/settle.h"

namespace fiber {
namespace {

using detail::FaultKind;
using detail::FaultPlan;

class FaultPollerTest : public testing::DriverTest {
 protected:
  // with_plan() runs the following runtimes under `text`, counters zeroed.
  void with_plan(const std::string& text) {
    detail::set_fault_plan(FaultPlan::parse(text));
    detail::reset_fault_counts();
  }
  void TearDown() override { detail::set_fault_plan(std::nullopt); }
};
FIBER_INSTANTIATE_DRIVER_TESTS(FaultPollerTest);

std::vector<char> pattern(size_t n) {
  std::vector<char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 2654435761u) >> 9);
  return v;
}

// connected() is (accepted side, connecting side) of a loopback TCP connection.
std::pair<TcpStream, TcpStream> connected(TcpListener& ln) {
  auto client = spawn([at = *ln.local_address()] { return TcpStream::connect(at); });
  auto server = ln.accept();
  auto conn = client.join();
  EXPECT_TRUE(server) << server.error().message();
  EXPECT_TRUE(conn) << conn.error().message();
  if (!server || !conn) return {};
  return {std::move(*server), std::move(*conn)};
}

TEST(FaultPlanTest, ParsesEveryKindAndRejectsBadItems) {
  FaultPlan p = FaultPlan::parse(
      "seed=7,short=0.3,eagain=0.1,eintr=0.05,delay=0.1,reorder=0.1,spurious=0.2,reset=0.01,"
      "nobufs=0.02,busy=0.5,max=2");
  EXPECT_EQ(p.seed, 7u);
  EXPECT_EQ(p.max_consecutive, 2);
  EXPECT_DOUBLE_EQ(p[FaultKind::kShort], 0.3);
  EXPECT_DOUBLE_EQ(p[FaultKind::kBusy], 0.5);
  EXPECT_DOUBLE_EQ(p[FaultKind::kNobufs], 0.02);
  FaultPlan again = FaultPlan::parse(p.to_string());
  EXPECT_EQ(again.to_string(), p.to_string());
  for (const char* bad :
       {"short=2", "short=-0.1", "short=x", "shorts=0.1", "seed=", "seed=1x", "max=0", "eintr"}) {
    EXPECT_THROW(FaultPlan::parse(bad), std::invalid_argument) << bad;
  }
}

TEST_P(FaultPollerTest, DataIsIntactWhenEveryChanceIsAFault) {
  // Every operation is faulted as often as the bound allows: it still
  // completes, and the bytes arrive whole and in order.
  with_plan("seed=1,short=1,eagain=0.5,eintr=0.5,delay=1,reorder=1,spurious=1,busy=1,max=3");
  const std::vector<char> sent = pattern(200000);
  run(
      [&] {
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        auto [server, client] = connected(*ln);
        auto writer = spawn([&, c = &client] {
          EXPECT_TRUE(c->write_all(sent));
          EXPECT_TRUE(c->shutdown(SHUT_WR));
        });
        std::vector<char> got;
        char buf[3000];
        for (;;) {
          auto n = server.read(buf);
          ASSERT_TRUE(n) << n.error().message();
          if (*n == 0) break;
          got.insert(got.end(), buf, buf + *n);
        }
        writer.join();
        EXPECT_TRUE(got == sent);
      },
      options());
  detail::FaultCounts c = detail::fault_counts();
  for (FaultKind k :
       {FaultKind::kShort, FaultKind::kEagain, FaultKind::kEintr, FaultKind::kDelay}) {
    EXPECT_GT(c[k], 0u) << detail::fault_kind_name(k);
  }
  if (GetParam() == DriverKind::kIoUring) {
    EXPECT_GT(c[FaultKind::kBusy], 0u);
  }
}

TEST_P(FaultPollerTest, ResetBreaksTheConnectionForReal) {
  with_plan("seed=2,reset=1");
  run(
      [&] {
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        auto [server, client] = connected(*ln);
        auto w = client.write_all(std::string_view("lost"));
        ASSERT_FALSE(w);
        EXPECT_EQ(w.error(), std::errc::connection_reset);
        // The peer agrees: its socket was reset (read without the injector).
        char buf[8];
        ssize_t n = ::recv(server.fd(), buf, sizeof buf, MSG_DONTWAIT);
        EXPECT_EQ(n, -1);
        EXPECT_EQ(errno, ECONNRESET);
      },
      options());
  EXPECT_GT(detail::fault_counts()[FaultKind::kReset], 0u);
}

TEST_P(FaultPollerTest, NobufsReachesTheSender) {
  with_plan("seed=3,nobufs=1");
  run(
      [&] {
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        auto [server, client] = connected(*ln);
        auto w = client.write(std::string_view("x"));
        ASSERT_FALSE(w);
        EXPECT_EQ(w.error(), std::errc::no_buffer_space);
      },
      options());
  EXPECT_GT(detail::fault_counts()[FaultKind::kNobufs], 0u);
}

TEST_P(FaultPollerTest, CancelEndsAReadBeingRetried) {
  // Every attempt of the read fails with EINTR or EAGAIN until the bound; a
  // cancel from another fiber must still end it, not a retry.
  with_plan("seed=4,eintr=0.5,eagain=0.5,spurious=1,max=100");
  run(
      [&] {
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        auto [server, client] = connected(*ln);
        auto reader = spawn([c = &client] {
          char buf[16];
          return c->read(buf).error();
        });
        for (int i = 0; i < 10; ++i) yield();
        client.cancel();
        EXPECT_EQ(reader.join(), std::errc::operation_canceled);
      },
      options());
}

TEST_P(FaultPollerTest, ACancelWhileAReadinessWaitCompletesEndsTheRead) {
  // The read gets EAGAIN and waits for readiness; the byte that makes the
  // socket readable arrives and the wait completes, but its wake-up is held.
  // Meanwhile the read is cancelled and someone else takes the byte. The read
  // must end cancelled, not try again and wait for a byte that never comes.
  with_plan("seed=5,eagain=1,delay=1,max=3");
  run(
      [&] {
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        auto [server, client] = connected(*ln);
        auto reader = spawn([c = &client] {
          char buf[1];
          return c->read(buf).error();
        });
        testing::settle();  // parked in its readiness wait
        const uint64_t delays = detail::fault_counts()[FaultKind::kDelay];
        ASSERT_TRUE(::send(server.fd(), "x", 1, MSG_NOSIGNAL) == 1);
        while (detail::fault_counts()[FaultKind::kDelay] == delays) yield();  // wait done, held
        client.cancel();
        char byte;
        EXPECT_EQ(::recv(client.fd(), &byte, 1, MSG_DONTWAIT), 1);
        EXPECT_EQ(reader.join(), std::errc::operation_canceled);
      },
      options());
}

}  // namespace
}  // namespace fiber
