// The server against raw sockets: malformed and hostile requests, limits,
// pipelining, half-close and timeouts. After each, the server still serves.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/http/http_test_support.h"

namespace fiber::http::testing {
namespace {

class HttpProtocolTest : public fiber::testing::DriverTest {};

// expect_rejected() sends `request` and expects one answer `status`, with
// Connection: close, followed by the close; then the server must still serve.
void expect_rejected(const TestServer& s, std::string_view request, int status) {
  std::string out = round_trip(s, request);
  auto rs = parse_responses(out);
  ASSERT_EQ(rs.size(), 1u) << out;
  EXPECT_EQ(rs[0].status, status) << out;
  EXPECT_EQ(rs[0].header("Connection"), "close");
  EXPECT_TRUE(rs[0].has_header("Date"));
  expect_serves(s);
}

// T44 repeats each connection behaviour this many times.
constexpr int kT44Iterations = 100;

// expect_all_closed() waits (bounded) until the server has closed every
// connection: one it keeps open fails here instead of hanging the test.
void expect_all_closed(TestServer& s) {
  const auto give_up = std::chrono::steady_clock::now() + kSafety;
  while (s.server().connections() != 0 && std::chrono::steady_clock::now() < give_up) {
    sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(s.server().connections(), 0);
}

TEST_P(HttpProtocolTest, BadRequestLineIs400) {
  fiber::run(
      [] {
        TestServer s;
        expect_rejected(s, "GARBAGE\r\n\r\n", 400);
        expect_rejected(s, "GET / FTP/1.1\r\n\r\n", 400);
        expect_rejected(s, "GET / HTTP/1.1\nHost: t\n\n", 400);  // strict: CRLF only
        expect_rejected(s, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400);
        expect_rejected(s, "GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400);
      },
      options());
}

TEST_P(HttpProtocolTest, BadVersionIs505) {
  fiber::run(
      [] {
        TestServer s;
        expect_rejected(s, "GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505);
        expect_rejected(s, "GET / HTTP/1.7\r\nHost: t\r\n\r\n", 505);
      },
      options());
}

TEST_P(HttpProtocolTest, UnknownTransferCodingIs501) {
  fiber::run(
      [] {
        TestServer s;
        expect_rejected(s, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
                        501);
        expect_rejected(
            s, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
      },
      options());
}

TEST_P(HttpProtocolTest, ContentLengthWithTransferEncodingIs400) {
  fiber::run(
      [] {
        TestServer s;
        expect_rejected(s,
                        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                        400);
        expect_rejected(s,
                        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                        "Content-Length: 5\r\n\r\n0\r\n\r\n",
                        400);
      },
      options());
}

TEST_P(HttpProtocolTest, ConflictingContentLengthsAre400) {
  fiber::run(
      [] {
        TestServer s;
        expect_rejected(s,
                        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                        "Content-Length: 4\r\n\r\nabcd",
                        400);
        expect_rejected(s, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 4\r\n\r\nabcd",
                        400);
        expect_rejected(s, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400);
      },
      options());
}

TEST_P(HttpProtocolTest, OversizedHeadersAre431) {
  fiber::run(
      [] {
        ServerOptions o;
        o.max_header_bytes = 4096;
        TestServer s(o);
        expect_rejected(
            s, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(8000, 'a') + "\r\n\r\n", 431);
        std::string many = "GET / HTTP/1.1\r\n";
        for (int i = 0; i < 150; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
        expect_rejected(s, many + "\r\n", 431);
      },
      options());
}

TEST_P(HttpProtocolTest, LongUriIs414) {
  fiber::run(
      [] {
        ServerOptions o;
        o.max_uri_bytes = 1024;
        TestServer s(o);
        expect_rejected(s, "GET /" + std::string(2000, 'u') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414);
        // Longer than the whole head limit, still in the request line: 414 too.
        expect_rejected(s, "GET /" + std::string(40000, 'u') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414);
      },
      options());
}

// The head limit holds however the head arrives: here in one write, which the
// server's first 4 KiB read takes whole.
TEST_P(HttpProtocolTest, HeadOverTheLimitIs431EvenInOneRead) {
  fiber::run(
      [] {
        ServerOptions o;
        o.max_header_bytes = 1024;
        TestServer s(o);
        expect_rejected(
            s, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n", 431);
      },
      options());
}

// RFC 9110 9.3.6: a CONNECT request has no content.
TEST_P(HttpProtocolTest, ConnectWithContentIs400) {
  fiber::run(
      [] {
        TestServer s;
        expect_rejected(
            s, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\nhello", 400);
        expect_rejected(
            s,
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nTransfer-Encoding: chunked\r\n\r\n"
            "0\r\n\r\n",
            400);
      },
      options());
}

// A chunked body's trailer is not merged into the headers (RFC 9110 6.5.1), and
// a framing field there is refused rather than shown to the handler.
TEST_P(HttpProtocolTest, TrailerFieldsAreDroppedAndFramingOnesRefused) {
  fiber::run(
      [] {
        TestServer s;
        std::string out =
            round_trip(s,
                       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n");
        auto rs = parse_responses(out);
        ASSERT_EQ(rs.size(), 1u) << out;
        EXPECT_EQ(rs[0].status, 200);
        EXPECT_EQ(rs[0].body, "abc");
        expect_rejected(s,
                        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n0\r\nContent-Length: 99\r\n\r\n",
                        400);
      },
      options());
}

TEST_P(HttpProtocolTest, BigBodyIs413) {
  fiber::run(
      [] {
        ServerOptions o;
        o.max_body_bytes = 1000;
        TestServer s(o);
        // Refused from the header alone, before any body is read.
        expect_rejected(s, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n", 413);
        // Chunked: refused once the chunks add up to more than the limit.
        std::string chunked =
            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (int i = 0; i < 3; ++i) chunked += "200\r\n" + std::string(512, 'c') + "\r\n";
        expect_rejected(s, chunked + "0\r\n\r\n", 413);
        // At the limit is fine.
        auto rs =
            parse_responses(round_trip(s,
                                       "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                       "Content-Length: 1000\r\n\r\n" +
                                           std::string(1000, 'b')));
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].status, 200);
        EXPECT_EQ(rs[0].body.size(), 1000u);
      },
      options());
}

TEST_P(HttpProtocolTest, PipelinedRequestsAreAnsweredInOrder) {
  fiber::run(
      [] {
        TestServer s;
        TcpStream c = connect(s);
        ASSERT_TRUE(c.write_all(
            std::string_view("GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                             "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nsecond"
                             "GET /nothing-here HTTP/1.1\r\nHost: t\r\n\r\n")));
        auto rs = read_responses(c, 3);
        ASSERT_EQ(rs.size(), 3u);
        EXPECT_EQ(rs[0].status, 200);
        EXPECT_EQ(rs[0].body, "Hello, World!");
        EXPECT_EQ(rs[1].status, 200);
        EXPECT_EQ(rs[1].body, "second");
        EXPECT_EQ(rs[2].status, 404);
        // The connection is still open for more.
        ASSERT_TRUE(c.write_all(std::string_view("GET / HTTP/1.1\r\nHost: t\r\n\r\n")));
        auto more = read_responses(c, 1);
        ASSERT_EQ(more.size(), 1u);
        EXPECT_EQ(more[0].body, "Hello, World!");
        expect_serves(s);
      },
      options());
}

TEST_P(HttpProtocolTest, ChunkedRequestBodyIsDecoded) {
  fiber::run(
      [] {
        TestServer s;
        auto rs =
            parse_responses(round_trip(s,
                                       "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n"
                                       "5\r\nhello\r\n1;ext=1\r\n,\r\n6\r\n world\r\n0\r\n\r\n"));
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].body, "hello, world");
      },
      options());
}

// T44 a: a request followed by shutdown(SHUT_WR) gets its whole answer, then
// the close; 100 times, and the server keeps no connection.
TEST_P(HttpProtocolTest, HalfClosedClientStillGetsTheAnswer) {
  fiber::run(
      [] {
        TestServer s;
        for (int i = 0; i < kT44Iterations; ++i) {
          auto rs = parse_responses(
              round_trip(s, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", /*half_close=*/true));
          ASSERT_EQ(rs.size(), 1u) << "iteration " << i;
          EXPECT_EQ(rs[0].status, 200);
          EXPECT_EQ(rs[0].body, "Hello, World!");
        }
        expect_all_closed(s);
        expect_serves(s);
      },
      options());
}

// T44 b: a client that resets its connection in the middle of a 2 MiB answer,
// 100 times over: no crash, no SIGPIPE (left at its default, which would kill
// the test binary), every connection closed by the server, and it still serves.
TEST_P(HttpProtocolTest, ClientResetsMidResponseAreSurvived) {
  sighandler_t saved = signal(SIGPIPE, SIG_DFL);
  fiber::run(
      [] {
        TestServer s;
        const std::string body(2 << 20, 'b');
        const std::string request =
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n" + body;
        int answered = 0;
        for (int i = 0; i < kT44Iterations; ++i) {
          TcpStream c = connect(s);
          ASSERT_TRUE(c.write_all(request));
          // The answer has begun: its status line (reads may come back short).
          std::string head;
          char buf[1024];
          while (head.size() < 12) {
            auto n = c.read(buf);
            ASSERT_TRUE(n && *n > 0);
            head.append(buf, *n);
          }
          if (head.starts_with("HTTP/1.1 200")) ++answered;
          struct linger lg = {1, 0};  // close() sends RST instead of FIN
          ASSERT_EQ(setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
          (void)c.close();
        }
        EXPECT_EQ(answered, kT44Iterations);
        // Every reset connection is closed on the server's side too.
        expect_all_closed(s);
        expect_serves(s);
      },
      options());
  signal(SIGPIPE, saved);
}

// T44 c: HTTP/1.0 closes after the answer unless the request asks for
// keep-alive; 100 times, and the server keeps no connection.
TEST_P(HttpProtocolTest, Http10ClosesUnlessKeepAlive) {
  fiber::run(
      [] {
        TestServer s;
        for (int i = 0; i < kT44Iterations; ++i) {
          SCOPED_TRACE("iteration " + std::to_string(i));
          auto rs = parse_responses(round_trip(s, "GET / HTTP/1.0\r\n\r\n"));
          ASSERT_EQ(rs.size(), 1u);
          EXPECT_EQ(rs[0].body, "Hello, World!");
          EXPECT_EQ(rs[0].header("Connection"), "close");

          TcpStream c = connect(s);
          ASSERT_TRUE(
              c.write_all(std::string_view("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")));
          auto ka = read_responses(c, 1);
          ASSERT_EQ(ka.size(), 1u);
          EXPECT_EQ(ka[0].header("Connection"), "keep-alive");
          ASSERT_TRUE(c.write_all(std::string_view("GET / HTTP/1.0\r\n\r\n")));
          auto last = read_responses(c, 1);
          ASSERT_EQ(last.size(), 1u);
          EXPECT_EQ(last[0].body, "Hello, World!");
          char b[16];
          auto n = c.read(b);
          ASSERT_TRUE(!n || *n == 0);  // closed after the non-keep-alive request
          if (!n) {
            ASSERT_NE(n.error(), std::errc::timed_out) << "not closed by the server";
          }
        }
        expect_all_closed(s);
      },
      options());
}

TEST_P(HttpProtocolTest, ConnectionCloseIsHonoured) {
  fiber::run(
      [] {
        TestServer s;
        // The request after Connection: close is never answered.
        std::string out = round_trip(s,
                                     "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                                     "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        auto rs = parse_responses(out);
        ASSERT_EQ(rs.size(), 1u) << out;
        EXPECT_EQ(rs[0].header("Connection"), "close");
      },
      options());
}

TEST_P(HttpProtocolTest, HeadGetsNoBody) {
  fiber::run(
      [] {
        TestServer s;
        std::string out = round_trip(s, "HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        auto rs = parse_responses(out, /*head=*/true);
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].header("Content-Length"), "13");
        EXPECT_TRUE(out.ends_with("\r\n\r\n")) << out;
      },
      options());
}

// T44 d: `Expect: 100-continue` gets 100 before the body is sent, then the
// final answer; an unknown expectation gets 417 and the close. 100 times.
TEST_P(HttpProtocolTest, ExpectContinueIsAnsweredBeforeTheBody) {
  fiber::run(
      [] {
        TestServer s;
        for (int i = 0; i < kT44Iterations; ++i) {
          SCOPED_TRACE("iteration " + std::to_string(i));
          {
            TcpStream c = connect(s);
            ASSERT_TRUE(
                c.write_all(std::string_view("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: "
                                             "4\r\nExpect: 100-continue\r\n\r\n")));
            auto cont = read_responses(c, 1);
            ASSERT_EQ(cont.size(), 1u);
            ASSERT_EQ(cont[0].status, 100);
            ASSERT_TRUE(c.write_all(std::string_view("body")));
            auto rs = read_responses(c, 1);
            ASSERT_EQ(rs.size(), 1u);
            EXPECT_EQ(rs[0].status, 200);
            EXPECT_EQ(rs[0].body, "body");
          }
          // An expectation the server does not know: 417.
          expect_rejected(s,
                          "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                          "Expect: something-else\r\n\r\nx",
                          417);
        }
        expect_all_closed(s);
      },
      options());
}

TEST_P(HttpProtocolTest, StalledHeadersAreClosedAfterTheHeaderTimeout) {
  fiber::run(
      [] {
        ServerOptions o;
        o.header_timeout = std::chrono::milliseconds(200);
        TestServer s(o);
        TcpStream c = connect(s);
        auto start = std::chrono::steady_clock::now();
        ASSERT_TRUE(c.write_all(std::string_view("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")));
        char b[64];
        auto n = c.read(b);  // parks until the server closes (or kSafety)
        auto waited = std::chrono::steady_clock::now() - start;
        ASSERT_TRUE(!n || *n == 0) << "the server answered a half-sent request";
        if (!n) {
          EXPECT_NE(n.error(), std::errc::timed_out) << "not closed by the server";
        }
        EXPECT_GE(waited, std::chrono::milliseconds(190));
        expect_serves(s);
      },
      options());
}

// T44 e: a keep-alive connection left idle after its answer is closed by the
// server at the idle timeout. 100 connections at once (one after another
// would take 100 timeouts), each served first; then all are closed.
TEST_P(HttpProtocolTest, IdleKeepAliveConnectionIsClosed) {
  fiber::run(
      [] {
        ServerOptions o;
        o.idle_timeout = std::chrono::milliseconds(200);
        TestServer s(o);
        std::vector<TcpStream> conns;
        for (int i = 0; i < kT44Iterations; ++i) {
          TcpStream c = connect(s);
          ASSERT_TRUE(c.write_all(std::string_view("GET / HTTP/1.1\r\nHost: t\r\n\r\n")));
          auto rs = read_responses(c, 1);
          ASSERT_EQ(rs.size(), 1u) << "connection " << i;
          EXPECT_NE(rs[0].header("Connection"), "close");
          conns.push_back(std::move(c));
        }
        for (size_t i = 0; i < conns.size(); ++i) {
          char b[64];
          auto n = conns[i].read(b);
          ASSERT_TRUE(!n || *n == 0) << "connection " << i;
          if (!n) {
            EXPECT_NE(n.error(), std::errc::timed_out) << "connection " << i << " not closed";
          }
        }
        expect_all_closed(s);
        expect_serves(s);
      },
      options());
}

TEST_P(HttpProtocolTest, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  fiber::run(
      [] {
        ServerOptions o;
        o.max_connections = 1;
        TestServer s(o);
        TcpStream first = connect(s);
        ASSERT_TRUE(first.write_all(std::string_view("GET / HTTP/1.1\r\nHost: t\r\n\r\n")));
        ASSERT_EQ(read_responses(first, 1).size(), 1u);  // accepted and counted
        TcpStream second = connect(s);
        (void)second.write_all(std::string_view("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
        EXPECT_EQ(read_all(second), "");
        ASSERT_TRUE(first.write_all(std::string_view("GET / HTTP/1.1\r\nHost: t\r\n\r\n")));
        auto rs = read_responses(first, 1);
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].body, "Hello, World!");
      },
      options());
}

TEST_P(HttpProtocolTest, BodySplitAcrossManyWritesIsWhole) {
  fiber::run(
      [] {
        TestServer s;
        TcpStream c = connect(s);
        std::string body(300000, 'z');
        std::string req =
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n";
        // Byte by byte for the head: every span arrives in pieces.
        for (char ch : req) ASSERT_TRUE(c.write_all(std::string_view(&ch, 1)));
        // The client writes from another fiber so that the server's answer,
        // which starts before the client is done, never blocks the test.
        fiber::WaitGroup wg;
        wg.add(1);
        fiber::go([&] {
          EXPECT_TRUE(c.write_all(body));
          wg.done();
        });
        auto rs = read_responses(c, 1);
        wg.wait();
        ASSERT_EQ(rs.size(), 1u);
        EXPECT_EQ(rs[0].body.size(), body.size());
        EXPECT_TRUE(rs[0].body == body);
      },
      options());
}

FIBER_INSTANTIATE_DRIVER_TESTS(HttpProtocolTest);

}  // namespace
}  // namespace fiber::http::testing
