// The server against a real client: curl, run on the blocking pool.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tests/http/http_test_support.h"

namespace fiber::http::testing {
namespace {

class HttpCurlTest : public fiber::testing::DriverTest {};

TEST_P(HttpCurlTest, GetAnswersHelloWorld) {
  fiber::run(
      [] {
        TestServer s;
        auto r = curl("-i " + s.url("/"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        auto rs = parse_responses(r.output);
        ASSERT_EQ(rs.size(), 1u) << r.output;
        EXPECT_EQ(rs[0].status, 200);
        EXPECT_EQ(rs[0].body, "Hello, World!");
        EXPECT_EQ(rs[0].header("Content-Length"), "13");
        // "Sun, 06 Nov 1994 08:49:37 GMT"
        EXPECT_EQ(rs[0].header("Date").size(), 29u) << rs[0].header("Date");
        EXPECT_TRUE(rs[0].header("Date").ends_with(" GMT"));
      },
      options());
}

TEST_P(HttpCurlTest, PostEchoesTheBody) {
  fiber::run(
      [] {
        TestServer s;
        auto r = curl("--data-binary 'hello, echo' " + s.url("/echo"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_EQ(r.output, "hello, echo");
      },
      options());
}

TEST_P(HttpCurlTest, ChunkedUploadIsEchoed) {
  fiber::run(
      [] {
        TestServer s;
        std::string big(100000, 'x');
        for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
        // curl reads the body from stdin and, with this header, sends it chunked.
        // One file per process: ctest runs the two drivers' halves in parallel.
        std::string path =
            ::testing::TempDir() + "/chunked_upload." + std::to_string(::getpid()) + ".txt";
        FILE* f = std::fopen(path.c_str(), "w");
        ASSERT_NE(f, nullptr);
        std::fwrite(big.data(), 1, big.size(), f);
        std::fclose(f);
        auto r =
            curl("-H 'Transfer-Encoding: chunked' --data-binary @" + path + " " + s.url("/echo"));
        EXPECT_EQ(r.exit_code, 0);
        EXPECT_EQ(r.output.size(), big.size());
        EXPECT_TRUE(r.output == big);
        std::remove(path.c_str());
      },
      options());
}

TEST_P(HttpCurlTest, KeepAliveReusesTheConnection) {
  fiber::run(
      [] {
        TestServer s;
        auto r = curl("-v " + s.url("/") + " " + s.url("/stats"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find("Re-using existing connection"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("Hello, World!"), std::string::npos);
        EXPECT_NE(r.output.find("\"schedulers\":[{"), std::string::npos);
      },
      options());
}

TEST_P(HttpCurlTest, HeadHasTheLengthButNoBody) {
  fiber::run(
      [] {
        TestServer s;
        auto r = curl("-I " + s.url("/"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        auto rs = parse_responses(r.output, /*head=*/true);
        ASSERT_EQ(rs.size(), 1u) << r.output;
        EXPECT_EQ(rs[0].status, 200);
        EXPECT_EQ(rs[0].header("Content-Length"), "13");
        EXPECT_EQ(r.output.find("Hello"), std::string::npos);
      },
      options());
}

TEST_P(HttpCurlTest, ExpectContinueGetsTheBodyThrough) {
  fiber::run(
      [] {
        TestServer s;
        auto r =
            curl("-v -H 'Expect: 100-continue' --data-binary 'after continue' " + s.url("/echo"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find("HTTP/1.1 100 Continue"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("after continue"), std::string::npos);
      },
      options());
}

TEST_P(HttpCurlTest, StatsReportsEveryScheduler) {
  fiber::run(
      [] {
        TestServer s;
        auto r = curl(s.url("/stats"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        std::string driver = GetParam() == DriverKind::kIoUring ? "io_uring" : "epoll";
        EXPECT_NE(r.output.find("\"driver\":\"" + driver + "\""), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("{\"index\":0,"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("{\"index\":1,"), std::string::npos) << r.output;
        for (const char* k : {"fibers_alive", "fibers_spawned", "io_ops", "context_switches",
                              "stalls", "longest_stall_ns", "slice_yields"}) {
          EXPECT_NE(r.output.find(k), std::string::npos) << k;
        }
      },
      options(2));
}

TEST_P(HttpCurlTest, DebugFibersListsTheFibersOfEveryCore) {
  fiber::run(
      [] {
        TestServer s;
        auto r = curl(s.url("/debug/fibers"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        // The handler's own fiber, and main, waiting for curl on the pool.
        EXPECT_NE(r.output.find("[running], spawned at"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("[spawn_blocking, for "), std::string::npos) << r.output;
        EXPECT_NE(r.output.find(" on core 1 ["), std::string::npos) << r.output;
      },
      options(2));
}

TEST_P(HttpCurlTest, ChunkedResponseArrivesWhole) {
  fiber::run(
      [] {
        TestServer s;
        auto r = curl("-v " + s.url("/chunked"));
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find("< Transfer-Encoding: chunked"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("chunk 1\nchunk 2\nchunk 3\n"), std::string::npos) << r.output;
      },
      options());
}

// Streamed pieces of 64 KiB and more leave from the handler's buffer (no copy in
// the connection); small ones are buffered. Mixed, in both framings, the body
// arrives whole and in order.
TEST_P(HttpCurlTest, BigStreamedPiecesArriveWhole) {
  std::string body;
  for (size_t n : {100u, 70000u, 5u, 65536u, 200000u, 1u}) {
    for (size_t i = 0; i < n; ++i) body.push_back(static_cast<char>('a' + (body.size() * 7) % 26));
  }
  fiber::run(
      [&body] {
        TestServer s(
            [&body](const Request& req, ResponseWriter& w) {
              if (req.path() == "/length") w.set_content_length(body.size());
              if (!w.flush()) return;
              size_t off = 0;
              for (size_t n : {100u, 70000u, 5u, 65536u, 200000u, 1u}) {
                w.write(std::string_view(body).substr(off, n));
                off += n;
              }
            },
            ServerOptions{});
        for (const char* path : {"/chunked", "/length"}) {
          auto r = curl("-i " + s.url(path));
          EXPECT_EQ(r.exit_code, 0) << path;
          EXPECT_NE(r.output.find(std::string(path) == "/chunked" ? "Transfer-Encoding: chunked"
                                                                  : "Content-Length: 335642"),
                    std::string::npos)
              << path;
          EXPECT_TRUE(r.output.ends_with(body)) << path << ": " << r.output.size() << " bytes";
        }
      },
      options());
}

TEST_P(HttpCurlTest, ServesOnEveryCore) {
  fiber::run(
      [] {
        TestServer s;
        for (int i = 0; i < 8; ++i) {
          auto r = curl(s.url("/"));
          EXPECT_EQ(r.output, "Hello, World!");
        }
      },
      options(2));
}

FIBER_INSTANTIATE_DRIVER_TESTS(HttpCurlTest);

}  // namespace
}  // namespace fiber::http::testing
