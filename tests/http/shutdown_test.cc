// Graceful shutdown: idle connections close at once, a request in progress
// finishes (with Connection: close), then shutdown() returns.
#include <gtest/gtest.h>

#include <string>

#include "tests/http/http_test_support.h"

namespace fiber::http::testing {
namespace {

class HttpShutdownTest : public fiber::testing::DriverTest {};

TEST_P(HttpShutdownTest, FinishesInFlightRequestsAndClosesIdleOnes) {
  fiber::run(
      [] {
        fiber::WaitGroup entered, release;
        entered.add(1);
        release.add(1);
        Router r = demo_router({});
        r.handle("GET", "/slow", [&](const Request&, ResponseWriter& w) {
          entered.done();
          release.wait();  // parks this connection's fiber until the test lets go
          w.write("finished");
        });
        Server server(r, ServerOptions{});
        auto at = server.listen(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(at);
        server.start();

        auto idle = TcpStream::connect(*at);
        ASSERT_TRUE(idle);
        idle->set_deadline(std::chrono::steady_clock::now() + kSafety);
        ASSERT_TRUE(idle->write_all(std::string_view("GET / HTTP/1.1\r\nHost: t\r\n\r\n")));
        ASSERT_EQ(read_responses(*idle, 1).size(), 1u);

        auto busy = TcpStream::connect(*at);
        ASSERT_TRUE(busy);
        busy->set_deadline(std::chrono::steady_clock::now() + kSafety);
        ASSERT_TRUE(busy->write_all(std::string_view("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")));
        entered.wait();

        fiber::WaitGroup stopped;
        stopped.add(1);
        fiber::go([&] {
          server.shutdown(kSafety);
          stopped.done();
        });
        // The idle connection is closed without an answer.
        EXPECT_EQ(read_all(*idle), "");
        // New connections are refused once the listeners are closed; the one
        // in progress still gets its answer.
        release.done();
        auto rs = read_responses(*busy, 1);
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].status, 200);
        EXPECT_EQ(rs[0].body, "finished");
        EXPECT_EQ(rs[0].header("Connection"), "close");
        stopped.wait();
        EXPECT_EQ(server.connections(), 0);
        auto late = TcpStream::connect(*at, std::chrono::seconds(5));
        EXPECT_FALSE(late) << "still accepting after shutdown";
      },
      options());
}

TEST_P(HttpShutdownTest, CancelsWhatOutlivesTheGracePeriod) {
  fiber::run(
      [] {
        ServerOptions o;
        o.body_timeout = kSafety;
        TestServer* s = nullptr;
        TestServer server(o);
        s = &server;
        // A client stuck sending its body: in progress, never finishing.
        TcpStream c = connect(*s);
        ASSERT_TRUE(c.write_all(
            std::string_view("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")));
        // Make sure the server has read the head: a second request on another
        // connection is answered after the first one's bytes were read.
        expect_serves(*s);
        s->server().shutdown(std::chrono::milliseconds(100));
        EXPECT_EQ(s->server().connections(), 0);
        EXPECT_EQ(read_all(c), "");
      },
      options());
}

FIBER_INSTANTIATE_DRIVER_TESTS(HttpShutdownTest);

}  // namespace
}  // namespace fiber::http::testing
