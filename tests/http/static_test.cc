// /static/: files from a directory, and no way out of it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/http/http_test_support.h"

namespace fiber::http::testing {
namespace {

// A directory tree made once per test:
//   <base>/secret.txt          outside the served directory
//   <base>/www/a.txt           "hello"
//   <base>/www/sub/b.txt       "nested"
//   <base>/www/big.bin         a file streamed in pieces
//   <base>/www/up -> <base>    a directory symlink leading out
//   <base>/www/leak.txt -> <base>/secret.txt
class HttpStaticTest : public fiber::testing::DriverTest {
 protected:
  void SetUp() override {
    fiber::testing::DriverTest::SetUp();
    if (IsSkipped()) return;
    char tmpl[] = "/tmp/fiber_http_static_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    www_ = base_ + "/www";
    ASSERT_EQ(::mkdir(www_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((www_ + "/sub").c_str(), 0755), 0);
    write(base_ + "/secret.txt", "top secret");
    write(www_ + "/a.txt", "hello");
    write(www_ + "/sub/b.txt", "nested");
    big_.resize(700000);
    for (size_t i = 0; i < big_.size(); ++i) big_[i] = static_cast<char>(i * 7 + i / 1000);
    write(www_ + "/big.bin", big_);
    ASSERT_EQ(::symlink(base_.c_str(), (www_ + "/up").c_str()), 0);
    ASSERT_EQ(::symlink((base_ + "/secret.txt").c_str(), (www_ + "/leak.txt").c_str()), 0);
  }
  void TearDown() override {
    if (!base_.empty()) std::system(("rm -rf '" + base_ + "'").c_str());
  }
  static void write(const std::string& path, const std::string& data) {
    std::ofstream(path, std::ios::binary) << data;
  }

  std::string base_, www_, big_;
};

Response get(const TestServer& s, const std::string& target, const char* method = "GET") {
  std::string out = round_trip(
      s, std::string(method) + " " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto rs = parse_responses(out, std::string_view(method) == "HEAD");
  EXPECT_EQ(rs.size(), 1u) << target << ": " << out.substr(0, 200);
  return rs.empty() ? Response{} : rs[0];
}

TEST_P(HttpStaticTest, ServesFilesUnderTheDirectory) {
  fiber::run(
      [&] {
        TestServer s(ServerOptions{}, DemoOptions{.static_dir = www_});
        Response a = get(s, "/static/a.txt");
        EXPECT_EQ(a.status, 200);
        EXPECT_EQ(a.body, "hello");
        EXPECT_EQ(a.header("Content-Type"), "text/plain; charset=utf-8");
        EXPECT_EQ(get(s, "/static/sub/b.txt").body, "nested");
        EXPECT_EQ(get(s, "/static/sub/%62.txt").body, "nested");  // percent-decoded
        EXPECT_EQ(get(s, "/static/./sub//b.txt").body, "nested");
        Response head = get(s, "/static/a.txt", "HEAD");
        EXPECT_EQ(head.status, 200);
        EXPECT_EQ(head.header("Content-Length"), "5");
        Response big = get(s, "/static/big.bin");
        EXPECT_EQ(big.status, 200);
        EXPECT_EQ(big.body.size(), big_.size());
        EXPECT_TRUE(big.body == big_);
        EXPECT_EQ(get(s, "/static/missing.txt").status, 404);
        EXPECT_EQ(get(s, "/static/sub").status, 404);  // a directory is not a file
      },
      options());
}

TEST_P(HttpStaticTest, PathsCannotEscapeTheDirectory) {
  fiber::run(
      [&] {
        TestServer s(ServerOptions{}, DemoOptions{.static_dir = www_});
        for (const char* target : {
                 "/static/../secret.txt",
                 "/static/sub/../../secret.txt",
                 "/static/%2e%2e/secret.txt",
                 "/static/%2E%2E/secret.txt",
                 "/static/%2e%2e%2fsecret.txt",
                 "/static/sub/..%2f..%2fsecret.txt",
                 "/static/.%2e/secret.txt",
                 "/static/a.txt%00.html",
                 "/static/%zz",
                 "/static/%2",
             }) {
          Response r = get(s, target);
          EXPECT_EQ(r.status, 400) << target;
          EXPECT_EQ(r.body.find("top secret"), std::string::npos) << target;
        }
        // Symlinks out of the directory: a final one is not followed, one on
        // the way is caught by the real-path check.
        for (const char* target : {"/static/leak.txt", "/static/up/secret.txt"}) {
          Response r = get(s, target);
          EXPECT_EQ(r.status, 404) << target;
          EXPECT_EQ(r.body.find("top secret"), std::string::npos) << target;
        }
        expect_serves(s);
      },
      options());
}

TEST(HttpStaticPathTest, DecodesAndRejects) {
  EXPECT_EQ(static_relative_path("a/b%20c.txt"), "a/b c.txt");
  EXPECT_EQ(static_relative_path("./a//b/"), "a/b");
  EXPECT_EQ(static_relative_path(""), "");
  EXPECT_EQ(static_relative_path(".."), std::nullopt);
  EXPECT_EQ(static_relative_path("a/%2E%2e/b"), std::nullopt);
  EXPECT_EQ(static_relative_path("a%00b"), std::nullopt);
  EXPECT_EQ(static_relative_path("a%"), std::nullopt);
  EXPECT_EQ(static_relative_path("a%4"), std::nullopt);
  EXPECT_EQ(static_relative_path("a%4g"), std::nullopt);
  EXPECT_EQ(static_relative_path("..."), "...");
}

FIBER_INSTANTIATE_DRIVER_TESTS(HttpStaticTest);

}  // namespace
}  // namespace fiber::http::testing
