// read_full, LimitReader, copy (both paths), BufReader / BufWriter and
// dial / resolve with a context, on both drivers.
#include "fiber/ioutil.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>

#include "fiber/bufio.h"
#include "fiber/dial.h"
#include "fiber/fiber.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;

class IoUtilTest : public testing::DriverTest {};
FIBER_INSTANTIATE_DRIVER_TESTS(IoUtilTest);

// StringReader hands out a string in pieces of at most `step` bytes.
struct StringReader {
  std::string data;
  size_t step = SIZE_MAX;
  size_t at = 0;
  Result<size_t> read(std::span<char> buf) {
    size_t n = std::min({buf.size(), data.size() - at, step});
    std::copy_n(data.data() + at, n, buf.data());
    at += n;
    return n;
  }
};

// StringWriter collects what is written, `step` bytes at most per call; after
// `fail_after` bytes it fails with EPIPE.
struct StringWriter {
  std::string data;
  size_t step = SIZE_MAX;
  size_t fail_after = SIZE_MAX;
  int writes = 0;
  Result<size_t> write(std::span<const char> buf) {
    ++writes;
    if (data.size() >= fail_after) return std::errc::broken_pipe;
    size_t n = std::min(buf.size(), step);
    data.append(buf.data(), n);
    return n;
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

TEST_P(IoUtilTest, ReadFullFillsTheBufferOrSaysHowTheStreamEnded) {
  run(
      [] {
        StringReader r{"hello world", 3};
        char buf[5];
        Result<size_t> n = read_full(r, buf);
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, 5u);
        EXPECT_EQ(std::string(buf, 5), "hello");
        char rest[10];
        n = read_full(r, rest);  // 6 left: ends part way
        EXPECT_EQ(n.error(), IoError::kUnexpectedEof);
        EXPECT_EQ(n.error().message(), "unexpected EOF");
        n = read_full(r, rest);
        EXPECT_EQ(n.error(), IoError::kEof);
      },
      options(1));
}

TEST_P(IoUtilTest, LimitReaderStopsAtItsLimit) {
  run(
      [] {
        StringReader r{pattern(100), 7};
        LimitReader lim(r, 30);
        StringWriter w;
        Result<uint64_t> n = copy(w, lim);
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, 30u);
        EXPECT_EQ(w.data, pattern(100).substr(0, 30));
        EXPECT_EQ(lim.remaining(), 0u);
        EXPECT_EQ(r.at, 30u);  // read no further than the limit
      },
      options(1));
}

TEST_P(IoUtilTest, CopyBetweenAnyReaderAndWriterSurvivesShortWritesAndReportsErrors) {
  run(
      [] {
        StringReader r{pattern(100000), 1000};
        StringWriter w{"", 333};
        Result<uint64_t> n = copy(w, r);
        ASSERT_TRUE(n);
        EXPECT_EQ(*n, 100000u);
        EXPECT_EQ(w.data, pattern(100000));
        StringReader r2{pattern(100000)};
        StringWriter broken{"", SIZE_MAX, 5000};
        EXPECT_EQ(copy(broken, r2).error(), std::errc::broken_pipe);
      },
      options(1));
}

// copy_through() sends `size` bytes into a pair, copies them to another pair
// with `mode`, and reads them at the far end.
void copy_through(CopyMode mode, size_t size, bool expect_splice_refused) {
  auto a = UnixStream::pair();
  auto b = UnixStream::pair();
  ASSERT_TRUE(a && b);
  auto& [a_in, a_out] = *a;  // writer -> a_in ... a_out -> copy -> b_in ... b_out
  auto& [b_in, b_out] = *b;
  const std::string data = pattern(size);
  WaitGroup wg;
  wg.add(2);
  go([&] {
    EXPECT_TRUE(a_in.write_all(data));
    a_in.close();
    wg.done();
  });
  std::string got;
  go([&] {
    char buf[8192];
    for (;;) {
      Result<size_t> n = b_out.read(buf);
      if (!n || *n == 0) break;
      got.append(buf, *n);
    }
    wg.done();
  });
  Result<uint64_t> n = copy(b_in, a_out, mode);
  if (expect_splice_refused) {
    EXPECT_EQ(n.error(), std::errc::operation_not_supported);
    (void)copy(b_in, a_out, CopyMode::kReadWrite);  // drain, so the writer ends
  } else {
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, size);
  }
  b_in.close();
  wg.wait();
  EXPECT_EQ(got, data);
}

TEST_P(IoUtilTest, CopyBetweenSocketsMovesEveryByteByReadAndWrite) {
  run([] { copy_through(CopyMode::kReadWrite, 3 << 20, false); }, options(1));
}

TEST_P(IoUtilTest, CopyBetweenSocketsSplicesUnderEpollAndFallsBackUnderIoUring) {
  const bool blocking_fds = GetParam() == DriverKind::kIoUring;
  run(
      [&] {
        copy_through(CopyMode::kSplice, 3 << 20, blocking_fds);
        copy_through(CopyMode::kAuto, 3 << 20, false);
      },
      options(1));
}

TEST_P(IoUtilTest, CopyEndsWithTheSourcesDeadline) {
  run(
      [] {
        auto a = UnixStream::pair();
        auto b = UnixStream::pair();
        ASSERT_TRUE(a && b);
        a->second.set_read_deadline(std::chrono::steady_clock::now() + 20ms);
        Result<uint64_t> n = copy(b->first, a->second);  // nothing ever comes
        EXPECT_EQ(n.error(), std::errc::timed_out);
      },
      options(1));
}

TEST_P(IoUtilTest, BufReaderReadsLinesAndDelimitedPiecesAcrossSmallReads) {
  run(
      [] {
        StringReader r{"first\r\nsecond\nthird;fourth\nlast", 3};
        BufReader in(r, 16);
        EXPECT_EQ(*in.read_line(), "first");
        Result<std::string_view> p = in.peek(3);
        ASSERT_TRUE(p);
        EXPECT_EQ(*p, "sec");
        EXPECT_EQ(*in.read_line(), "second");
        EXPECT_EQ(*in.read_until(';'), "third;");
        EXPECT_EQ(*in.discard(3), 3u);
        EXPECT_EQ(*in.read_line(), "rth");
        EXPECT_EQ(in.peek(17).error(), IoError::kBufferFull);  // more than the buffer
        EXPECT_EQ(in.peek(5).error(), IoError::kEof);          // only "last" is left
        EXPECT_EQ(in.buffered(), 4u);
        EXPECT_EQ(*in.read_line(), "last");  // the unterminated last line
        EXPECT_EQ(in.read_line().error(), IoError::kEof);
        char c;
        EXPECT_EQ(*in.read({&c, 1}), 0u);
      },
      options(1));
}

TEST_P(IoUtilTest, BufReaderRefusesALineOverItsMaximum) {
  run(
      [] {
        StringReader r{std::string(100, 'x') + "\nok\n", 7};
        BufReader in(r, 16);
        EXPECT_EQ(in.read_line(50).error(), IoError::kBufferFull);
        StringReader r2{"short\n"};
        BufReader in2(r2);
        EXPECT_EQ(*in2.read_line(5), "short");  // the limit is on the line, not its "\n"
      },
      options(1));
}

TEST_P(IoUtilTest, BufWriterBatchesSmallWritesAndFlushes) {
  run(
      [] {
        StringWriter w;
        BufWriter out(w, 64);
        for (int i = 0; i < 10; ++i) ASSERT_TRUE(out.write("abcde"));
        EXPECT_EQ(w.writes, 0);  // all buffered
        EXPECT_EQ(out.buffered(), 50u);
        ASSERT_TRUE(out.write(std::string(30, 'z')));  // fills: one write of 64
        EXPECT_EQ(w.writes, 1);
        ASSERT_TRUE(out.flush());
        EXPECT_EQ(w.data.size(), 80u);
        ASSERT_TRUE(out.write(pattern(1000)));  // big, empty buffer: straight through
        EXPECT_EQ(out.buffered(), 0u);
        EXPECT_EQ(w.data.substr(80), pattern(1000));

        StringWriter broken{"", SIZE_MAX, 0};
        BufWriter bad(broken, 16);
        ASSERT_TRUE(bad.write("abc"));
        EXPECT_EQ(bad.flush().error(), std::errc::broken_pipe);
        EXPECT_EQ(bad.write("x").error(), std::errc::broken_pipe);  // sticky
        EXPECT_EQ(broken.writes, 1);
      },
      options(1));
}

TEST_P(IoUtilTest, BufReaderAndWriterWorkOverATcpConnection) {
  run(
      [] {
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        go_on(1, [at] {
          auto [ctx, cancel] = with_timeout(background(), 10s);
          auto c = dial(ctx, at.to_string());
          ASSERT_TRUE(c);
          BufWriter out(*c);
          for (int i = 0; i < 100; ++i) ASSERT_TRUE(out.write("line " + std::to_string(i) + "\n"));
          ASSERT_TRUE(out.flush());
          cancel();
        });
        auto conn = ln->accept();
        ASSERT_TRUE(conn);
        BufReader in(*conn);
        for (int i = 0; i < 100; ++i) {
          Result<std::string> line = in.read_line();
          ASSERT_TRUE(line);
          EXPECT_EQ(*line, "line " + std::to_string(i));
        }
        EXPECT_EQ(in.read_line().error(), IoError::kEof);
      },
      options(2));
}

TEST_P(IoUtilTest, DialAndResolveGiveUpWithTheContextsError) {
  run(
      [] {
        auto [ctx, cancel] = with_cancel(background());
        cancel();
        Result<TcpStream> c = dial(ctx, "127.0.0.1:1");
        EXPECT_EQ(c.error(), ContextError::kCanceled);
        EXPECT_EQ(c.error().message(), "context canceled");
        EXPECT_EQ(resolve(ctx, "localhost:80").error(), std::errc::operation_canceled);
        auto [dead, cancel_dead] = with_timeout(background(), 0s);
        EXPECT_EQ(dial(dead, "localhost:1").error(), std::errc::timed_out);
        cancel_dead();

        auto [live, cancel_live] = with_timeout(background(), 10s);
        Result<std::vector<Address>> addrs = resolve(live, "localhost:80");
        ASSERT_TRUE(addrs) << addrs.error().message();
        EXPECT_FALSE(addrs->empty());
        // A refused connection is the socket's error while ctx is live.
        auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
        ASSERT_TRUE(ln);
        Address at = *ln->local_address();
        ln->close();
        EXPECT_EQ(dial(live, at.to_string()).error(), std::errc::connection_refused);
        cancel_live();
      },
      options(1));
}

}  // namespace
}  // namespace fiber
