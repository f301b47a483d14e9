// Tiny io_uring rings (RELIABILITY.md T19, T20): a completion queue that
// overflows into the kernel's backlog, and a submission queue much smaller than
// the operations in flight. These run on io_uring only, by nature: epoll has no
// rings to size.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

class RingTest : public testing::DriverTest {};
INSTANTIATE_TEST_SUITE_P(IoUringOnly, RingTest, ::testing::Values(DriverKind::kIoUring),
                         testing::driver_name);

// Sanitizer builds shrink it: a fresh fiber costs ~10 ms under ASan here. Even
// 2000 overflow a 16-entry CQ many times over (64 completions per turn).
#if defined(FIBER_TEST_TSAN) || defined(__SANITIZE_ADDRESS__)
constexpr int kOps = 2000;
#else
constexpr int kOps = 10000;
#endif

TEST_P(RingTest, ACompletionQueueOf16OverflowsAndLosesNoCompletion) {
  Options o = options();
  o.uring_sq_entries = 16;
  o.uring_cq_entries = 16;
  // No monitor: its once-a-millisecond poll requests would cut a slow (ASan)
  // turn short before it has posted more completions than the CQ holds.
  o.stall_threshold = std::chrono::nanoseconds(0);
  o.time_slice = std::chrono::nanoseconds(0);
  run(
      [] {
        auto pair = UnixStream::pair();
        ASSERT_TRUE(pair);
        UnixStream& a = pair->first;
        // Each fiber waits for `a` to be writable, which it is at once: the poll
        // completes as it is submitted, so one scheduler turn (64 fibers) posts
        // far more completions than the CQ holds.
        WaitGroup wg;
        std::atomic<int> done{0};
        for (int i = 0; i < kOps; ++i) {
          wg.add(1);
          go([&] {
            if (a.wait_writable()) done.fetch_add(1, std::memory_order_relaxed);
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(done.load(), kOps);
        SchedulerStats s = stats()[0];
        EXPECT_GT(s.cq_overflows, 0u) << "the CQ never overflowed: the test proved nothing";
        EXPECT_EQ(s.cq_dropped, 0u);
      },
      o);
}

TEST_P(RingTest, ASubmissionQueueOf8CarriesTenThousandConcurrentReceives) {
  Options o = options();
  o.uring_sq_entries = 8;  // CQ: twice that
  run(
      [] {
        auto pair = UnixStream::pair();
        ASSERT_TRUE(pair);
        UnixStream& a = pair->first;
        UnixStream& b = pair->second;
        WaitGroup wg;
        std::atomic<int> started{0}, failed{0};
        std::vector<int> seen(256, 0);  // core-local: every fiber runs here
        for (int i = 0; i < kOps; ++i) {
          wg.add(1);
          go([&] {
            started.fetch_add(1, std::memory_order_relaxed);
            char c;
            auto n = a.read({&c, 1});
            if (n && *n == 1) {
              ++seen[static_cast<unsigned char>(c)];
            } else {
              failed.fetch_add(1, std::memory_order_relaxed);
            }
            wg.done();
          });
        }
        // Every reader has queued its receive once it counted itself: the SQE is
        // prepared in the same run of the fiber, before it parks.
        while (started.load() < kOps) yield();
        std::string data(kOps, '\0');
        std::vector<int> sent(256, 0);
        for (int i = 0; i < kOps; ++i) {
          data[i] = static_cast<char>(i * 7);
          ++sent[static_cast<unsigned char>(data[i])];
        }
        ASSERT_TRUE(b.write_all(data));
        wg.wait();
        EXPECT_EQ(failed.load(), 0);
        EXPECT_EQ(seen, sent) << "a byte was lost or received twice";
      },
      o);
}

TEST_P(RingTest, BadRingSizesAreRejectedWithAMessage) {
  auto rejects = [this](unsigned sq, unsigned cq, const char* needle) {
    Options o = options();
    o.uring_sq_entries = sq;
    o.uring_cq_entries = cq;
    try {
      run([] {}, o);
      ADD_FAILURE() << "sq " << sq << " cq " << cq << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  rejects(40000, 0, "uring_sq_entries");
  rejects(1, 0, "uring_sq_entries");   // a deadline needs two linked SQEs
  rejects(0, 16, "uring_cq_entries");  // below the default SQ (256)
  rejects(8, 4, "uring_cq_entries");
  rejects(8, 100000, "uring_cq_entries");
  Options ok = options();
  ok.uring_sq_entries = 2;
  ok.uring_cq_entries = 2;
  // The smallest rings still carry an operation with a deadline (two SQEs).
  EXPECT_EQ(run(
                [] {
                  auto pair = UnixStream::pair();
                  pair->first.set_read_deadline(std::chrono::steady_clock::now() +
                                                std::chrono::milliseconds(1));
                  char c;
                  auto r = pair->first.read({&c, 1});
                  return !r && r.error() == std::errc::timed_out ? 7 : 0;
                },
                ok),
            7);
}

}  // namespace
}  // namespace fiber
