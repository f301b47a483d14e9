// Files, UDP, Unix-domain sockets, scatter/gather, readiness waits and name
// resolution, on both drivers.
#include <gtest/gtest.h>
#include <netdb.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "fiber/fiber.h"
#include "fiber/file.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class IoTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(IoTest);

// TempDir is a fresh directory, removed with its files at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fiber-io-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<char> pattern(size_t n, unsigned seed) {
  std::vector<char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 2654435761u + seed) >> 7);
  return v;
}

TEST_P(IoTest, FileReadsAndWritesAtOffsets) {
  TempDir dir;
  run(
      [&] {
        auto f = File::open(dir.file("data"), O_RDWR | O_CREAT | O_TRUNC, 0600);
        ASSERT_TRUE(f) << f.error().message();
        std::vector<char> a = pattern(100000, 1), b = pattern(5000, 2);
        ASSERT_TRUE(f->write_all_at(a, 0));
        ASSERT_TRUE(f->write_all_at(b, 200000));  // leaves a hole of zeros
        ASSERT_TRUE(f->fsync());
        auto size = f->size();
        ASSERT_TRUE(size);
        EXPECT_EQ(*size, 205000u);

        std::vector<char> got(a.size());
        ASSERT_TRUE(f->read_exact_at(got, 0));
        EXPECT_TRUE(got == a);
        std::vector<char> hole(100);
        ASSERT_TRUE(f->read_exact_at(hole, 150000));
        EXPECT_EQ(hole, std::vector<char>(100, 0));
        std::vector<char> tail(b.size());
        ASSERT_TRUE(f->read_exact_at(tail, 200000));
        EXPECT_TRUE(tail == b);

        char buf[10];
        auto eof = f->read_at(buf, 205000);
        ASSERT_TRUE(eof);
        EXPECT_EQ(*eof, 0u);
        std::vector<char> too_long(10);
        EXPECT_EQ(f->read_exact_at(too_long, 204995).error(), std::errc::result_out_of_range);
        EXPECT_EQ(f->read_at(std::span<char>(), 0).error(), std::errc::invalid_argument);
        f->close();
        EXPECT_FALSE(f->is_open());
        EXPECT_EQ(f->read_at(buf, 0).error(), std::errc::bad_file_descriptor);
      },
      options());
}

TEST_P(IoTest, FileErrorsAreValues) {
  TempDir dir;
  run(
      [&] {
        auto missing = File::open(dir.file("missing"));
        ASSERT_FALSE(missing);
        EXPECT_EQ(missing.error(), std::errc::no_such_file_or_directory);
        EXPECT_EQ(File::open("").error(), std::errc::invalid_argument);
        EXPECT_EQ(File::open(std::string_view("a\0b", 3)).error(), std::errc::invalid_argument);
        auto ro = File::open(dir.file("ro"), O_RDONLY | O_CREAT, 0600);
        ASSERT_TRUE(ro);
        EXPECT_EQ(ro->write_at(std::string_view("x"), 0).error(), std::errc::bad_file_descriptor);
        File never_opened;
        EXPECT_EQ(never_opened.fsync().error(), std::errc::bad_file_descriptor);
      },
      options());
}

TEST_P(IoTest, ManyFibersOnBothCoresShareAFile) {
  TempDir dir;
  run(
      [&] {
        constexpr int kFibers = 64;
        constexpr size_t kChunk = 8192;
        std::string path = dir.file("shared");
        { ASSERT_TRUE(File::open(path, O_RDWR | O_CREAT, 0600)); }
        WaitGroup wg;
        std::atomic<int> ok{0};
        for (int i = 0; i < kFibers; ++i) {
          wg.add(1);
          go_on(i % 2, [&, i] {
            auto f = File::open(path, O_RDWR);
            std::vector<char> mine = pattern(kChunk, i);
            if (f && f->write_all_at(mine, i * kChunk)) {
              std::vector<char> back(kChunk);
              if (f->read_exact_at(back, i * kChunk) && back == mine) ++ok;
            }
            wg.done();
          });
        }
        wg.wait();
        EXPECT_EQ(ok.load(), kFibers);
        auto f = File::open(path);
        ASSERT_TRUE(f);
        EXPECT_EQ(*f->size(), kFibers * kChunk);
      },
      options(2));
}

TEST_P(IoTest, UdpDatagramsCarryTheirSender) {
  run(
      [] {
        auto a = UdpSocket::bind(*Address::parse("127.0.0.1:0"));
        auto b = UdpSocket::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(a && b);
        Address at_a = *a->local_address(), at_b = *b->local_address();
        auto receiver = spawn([&] {
          char buf[64];
          Address from;
          auto n = b->recv_from(buf, &from);  // parks first: nothing sent yet
          EXPECT_TRUE(n);
          EXPECT_EQ(from.to_string(), at_a.to_string());
          return std::string(buf, n ? *n : 0);
        });
        yield();
        auto sent = a->send_to(std::string_view("hello"), at_b);
        ASSERT_TRUE(sent);
        EXPECT_EQ(*sent, 5u);
        EXPECT_EQ(receiver.join(), "hello");

        // A datagram longer than the buffer is cut to fit.
        ASSERT_TRUE(a->send_to(std::string_view("0123456789"), at_b));
        char small[4];
        auto n = b->recv_from(small);
        ASSERT_TRUE(n);
        EXPECT_EQ(std::string(small, *n), "0123");
        // An empty datagram is one datagram.
        ASSERT_TRUE(a->send_to(std::string_view(), at_b));
        char buf[8];
        auto empty = b->recv_from(buf);
        ASSERT_TRUE(empty);
        EXPECT_EQ(*empty, 0u);

        // Connected sockets use send() and recv().
        ASSERT_TRUE(a->connect(at_b));
        ASSERT_TRUE(a->send(std::string_view("abc")));
        auto m = b->recv(buf);
        ASSERT_TRUE(m);
        EXPECT_EQ(std::string(buf, *m), "abc");

        b->set_read_deadline(std::chrono::steady_clock::now() + 10ms);
        EXPECT_EQ(b->recv(buf).error(), std::errc::timed_out);
        EXPECT_EQ(b->recv(std::span<char>()).error(), std::errc::invalid_argument);
        EXPECT_EQ(UdpSocket::bind(Address()).error(), std::errc::invalid_argument);
      },
      options());
}

TEST_P(IoTest, UnixStreamsEchoAndReportBadPaths) {
  TempDir dir;
  run(
      [&] {
        for (std::string path :
             {std::string("@fiber-io-test-") + std::to_string(getpid()), dir.file("sock")}) {
          auto ln = UnixListener::bind(path);
          ASSERT_TRUE(ln) << path << ": " << ln.error().message();
          auto again = UnixListener::bind(path);
          ASSERT_FALSE(again);
          EXPECT_EQ(again.error(), std::errc::address_in_use);
          auto server = spawn([&] {
            auto c = ln->accept();
            if (!c) return false;
            char buf[4];  // "ping" may come in pieces
            return c->read_exact(buf) && c->write_all(buf);
          });
          auto c = UnixStream::connect(path);
          ASSERT_TRUE(c) << c.error().message();
          ASSERT_TRUE(c->write_all(std::string_view("ping")));
          char buf[4];
          ASSERT_TRUE(c->read_exact(buf));
          EXPECT_EQ(std::string(buf, 4), "ping");
          EXPECT_TRUE(server.join());
        }
        EXPECT_EQ(UnixStream::connect(std::string(200, 'x')).error(), std::errc::filename_too_long);
        EXPECT_EQ(UnixStream::connect("").error(), std::errc::invalid_argument);
        EXPECT_EQ(UnixStream::connect(dir.file("nobody")).error(),
                  std::errc::no_such_file_or_directory);
      },
      options());
}

// advance() drops the first `n` bytes from the buffers of a readv/writev call.
template <class T>
void advance(std::vector<std::span<T>>& bufs, size_t n) {
  while (n > 0 && !bufs.empty()) {
    size_t k = std::min(n, bufs.front().size());
    bufs.front() = bufs.front().subspan(k);
    n -= k;
    if (bufs.front().empty()) bufs.erase(bufs.begin());
  }
}

TEST_P(IoTest, ScatterGatherAndReadinessWaits) {
  run(
      [] {
        auto p = UnixStream::pair();
        ASSERT_TRUE(p);
        auto& [x, y] = *p;
        // Nothing to read yet: the wait times out.
        y.set_read_deadline(std::chrono::steady_clock::now() + 10ms);
        EXPECT_EQ(y.wait_readable().error(), std::errc::timed_out);
        y.set_read_deadline({});
        EXPECT_TRUE(x.wait_writable());

        // A stream may take or give fewer bytes than asked: loop until all 14
        // have gone through, each call starting where the last one stopped.
        std::string a = "scatter", b = "/", c = "gather";
        std::vector<std::span<const char>> out = {a, b, c};
        for (size_t sent = 0; sent < 14;) {
          auto w = x.writev(out);
          ASSERT_TRUE(w);
          ASSERT_GT(*w, 0u);
          sent += *w;
          advance(out, *w);
        }
        EXPECT_TRUE(y.wait_readable());
        char p1[3], p2[20];
        std::vector<std::span<char>> in = {p1, p2};
        for (size_t got = 0; got < 14;) {
          auto r = y.readv(in);
          ASSERT_TRUE(r);
          ASSERT_GT(*r, 0u);
          got += *r;
          advance(in, *r);
        }
        EXPECT_EQ(std::string(p1, 3) + std::string(p2, 11), "scatter/gather");

        std::vector<std::span<const char>> too_many(Stream::kMaxIov + 1, std::span<const char>(a));
        EXPECT_EQ(x.writev(too_many).error(), std::errc::invalid_argument);
        std::span<char> none[] = {std::span<char>()};
        EXPECT_EQ(y.readv(none).error(), std::errc::invalid_argument);
      },
      options());
}

TEST_P(IoTest, ResolvesNamesOnTheBlockingPool) {
  run(
      [] {
        auto local = resolve("localhost:80");
        ASSERT_TRUE(local) << local.error().message();
        bool loopback = false;
        for (const Address& a : *local) {
          EXPECT_EQ(a.port(), 80);
          loopback |= a.to_string() == "127.0.0.1:80" || a.to_string() == "[::1]:80";
        }
        EXPECT_TRUE(loopback);
        auto numeric = resolve("[::1]:8080");
        ASSERT_TRUE(numeric);
        EXPECT_EQ(numeric->front().to_string(), "[::1]:8080");
        auto bad_service = resolve("localhost:no-such-service-here");
        ASSERT_FALSE(bad_service);
        EXPECT_EQ(&bad_service.error().category(), &resolver_category());
        EXPECT_EQ(resolve("no-port").error(), std::errc::invalid_argument);
        EXPECT_EQ(resolve(":80").error(), std::errc::invalid_argument);

        // dial() tries each address of a name until one answers.
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        auto server = spawn([&] { return ln->accept().has_value(); });
        auto c = TcpStream::dial("localhost:" + std::to_string(ln->local_address()->port()));
        ASSERT_TRUE(c) << c.error().message();
        EXPECT_TRUE(server.join());
      },
      options());
}

}  // namespace
}  // namespace fiber
