// Errors a real kernel and a real peer produce, on both drivers, with no fault
// injector (RELIABILITY.md T25): a peer reset mid-transfer, writes after the
// peer closed (EPIPE, never SIGPIPE), short writes from a tiny send buffer, and
// a storm of signals without SA_RESTART hitting the scheduler threads, and a
// peer writing in random small pieces (short reads).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/net.h"
#include "tests/reliability/tcp_pair.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using testing::loopback_listener;
using testing::tcp_pair;

class KernelErrorsTest : public testing::DriverTest {
 protected:
  // The default SIGPIPE action kills the process: a send without MSG_NOSIGNAL
  // to a closed peer would end the test binary, not just fail the test.
  void SetUp() override {
    DriverTest::SetUp();
    saved_pipe_ = signal(SIGPIPE, SIG_DFL);
  }
  void TearDown() override { signal(SIGPIPE, saved_pipe_); }

 private:
  sighandler_t saved_pipe_ = SIG_DFL;
};
FIBER_INSTANTIATE_DRIVER_TESTS(KernelErrorsTest);

void reset_on_close(Socket& s) {
  struct linger lg = {1, 0};  // close() sends RST instead of FIN
  ASSERT_EQ(setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
}

// pattern() is byte i of the test streams: not periodic in any buffer size.
char pattern(uint64_t i) { return static_cast<char>((i * 131 + i / 251) & 0xff); }

TEST_P(KernelErrorsTest, APeerResetMidTransferIsConnectionResetForTheReader) {
  run(
      [] {
        auto ln = loopback_listener();
        auto [reader_end, writer_end] = tcp_pair(ln);
        // The reader expects a stream that never ends; the peer stops halfway
        // through and resets.
        auto reader = spawn([&r = reader_end] {
          char buf[4096];
          size_t total = 0;
          for (;;) {
            auto n = r.read(buf);
            if (!n) return std::make_pair(total, n.error());
            if (*n == 0) return std::make_pair(total, std::error_code());
            total += *n;
          }
        });
        std::string chunk(64 * 1024, 'r');
        for (int i = 0; i < 4; ++i) ASSERT_TRUE(writer_end.write_all(chunk));
        reset_on_close(writer_end);
        writer_end.close();
        auto [total, err] = reader.join();
        EXPECT_EQ(err, std::errc::connection_reset) << err.message();
        EXPECT_GT(total, 0u);
        EXPECT_LE(total, 4 * chunk.size());
      },
      options());
}

TEST_P(KernelErrorsTest, APeerResetMidTransferFailsTheWriterWithAnErrorValue) {
  run(
      [] {
        auto ln = loopback_listener();
        auto [writer_end, reader_end] = tcp_pair(ln);
        // The writer pushes 8 MiB; the peer reads 64 KiB of it, then resets.
        auto writer = spawn([&w = writer_end] {
          std::string big(8 << 20, 'w');
          return w.write_all(big);
        });
        std::string got(64 * 1024, '\0');
        ASSERT_TRUE(reader_end.read_exact(got));
        reset_on_close(reader_end);
        reader_end.close();
        Result<void> w = writer.join();
        ASSERT_FALSE(w);
        EXPECT_TRUE(w.error() == std::errc::connection_reset || w.error() == std::errc::broken_pipe)
            << w.error().message();
      },
      options());
}

TEST_P(KernelErrorsTest, WritesAfterThePeerClosedAreBrokenPipeNotSigpipe) {
  run(
      [] {
        auto ln = loopback_listener();
        auto [ours, theirs] = tcp_pair(ln);
        theirs.close();  // FIN; our next write draws an RST, the ones after EPIPE
        std::error_code first;
        for (int i = 0; i < 1000 && !first; ++i) {
          auto w = ours.write(std::string_view("x"));
          if (!w) first = w.error();
        }
        ASSERT_TRUE(first) << "1000 writes to a closed peer all succeeded";
        EXPECT_TRUE(first == std::errc::connection_reset || first == std::errc::broken_pipe)
            << first.message();
        auto again = ours.write(std::string_view("x"));
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error(), std::errc::broken_pipe);
        // The gather path (sendmsg) must not raise SIGPIPE either.
        std::string_view parts[2] = {"a", "b"};
        std::span<const char> spans[2] = {parts[0], parts[1]};
        auto v = ours.writev(spans);
        ASSERT_FALSE(v);
        EXPECT_EQ(v.error(), std::errc::broken_pipe);
      },
      options());
}

TEST_P(KernelErrorsTest, ATinySendBufferGivesShortWritesAndEveryByteArrives) {
  run(
      [] {
        constexpr size_t kBytes = 2 << 20;
        auto ln = loopback_listener();
        auto [sender, receiver] = tcp_pair(ln);
        // Only the send side is small: a tiny receive window too would stall on
        // delayed acknowledgements and make the test slow, not better.
        int small = 4096;  // the kernel doubles it and applies its minimum
        ASSERT_EQ(setsockopt(sender.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
        std::string data(kBytes, '\0');
        for (size_t i = 0; i < kBytes; ++i) data[i] = pattern(i);
        // The receiver checks every byte as it comes.
        auto reader = spawn([&receiver] {
          std::vector<char> buf(3000);  // odd size: reads straddle the writes
          uint64_t at = 0;
          while (at < kBytes) {
            auto n = receiver.read(buf);
            if (!n || *n == 0) return at;
            for (size_t i = 0; i < *n; ++i) {
              if (buf[i] != pattern(at + i)) return at + i;
            }
            at += *n;
          }
          return at;
        });
        // First half with write(): count the short ones. Then write_all().
        std::span<const char> rest(data.data(), kBytes / 2);
        int writes = 0, short_writes = 0;
        while (!rest.empty()) {
          auto n = sender.write(rest);
          ASSERT_TRUE(n) << n.error().message();
          ASSERT_GT(*n, 0u);
          ++writes;
          if (*n < rest.size()) ++short_writes;
          rest = rest.subspan(*n);
        }
        ASSERT_TRUE(sender.write_all({data.data() + kBytes / 2, kBytes / 2}));
        EXPECT_EQ(reader.join(), kBytes) << "first wrong or missing byte";
        EXPECT_GT(short_writes, 0) << "no short write in " << writes << " writes";
      },
      options());
}

// T25 f: the peer writes in random pieces of 1 to 1500 bytes (TCP_NODELAY, a
// yield between pieces so that each goes out alone): reads come back short, and
// every byte arrives in order.
TEST_P(KernelErrorsTest, RandomSmallPiecesFromThePeerGiveShortReadsAndEveryByteArrives) {
  run(
      [] {
        constexpr int kPieces = 1000;
        auto ln = loopback_listener();
        auto [sender, receiver] = tcp_pair(ln);
        int one = 1;
        ASSERT_EQ(setsockopt(sender.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
        std::mt19937 rng(GetParam() == DriverKind::kIoUring ? 25 : 26);
        std::uniform_int_distribution<size_t> piece_size(1, 1500);
        std::vector<size_t> sizes(kPieces);
        uint64_t total = 0;
        for (size_t& n : sizes) total += n = piece_size(rng);
        auto writer = spawn([&, &sender = sender] {
          std::string piece;
          uint64_t at = 0;
          for (size_t n : sizes) {
            piece.resize(n);
            for (size_t i = 0; i < n; ++i) piece[i] = pattern(at + i);
            if (!sender.write_all(piece)) return false;
            at += n;
            yield();
          }
          return sender.shutdown(SHUT_WR).has_value();
        });
        std::vector<char> buf(4096);
        uint64_t at = 0, reads = 0, short_reads = 0;
        for (;;) {
          auto n = receiver.read(buf);
          ASSERT_TRUE(n) << n.error().message();
          if (*n == 0) break;
          ++reads;
          if (*n < buf.size()) ++short_reads;
          for (size_t i = 0; i < *n; ++i) {
            ASSERT_EQ(buf[i], pattern(at + i)) << "byte " << at + i;
          }
          at += *n;
        }
        EXPECT_TRUE(writer.join());
        EXPECT_EQ(at, total);
        // How pieces coalesce depends on when the reader runs (on epoll it wakes
        // only when the scheduler polls); some reads must still come back short.
        EXPECT_GT(short_reads, 0u) << reads << " reads of " << total << " bytes";
      },
      options());
}

std::atomic<uint64_t> g_signals{0};
void count_signal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

#ifdef FIBER_TEST_TSAN
constexpr int kConnections = 8, kRounds = 100;
#else
constexpr int kConnections = 40, kRounds = 300;
#endif

TEST_P(KernelErrorsTest, ASignalStormWithoutRestartLeavesEchoTrafficIntact) {
  struct sigaction sa = {}, saved = {};
  sa.sa_handler = &count_signal;
  sa.sa_flags = 0;  // no SA_RESTART: interrupted waits return EINTR
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &saved), 0);
  g_signals = 0;
  run(
      [] {
        // The scheduler threads, to aim the signals at.
        std::vector<pthread_t> targets;
        for (unsigned i = 0; i < scheduler_count(); ++i) {
          targets.push_back(spawn_on(i, [] { return pthread_self(); }).join());
        }
        std::atomic<bool> stop{false};
        std::thread storm([&] {
          while (!stop.load()) {
            for (pthread_t t : targets) pthread_kill(t, SIGUSR1);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the storm's pace
          }
        });
        auto ln = loopback_listener();
        Address at = *ln.local_address();
        WaitGroup servers, clients;
        servers.add(1);
        go([&] {
          for (int i = 0; i < kConnections; ++i) {
            auto c = ln.accept();
            ASSERT_TRUE(c) << c.error().message();
            servers.add(1);
            go([c = std::move(*c), &servers]() mutable {
              char buf[8192];
              for (;;) {
                auto n = c.read(buf);
                if (!n || *n == 0) break;
                if (!c.write_all({buf, *n})) break;
              }
              servers.done();
            });
          }
          servers.done();
        });
        std::atomic<int> intact{0};
        for (int i = 0; i < kConnections; ++i) {
          clients.add(1);
          go_on(i % 2, [&, i] {
            auto conn = TcpStream::connect(at);
            bool ok = static_cast<bool>(conn);
            for (int r = 0; ok && r < kRounds; ++r) {
              std::string msg(1 + (i * 977 + r * 131) % 6000, '\0');
              for (size_t k = 0; k < msg.size(); ++k) msg[k] = pattern(k + r + i);
              std::string back(msg.size(), '\0');
              ok = conn->write_all(msg) && conn->read_exact(back) && back == msg;
              if (r % 16 == 0) sleep_for(std::chrono::microseconds(200));  // idle in the driver
            }
            if (ok) ++intact;
            clients.done();
          });
        }
        clients.wait();
        servers.wait();
        stop = true;
        storm.join();
        EXPECT_EQ(intact.load(), kConnections);
        uint64_t interrupted = 0;
        for (const SchedulerStats& s : stats()) interrupted += s.waits_interrupted;
        EXPECT_GT(interrupted, 0u) << "no driver wait was interrupted: the EINTR path never ran";
      },
      options(2));
  sigaction(SIGUSR1, &saved, nullptr);
  EXPECT_GT(g_signals.load(), 0u) << "no signal reached a scheduler thread";
}

}  // namespace
}  // namespace fiber
