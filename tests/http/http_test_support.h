// Test support for the HTTP server: a server on 127.0.0.1:0 inside the test's
// runtime, a raw-socket client, a parser for the answers and a curl runner.
// Everything here runs inside fiber::run (fiber-only).
#pragma once

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "examples/http/demo_routes.h"
#include "fiber/blocking.h"
#include "fiber/fiber.h"
#include "fiber/http.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"

namespace fiber::http::testing {

// kSafety bounds every wait of a test, so that a bug fails it instead of
// hanging it. It is never what a test waits for.
inline constexpr auto kSafety = std::chrono::seconds(20);

// TestServer is a server with the demo routes (or `handler`) on a free port.
class TestServer {
 public:
  explicit TestServer(ServerOptions options = {}, DemoOptions demo = {})
      : TestServer(demo_router(demo), std::move(options)) {}
  TestServer(Handler handler, ServerOptions options) : server_(std::move(handler), options) {
    auto at = server_.listen(*Address::parse("127.0.0.1:0"));
    if (!at) {
      ADD_FAILURE() << "listen: " << at.error().message();
      return;
    }
    addr_ = *at;
    server_.start();
  }
  ~TestServer() { server_.shutdown(std::chrono::seconds(5)); }

  const Address& addr() const { return addr_; }
  uint16_t port() const { return addr_.port(); }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port()) + std::string(path);
  }
  Server& server() { return server_; }

 private:
  Server server_;
  Address addr_;
};

// connect() opens a client connection with the safety deadline set.
inline TcpStream connect(const TestServer& s) {
  auto c = TcpStream::connect(s.addr(), std::chrono::seconds(5));
  EXPECT_TRUE(c) << c.error().message();
  if (!c) return TcpStream();
  c->set_deadline(std::chrono::steady_clock::now() + kSafety);
  return std::move(*c);
}

// read_all() reads until the server closes (or the safety deadline).
inline std::string read_all(TcpStream& c) {
  std::string out;
  char buf[16384];
  for (;;) {
    auto n = c.read(buf);
    if (!n) {
      // A reset after the answer counts as a close.
      if (n.error() == std::errc::timed_out) ADD_FAILURE() << "no close before the safety deadline";
      break;
    }
    if (*n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

// round_trip() sends `request` on a new connection, optionally half-closes, and
// returns everything the server sends until it closes.
inline std::string round_trip(const TestServer& s, std::string_view request,
                              bool half_close = false) {
  TcpStream c = connect(s);
  if (!c.is_open()) return {};
  EXPECT_TRUE(c.write_all(request));
  if (half_close) {
    EXPECT_TRUE(c.shutdown(SHUT_WR));
  }
  return read_all(c);
}

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool complete = false;

  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n.size() == name.size() &&
          std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        return v;
      }
    }
    return {};
  }
  bool has_header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n.size() == name.size() &&
          std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        return true;
      }
    }
    return false;
  }
};

// parse_responses() splits a byte stream into responses framed by
// Content-Length or chunked encoding; `head` says the answers are to HEAD.
inline std::vector<Response> parse_responses(std::string_view data, bool head = false) {
  std::vector<Response> out;
  while (!data.empty()) {
    Response r;
    size_t end = data.find("\r\n\r\n");
    if (end == std::string_view::npos) break;
    std::string_view top = data.substr(0, end);
    data.remove_prefix(end + 4);
    size_t eol = top.find("\r\n");
    std::string_view line = top.substr(0, eol);
    if (line.size() < 12 || line.substr(0, 5) != "HTTP/") break;
    r.status = std::atoi(std::string(line.substr(9, 3)).c_str());
    while (eol != std::string_view::npos) {
      top.remove_prefix(eol + 2);
      eol = top.find("\r\n");
      std::string_view h = top.substr(0, eol);
      size_t colon = h.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view v = h.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      r.headers.emplace_back(std::string(h.substr(0, colon)), std::string(v));
    }
    if (r.status == 100) {
      r.complete = true;
      out.push_back(std::move(r));
      continue;
    }
    if (head || r.status == 204 || r.status == 304) {
      r.complete = true;
    } else if (r.header("Transfer-Encoding") == "chunked") {
      for (;;) {
        size_t le = data.find("\r\n");
        if (le == std::string_view::npos) break;
        size_t n = std::strtoul(std::string(data.substr(0, le)).c_str(), nullptr, 16);
        if (data.size() < le + 2 + n + 2) break;
        r.body.append(data.substr(le + 2, n));
        data.remove_prefix(le + 2 + n + 2);
        if (n == 0) {
          r.complete = true;
          break;
        }
      }
    } else if (r.has_header("Content-Length")) {
      size_t n = std::strtoul(r.header("Content-Length").c_str(), nullptr, 10);
      if (data.size() < n) break;
      r.body = std::string(data.substr(0, n));
      data.remove_prefix(n);
      r.complete = true;
    } else {
      r.body = std::string(data);  // delimited by the close
      data = {};
      r.complete = true;
    }
    out.push_back(std::move(r));
  }
  return out;
}

// read_responses() reads from `c` until `count` complete responses arrived.
inline std::vector<Response> read_responses(TcpStream& c, size_t count, bool head = false) {
  std::string data;
  char buf[16384];
  for (;;) {
    auto rs = parse_responses(data, head);
    if (rs.size() >= count && rs[count - 1].complete) return rs;
    auto n = c.read(buf);
    if (!n || *n == 0) return rs;
    data.append(buf, *n);
  }
}

// expect_serves() checks that the server still answers GET / on a new connection.
inline void expect_serves(const TestServer& s) {
  auto rs =
      parse_responses(round_trip(s, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[0].body, "Hello, World!");
}

struct CurlResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// curl() runs curl with `args` on the blocking pool (it blocks a thread, not
// the core serving the requests).
inline CurlResult curl(const std::string& args) {
  return spawn_blocking([&] {
    CurlResult r;
    std::string cmd = "curl -sS --max-time 20 " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    int st = ::pclose(p);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
  });
}

}  // namespace fiber::http::testing
