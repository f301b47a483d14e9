// TCP on both drivers: echo, big transfers, deadlines, cancel, close, errors.
#include "fiber/net.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "fiber/fiber.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class NetTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(NetTest);

int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

Address loopback_any_port() { return *Address::parse("127.0.0.1:0"); }

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
            auto conn = TcpStream::connect(at);
            EXPECT_TRUE(conn) << conn.error().message();
            if (conn) {
              for (int round = 0; round < 10; ++round) {
                std::string msg = std::to_string(i) + ":" + std::to_string(round);
                EXPECT_TRUE(conn->write_all(msg));
                std::string back(msg.size(), '\0');
                EXPECT_TRUE(conn->read_exact(back));
                EXPECT_EQ(back, msg);
              }
            }
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

}  // namespace
}  // namespace fiber
