// TCP on both drivers: echo, big transfers, deadlines, cancel, close, errors.
#include "fiber/net.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "fiber/cancellation.h"
#include "fiber/fiber.h"
#include "tests/support/drivers.h"
#include "tests/support/leak_check.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class NetTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(NetTest);

int open_fds() { return static_cast<int>(testing::count_open_fds()); }

Address loopback_any_port() { return *Address::parse("127.0.0.1:0"); }

// fd_limit_at_least() raises the soft RLIMIT_NOFILE to `n` if the hard limit
// allows; false otherwise.
bool fd_limit_at_least(rlim_t n) {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= n) return true;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n) return false;
  rl.rlim_cur = n;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

// echo_round_trips() connects to `at`, sends `rounds` messages and checks
// each echo; false on any failure.
bool echo_round_trips(const Address& at, int id, int rounds) {
  auto conn = TcpStream::connect(at);
  if (!conn) return false;
  for (int round = 0; round < rounds; ++round) {
    std::string msg = std::to_string(id) + ":" + std::to_string(round);
    if (!conn->write_all(msg)) return false;
    std::string back(msg.size(), '\0');
    if (!conn->read_exact(back) || back != msg) return false;
  }
  return true;
}

// serve_echo() accepts `connections` connections on `ln` and echoes each until EOF.
void serve_echo(TcpListener& ln, int connections, WaitGroup& done) {
  for (int i = 0; i < connections; ++i) {
    auto conn = ln.accept();
    ASSERT_TRUE(conn) << conn.error().message();
    done.add(1);
    go([c = std::move(*conn), &done]() mutable {
      char buf[4096];
      for (;;) {
        auto n = c.read(buf);
        if (!n || *n == 0) break;
        if (!c.write_all({buf, *n})) break;
      }
      done.done();
    });
  }
}

// connected_pair() connects to `ln` from a second fiber and accepts: (server
// side, client side) of one connection.
std::pair<TcpStream, TcpStream> connected_pair(TcpListener& ln) {
  auto client = spawn([at = *ln.local_address()] { return TcpStream::connect(at); });
  auto server_side = ln.accept();
  auto conn = client.join();
  EXPECT_TRUE(server_side) << server_side.error().message();
  EXPECT_TRUE(conn) << conn.error().message();
  if (!server_side || !conn) return {};
  return {std::move(*server_side), std::move(*conn)};
}

TEST_P(NetTest, EchoesOverOneConnection) {
  int fds_before = open_fds();
  run(
      [] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln) << ln.error().message();
        Address at = *ln->local_address();
        WaitGroup served;
        served.add(1);
        go([&] {
          serve_echo(*ln, 1, served);
          served.done();
        });
        auto conn = TcpStream::connect(at);
        ASSERT_TRUE(conn) << conn.error().message();
        for (int i = 0; i < 100; ++i) {
          std::string msg = "message " + std::to_string(i);
          ASSERT_TRUE(conn->write_all(msg));
          std::string back(msg.size(), '\0');
          ASSERT_TRUE(conn->read_exact(back));
          EXPECT_EQ(back, msg);
        }
        conn->close();
        served.wait();
      },
      options());
  EXPECT_EQ(open_fds(), fds_before);
}

TEST_P(NetTest, EchoesOverManyConnectionsOnBothCores) {
  constexpr int kConnections = 200;
  int fds_before = open_fds();
  run(
      [] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        WaitGroup served, clients;
        served.add(1);
        go([&] {
          serve_echo(*ln, kConnections, served);
          served.done();
        });
        for (int i = 0; i < kConnections; ++i) {
          clients.add(1);
          go_on(i % 2, [at, i, &clients] {
            EXPECT_TRUE(echo_round_trips(at, i, 10));
            clients.done();
          });
        }
        clients.wait();
        served.wait();
      },
      options(2));
  EXPECT_EQ(open_fds(), fds_before);
}

TEST_P(NetTest, SeveralFibersAcceptOnOneListener) {
  run(
      [] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        constexpr int kAcceptors = 4, kConnections = 40;
        int accepted = 0;
        WaitGroup acceptors;
        for (int a = 0; a < kAcceptors; ++a) {
          acceptors.add(1);
          go([&] {
            for (;;) {
              auto conn = ln->accept();
              if (!conn) break;  // cancelled at the end
              ++accepted;
            }
            acceptors.done();
          });
        }
        yield();  // every acceptor parks on the same listener
        Address at = *ln->local_address();
        std::vector<TcpStream> clients;
        for (int i = 0; i < kConnections; ++i) {
          auto c = TcpStream::connect(at);
          ASSERT_TRUE(c) << c.error().message();
          clients.push_back(std::move(*c));
        }
        while (accepted < kConnections) yield();
        ln->cancel();
        acceptors.wait();
        EXPECT_EQ(accepted, kConnections);
      },
      options());
}

TEST_P(NetTest, MovesAMebibyteIntactAcrossShortReadsAndWrites) {
  run(
      [] {
        constexpr size_t kSize = 1 << 20;
        std::vector<char> sent(kSize);
        for (size_t i = 0; i < kSize; ++i) sent[i] = static_cast<char>(i * 131 + (i >> 12));
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        auto receiver = spawn_on(1, [at] {
          std::vector<char> got;
          auto conn = TcpStream::connect(at);
          if (!conn) return got;
          char buf[1000];  // odd size: many short reads
          for (;;) {
            auto n = conn->read(buf);
            if (!n || *n == 0) break;
            got.insert(got.end(), buf, buf + *n);
          }
          return got;
        });
        auto conn = ln->accept();
        ASSERT_TRUE(conn);
        ASSERT_TRUE(conn->write_all(sent));
        ASSERT_TRUE(conn->shutdown(SHUT_WR));
        std::vector<char> got = receiver.join();
        ASSERT_EQ(got.size(), sent.size());
        EXPECT_TRUE(got == sent);
      },
      options(2));
}

TEST_P(NetTest, ReadAndAcceptFailWithTimedOutAtTheirDeadline) {
  run(
      [] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        ln->set_deadline(std::chrono::steady_clock::now() + 20ms);
        auto start = std::chrono::steady_clock::now();
        auto none = ln->accept();
        ASSERT_FALSE(none);
        EXPECT_EQ(none.error(), std::errc::timed_out);
        EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);

        ln->set_deadline({});
        auto [server, client] = connected_pair(*ln);
        TcpStream* server_side = &server;
        TcpStream* conn = &client;
        conn->set_read_deadline(std::chrono::steady_clock::now() + 20ms);
        char buf[16];
        auto r = conn->read(buf);  // the peer sends nothing
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), std::errc::timed_out);
        // The connection still works after a timed-out read.
        conn->set_read_deadline({});
        ASSERT_TRUE(server_side->write_all(std::string_view("x")));
        auto n = conn->read(buf);
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, 1u);
      },
      options());
}

TEST_P(NetTest, CloseAndCancelWakeAParkedReader) {
  run(
      [] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        auto [server, client] = connected_pair(*ln);
        TcpStream* server_side = &server;
        TcpStream* conn = &client;

        auto reader = spawn([&] {
          char buf[16];
          return conn->read(buf).error();
        });
        yield();  // the reader parks
        conn->cancel();
        EXPECT_EQ(reader.join(), std::errc::operation_canceled);

        auto reader2 = spawn([&] {
          char buf[16];
          return conn->read(buf).error();
        });
        yield();
        conn->close();                // returns once the parked read has let go
        EXPECT_TRUE(reader2.join());  // an error: cancelled (or bad fd if it had not parked)
        char buf[16];
        EXPECT_EQ(conn->read(buf).error(), std::errc::bad_file_descriptor);
        // The peer sees end of stream.
        auto n = server_side->read(buf);
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, 0u);
      },
      options());
}

TEST_P(NetTest, ErrorsAreValues) {
  run(
      [] {
        // Nobody listens on a port we just closed: refused.
        Address at;
        {
          auto ln = TcpListener::bind(loopback_any_port());
          ASSERT_TRUE(ln);
          at = *ln->local_address();
        }
        auto refused = TcpStream::connect(at);
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error(), std::errc::connection_refused);

        auto ln = TcpListener::bind(loopback_any_port(), ListenOptions{.reuse_port = false});
        ASSERT_TRUE(ln);
        auto again = TcpListener::bind(*ln->local_address(), ListenOptions{.reuse_port = false});
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error(), std::errc::address_in_use);

        EXPECT_FALSE(Address::parse("nonsense"));
        EXPECT_FALSE(Address::parse("1.2.3.4:99999"));
        EXPECT_FALSE(Address::parse("1.2.3:80"));
        EXPECT_TRUE(Address::parse("[::1]:80"));

        auto [server, client] = connected_pair(*ln);
        TcpStream* server_side = &server;
        TcpStream* conn = &client;
        std::span<char> empty;
        EXPECT_EQ(conn->read(empty).error(), std::errc::invalid_argument);
        // A peer that resets: the reader gets an error value, not a crash.
        struct linger lg = {1, 0};
        setsockopt(server_side->fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        server_side->close();
        char buf[8];
        auto r = conn->read(buf);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), std::errc::connection_reset);
        // Writing to a reset connection: an error, and no SIGPIPE.
        Result<void> w;
        for (int i = 0; i < 10 && w; ++i) w = conn->write_all(std::string(4096, 'x'));
        EXPECT_FALSE(w);
      },
      options());
}

TEST_P(NetTest, ThousandConcurrentConnectionsAllOpenAtOnce) {
  constexpr int kConnections = 1000;
  if (!fd_limit_at_least(3 * kConnections)) GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low";
  int fds_before = open_fds();
  run(
      [=] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        WaitGroup served, connected, clients;
        served.add(1);
        go([&] {
          serve_echo(*ln, kConnections, served);
          served.done();
        });
        // Every client connects, then waits until all are connected, so that
        // 1000 connections (2000 sockets) are open at once.
        std::atomic<int> ok{0};
        connected.add(kConnections);
        Mutex mu;
        CondVar all_in;
        bool go_ahead = false;
        for (int i = 0; i < kConnections; ++i) {
          clients.add(1);
          go_on(i % 2, [&, i] {
            auto conn = TcpStream::connect(at);
            connected.done();
            {
              std::unique_lock lock(mu);
              all_in.wait(lock, [&] { return go_ahead; });
            }
            std::string msg = "client " + std::to_string(i);
            std::string back(msg.size(), '\0');
            if (conn && conn->write_all(msg) && conn->read_exact(back) && back == msg) ++ok;
            clients.done();
          });
        }
        connected.wait();
        {
          std::unique_lock lock(mu);
          go_ahead = true;
        }
        all_in.notify_all();
        clients.wait();
        served.wait();
        EXPECT_EQ(ok.load(), kConnections);
      },
      options(2));
  EXPECT_EQ(open_fds(), fds_before);
}

TEST_P(NetTest, Moves64MebibytesIntactBetweenCores) {
  run(
      [] {
        constexpr size_t kSize = size_t{64} << 20;
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        // The receiver checks each byte against the generator as it arrives, so
        // no 64 MiB copy is kept; odd buffer sizes make reads and writes short.
        auto byte_at = [](size_t i) { return static_cast<char>((i * 7919) ^ (i >> 13)); };
        auto receiver = spawn_on(1, [at, byte_at] {
          auto conn = TcpStream::connect(at);
          if (!conn) return size_t{0};
          std::vector<char> buf(65521);
          size_t pos = 0;
          for (;;) {
            auto n = conn->read(buf);
            if (!n || *n == 0) break;
            for (size_t k = 0; k < *n; ++k, ++pos) {
              if (buf[k] != byte_at(pos)) return size_t{0};
            }
          }
          return pos;
        });
        auto conn = ln->accept();
        ASSERT_TRUE(conn);
        std::vector<char> chunk(1 << 20);
        for (size_t sent = 0; sent < kSize; sent += chunk.size()) {
          for (size_t k = 0; k < chunk.size(); ++k) chunk[k] = byte_at(sent + k);
          ASSERT_TRUE(conn->write_all(chunk));
        }
        ASSERT_TRUE(conn->shutdown(SHUT_WR));
        EXPECT_EQ(receiver.join(), kSize);
      },
      options(2));
}

TEST_P(NetTest, ConnectAndWriteFailWithTimedOutAtTheirDeadline) {
  run(
      [] {
        // A listener that never accepts, with the smallest backlog: once its
        // queue is full the kernel drops further SYNs, so a connect hangs.
        auto ln = TcpListener::bind(loopback_any_port(), ListenOptions{.backlog = 1});
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        std::vector<TcpStream> queued;
        bool timed_out = false;
        for (int i = 0; i < 16 && !timed_out; ++i) {
          auto c = TcpStream::connect(at, 50ms);
          if (c) {
            queued.push_back(std::move(*c));
          } else {
            EXPECT_EQ(c.error(), std::errc::timed_out);
            timed_out = true;
          }
        }
        EXPECT_TRUE(timed_out);

        // A peer that never reads: once both socket buffers are full, a write
        // parks until its deadline.
        auto ln2 = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln2);
        auto [server, client] = connected_pair(*ln2);
        int small = 4096;
        setsockopt(client.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(server.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        client.set_write_deadline(std::chrono::steady_clock::now() + 50ms);
        std::string block(64 * 1024, 'w');
        Result<void> w;
        for (int i = 0; i < 1000 && w; ++i) w = client.write_all(block);
        ASSERT_FALSE(w);
        EXPECT_EQ(w.error(), std::errc::timed_out);
      },
      options());
}

TEST_P(NetTest, CancelFromAnotherCoreWakesAParkedReader) {
  run(
      [] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        // The reader's socket lives on core 1; the canceller runs on core 0.
        std::atomic<TcpStream*> shared{nullptr};
        std::atomic<bool> done{false}, stopped{false};
        auto reader = spawn_on(1, [&] {
          auto conn = TcpStream::connect(at);
          if (!conn) return std::string("connect failed");
          shared = &*conn;
          char buf[16];
          auto r = conn->read(buf);
          done = true;
          // The canceller may be inside cancel() still; the next read starts
          // once it has stopped, so that no cancel is meant for it.
          while (!stopped.load()) yield();
          if (r) return std::string("read returned data");
          if (r.error() != std::errc::operation_canceled) return r.error().message();
          // The socket is still usable after the cancel.
          if (!conn->read_exact({buf, 5})) return std::string("second read failed");
          return std::string(buf, 5);
        });
        auto server_side = ln->accept();
        ASSERT_TRUE(server_side);
        while (shared.load() == nullptr) yield();
        // A cancel acts on reads already started; until the reader has parked,
        // cancel again.
        while (!done.load()) {
          shared.load()->cancel();
          sleep_for(1ms);
        }
        stopped = true;
        ASSERT_TRUE(server_side->write_all(std::string_view("after")));
        EXPECT_EQ(reader.join(), "after");
      },
      options(2));
}

// A context ended on another core posts its cancel to the socket's core. When
// the binding ends before that cancel has run there, the cancel must not reach
// an operation started after the binding ended.
TEST_P(NetTest, ACancelPostedFromAnotherCoreDoesNotOutliveItsBinding) {
  run(
      [] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        auto [server, client] = connected_pair(*ln);
        char buf[16];
        std::atomic<bool> cancelled{false};
        {
          auto [ctx, cancel] = with_cancel(background());
          auto bound = client.bind_context(ctx);
          spawn_on(1, [&cancelled, cancel = cancel] {
            cancel();
            cancelled.store(true, std::memory_order_release);
          });  // detached: joining would let this core run the posted cancel
          // Spin without yielding, so this core has not run the cancel when the
          // binding ends.
          while (!cancelled.load(std::memory_order_acquire)) {
          }
          EXPECT_EQ(client.read(buf).error(), std::errc::operation_canceled);
        }
        // Nothing to read: this read must last until its own deadline.
        client.set_read_deadline(std::chrono::steady_clock::now() + 50ms);
        auto r = client.read(buf);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), std::errc::timed_out);
        client.set_read_deadline({});
        ASSERT_TRUE(server.write_all(std::string_view("ok")));
        ASSERT_TRUE(client.read_exact({buf, 2}));
        EXPECT_EQ(std::string(buf, 2), "ok");
      },
      options(2));
}

TEST_P(NetTest, AContextBoundsTheOperationsOfASocket) {
  run(
      [] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        auto [server, client] = connected_pair(*ln);
        char buf[16];
        {
          // Cancelled from another core while the read is parked.
          auto [ctx, cancel] = with_cancel(background());
          auto bound = client.bind_context(ctx);
          auto canceller = spawn_on(1, [&ctx = ctx, cancel = cancel] {
            cancel();
            return ctx.err();
          });
          auto r = client.read(buf);
          ASSERT_FALSE(r);
          EXPECT_EQ(r.error(), std::errc::operation_canceled);
          EXPECT_EQ(canceller.join(), std::errc::operation_canceled);
          // Later operations fail at once while the binding lasts.
          EXPECT_EQ(client.write(std::string_view("x")).error(), std::errc::operation_canceled);
        }
        {
          // A deadline context: timed_out.
          auto [ctx, cancel] = with_timeout(background(), 20ms);
          auto bound = client.bind_context(ctx);
          auto r = client.read(buf);
          ASSERT_FALSE(r);
          EXPECT_EQ(r.error(), std::errc::timed_out);
          cancel();
        }
        {
          // An already-ended context fails the first operation.
          auto [ctx, cancel] = with_cancel(background());
          cancel();
          auto bound = client.bind_context(ctx);
          EXPECT_EQ(client.read(buf).error(), std::errc::operation_canceled);
        }
        // Once the bindings are gone, the socket works again.
        ASSERT_TRUE(server.write_all(std::string_view("ok")));
        ASSERT_TRUE(client.read_exact({buf, 2}));
        EXPECT_EQ(std::string(buf, 2), "ok");
      },
      options(2));
}

TEST_P(NetTest, ThousandFibersDoingIoOnBothCoresLeakNoFd) {
  if (!fd_limit_at_least(4096)) GTEST_SKIP() << "RLIMIT_NOFILE hard limit too low";
  int fds_before = open_fds();
  run(
      [] {
        constexpr int kFibers = 1000;
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        WaitGroup served, clients;
        served.add(1);
        go([&] {
          serve_echo(*ln, kFibers, served);
          served.done();
        });
        std::atomic<int> ok{0};
        for (int i = 0; i < kFibers; ++i) {
          clients.add(1);
          go_on(i % 2, [&, i] {
            // Some close early, some mid-exchange, some read past EOF.
            if (echo_round_trips(at, i, i % 4)) ++ok;
            clients.done();
          });
        }
        clients.wait();
        served.wait();
        EXPECT_EQ(ok.load(), kFibers);
      },
      options(2));
  EXPECT_EQ(open_fds(), fds_before);
}

TEST_P(NetTest, AcceptAtTheFdLimitIsAnErrorAndRecovers) {
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  run(
      [&] {
        auto ln = TcpListener::bind(loopback_any_port());
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        std::vector<TcpStream> clients;
        for (int i = 0; i < 3; ++i) {
          auto c = TcpStream::connect(at);  // completes in the backlog
          ASSERT_TRUE(c);
          clients.push_back(std::move(*c));
        }
        // No fd is left: accept reports it and leaves the connection queued.
        // dup() returns the lowest free fd: with it as the limit, none is free.
        int lowest_free = dup(0);
        ASSERT_GE(lowest_free, 0);
        close(lowest_free);
        rlimit tight = saved;
        tight.rlim_cur = static_cast<rlim_t>(lowest_free);
        // Nothing but the accept runs at the limit: sanitizer runtimes need
        // fds (pipes) to check memory, and would misreport without them.
        ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
        auto refused = ln->accept();
        ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error(), std::errc::too_many_files_open);
        // With fds back, every queued connection is accepted and works.
        for (auto& c : clients) {
          auto s = ln->accept();
          ASSERT_TRUE(s) << s.error().message();
          ASSERT_TRUE(c.write_all(std::string_view("ok")));
          char buf[2];
          ASSERT_TRUE(s->read_exact(buf));
        }
      },
      options());
  setrlimit(RLIMIT_NOFILE, &saved);
}

}  // namespace
}  // namespace fiber
