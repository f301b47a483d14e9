// The server against hostile byte streams (RELIABILITY T40-T43): the
// malformed-request corpus in malformed_requests.txt, the same corpus with a
// smuggled request behind each case, a pipeline cut at every byte, and the
// limits with the memory they may cost.
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fiber/detail/sanitizer.h"
#include "tests/http/http_test_support.h"

#if defined(FIBER_ASAN) || defined(FIBER_TSAN)
// From the sanitizer runtime (declared here: gcc ships no
// <sanitizer/allocator_interface.h>).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace fiber::http::testing {
namespace {

// kWatchdog bounds each exchange: a case the server neither answers nor closes
// fails here instead of waiting for kSafety.
constexpr auto kWatchdog = std::chrono::seconds(5);

// ---- the corpus --------------------------------------------------------------

struct Case {
  int line = 0;
  std::set<int> allowed;  // statuses the server may answer
  std::string text;       // the line as written, for messages
  std::string bytes;      // the request bytes
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// unescape() decodes a case's bytes: \r \n \t \\ \xHH and \R<count>:<c>.
// Returns false on a malformed escape.
bool unescape(std::string_view in, std::string& out) {
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out.push_back(in[i]);
      continue;
    }
    if (++i == in.size()) return false;
    switch (in[i]) {
      case 'r':
        out.push_back('\r');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case 'x': {
        if (i + 2 >= in.size()) return false;
        int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        break;
      }
      case 'R': {
        size_t colon = in.find(':', i);
        if (colon == std::string_view::npos || colon + 1 >= in.size()) return false;
        size_t count =
            std::strtoul(std::string(in.substr(i + 1, colon - i - 1)).c_str(), nullptr, 10);
        if (count == 0) return false;
        out.append(count, in[colon + 1]);
        i = colon + 1;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

// load_corpus() reads malformed_requests.txt; a line it cannot read fails the
// test that loads it.
std::vector<Case> load_corpus() {
  std::vector<Case> cases;
  std::ifstream in(FIBER_HTTP_MALFORMED_CORPUS);
  EXPECT_TRUE(in.is_open()) << "cannot open " << FIBER_HTTP_MALFORMED_CORPUS;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    Case c;
    c.line = n;
    c.text = line;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || !unescape(std::string_view(line).substr(sp + 1), c.bytes)) {
      ADD_FAILURE() << "corpus line " << n << " is malformed: " << line;
      continue;
    }
    std::stringstream statuses(line.substr(0, sp));
    for (std::string s; std::getline(statuses, s, ',');) c.allowed.insert(std::atoi(s.c_str()));
    if (c.allowed.empty() || c.allowed.count(0) != 0) {
      ADD_FAILURE() << "corpus line " << n << " has no valid status set: " << line;
      continue;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

// ---- exchanges -------------------------------------------------------------------

struct Exchange {
  std::string data;      // everything the server sent
  bool closed = false;   // the server closed (or reset) before the watchdog
  int status_lines = 0;  // "HTTP/1." status lines in `data`
  int first_status = 0;  // the first one's code, 0 if none
};

int count_status_lines(std::string_view data) {
  int n = 0;
  for (size_t at = data.find("HTTP/1."); at != std::string_view::npos;
       at = data.find("HTTP/1.", at + 1)) {
    ++n;
  }
  return n;
}

// read_to_eof() reads until the server closes or the watchdog fires.
Exchange read_to_eof(TcpStream& c) {
  Exchange ex;
  char buf[16384];
  for (;;) {
    auto n = c.read(buf);
    if (!n) {
      ex.closed = n.error() != std::errc::timed_out;  // a reset counts as a close
      break;
    }
    if (*n == 0) {
      ex.closed = true;
      break;
    }
    ex.data.append(buf, *n);
  }
  ex.status_lines = count_status_lines(ex.data);
  if (ex.data.starts_with("HTTP/1.") && ex.data.size() >= 12) {
    ex.first_status = std::atoi(ex.data.substr(9, 3).c_str());
  }
  return ex;
}

// send_and_read() sends `bytes` on a new connection and reads until the close.
// A writer fiber sends, so that a request bigger than the socket buffers
// cannot block the read of an answer the server gives before reading it all;
// its write may fail once the server closes, which is allowed.
Exchange send_and_read(const TestServer& s, std::string_view bytes) {
  auto c = TcpStream::connect(s.addr(), kWatchdog);
  EXPECT_TRUE(c) << c.error().message();
  if (!c) return {};
  c->set_deadline(std::chrono::steady_clock::now() + kWatchdog);
  WaitGroup wg;
  wg.add(1);
  go([&] {
    (void)c->write_all(bytes);
    wg.done();
  });
  Exchange ex = read_to_eof(*c);
  wg.wait();
  return ex;
}

// expect_still_serves() checks that a valid GET / on a new connection is
// answered 200 with the demo's body.
void expect_still_serves(const TestServer& s, const std::string& after) {
  Exchange ex = send_and_read(s, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  auto rs = parse_responses(ex.data);
  ASSERT_EQ(rs.size(), 1u) << "after " << after << "\n" << ex.data;
  EXPECT_EQ(rs[0].status, 200) << "after " << after;
  EXPECT_EQ(rs[0].body, "Hello, World!") << "after " << after;
}

std::string describe(const Case& c) {
  return "corpus line " + std::to_string(c.line) + ": " + c.text.substr(0, 200);
}

// Each case the server leaves open costs a watchdog period: past a few, the
// corpus tests stop rather than run into the test's timeout.
constexpr int kMaxLeftOpen = 10;
void stop_early() { ADD_FAILURE() << kMaxLeftOpen << " cases left open: stopping here"; }

class HttpMalformedTest : public fiber::testing::DriverTest {};

// expect_each_case_refused() sends every corpus case, followed by `behind`, on
// a fresh connection: one status from the case's allowed set, then the close,
// and the server serves a valid request afterwards.
void expect_each_case_refused(const Options& options, const std::string& behind) {
  std::vector<Case> cases = load_corpus();
  ASSERT_GE(cases.size(), 300u);
  fiber::run(
      [&] {
        TestServer s;
        int left_open = 0;
        for (const Case& c : cases) {
          Exchange ex = send_and_read(s, c.bytes + behind);
          EXPECT_TRUE(ex.closed) << describe(c) << "\nnot closed; got: " << ex.data;
          if (!ex.closed && ++left_open == kMaxLeftOpen) return stop_early();
          EXPECT_EQ(ex.status_lines, 1) << describe(c) << "\ngot: " << ex.data;
          EXPECT_TRUE(c.allowed.count(ex.first_status) != 0)
              << describe(c) << "\nanswered " << ex.first_status << ": " << ex.data;
          expect_still_serves(s, describe(c));
        }
      },
      options);
}

// T40: every case gets one status from its allowed set, then the close; the
// server serves a valid request afterwards.
TEST_P(HttpMalformedTest, CorpusCasesAreRejectedAndClosed) {
  expect_each_case_refused(options(), "");
}

// T41: no second request is parsed out of an ambiguous message. Every corpus
// case (CL with TE, two CLs, TE not ending in chunked, chunkedchunked, folded
// TE, bad chunk sizes, chunk data longer than its size, ...) is sent with a
// valid request behind it in the same write: exactly one status line comes
// back before the close, whatever the case.
TEST_P(HttpMalformedTest, NoRequestIsSmuggledBehindACorpusCase) {
  expect_each_case_refused(options(), "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
}

// without_date() drops the Date header lines, the only bytes of the demo's
// answers that depend on the time.
std::string without_date(std::string_view data) {
  std::string out;
  for (;;) {
    size_t at = data.find("\r\nDate: ");
    if (at == std::string_view::npos) break;
    size_t eol = data.find("\r\n", at + 2);
    if (eol == std::string_view::npos) break;
    out.append(data.substr(0, at));
    data.remove_prefix(eol);
  }
  out.append(data);
  return out;
}

// server_side_fd() finds the server's end of the client connection `c` in
// this process (the server runs in it): the socket whose peer is c's local
// address. Returns -1 if the server has not accepted it yet.
int server_side_fd(const TcpStream& c) {
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (::getsockname(c.fd(), reinterpret_cast<sockaddr*>(&local), &len) != 0) return -1;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (dirent* e = ::readdir(dir)) {
    int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == c.fd() || fd == ::dirfd(dir)) continue;
    sockaddr_in peer{};
    len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0 &&
        peer.sin_family == AF_INET && peer.sin_port == local.sin_port &&
        peer.sin_addr.s_addr == local.sin_addr.s_addr) {
      found = fd;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

// wait_until_server_read() yields until the server has accepted `c` and read
// every byte sent on it so far, so that what is written next reaches it in
// another read. Returns false at the watchdog.
bool wait_until_server_read(const TcpStream& c) {
  auto deadline = std::chrono::steady_clock::now() + kWatchdog;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = server_side_fd(c);
    int unread = 0;
    if (fd >= 0 && ::ioctl(fd, FIONREAD, &unread) == 0 && unread == 0) return true;
    fiber::yield();  // the scheduler polls its driver between turns
  }
  return false;
}

// kPipeline is three requests: a GET, a chunked POST with an extension and a
// trailer, a GET answered with a chunked body and Connection: close.
constexpr std::string_view kPipeline =
    "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
    "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
    "X-Sum: 1\r\n\r\n"
    "GET /chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

// T42: kPipeline is sent in two writes cut at every byte offset, the second
// once the server has read the first. The answers must be the same bytes, Date
// aside, as for the pipeline in one write.

TEST_P(HttpMalformedTest, PipelineSplitAtEveryByteGivesTheSameAnswers) {
  fiber::run(
      [] {
        TestServer s;
        Exchange whole = send_and_read(s, kPipeline);
        ASSERT_TRUE(whole.closed);
        auto rs = parse_responses(whole.data);
        ASSERT_EQ(rs.size(), 3u) << whole.data;
        EXPECT_EQ(rs[0].body, "Hello, World!");
        EXPECT_EQ(rs[1].body, "hello world");
        EXPECT_EQ(rs[2].body, "chunk 1\nchunk 2\nchunk 3\n");
        const std::string expected = without_date(whole.data);
        for (size_t cut = 1; cut < kPipeline.size(); ++cut) {
          auto c = TcpStream::connect(s.addr(), kWatchdog);
          ASSERT_TRUE(c) << c.error().message();
          c->set_deadline(std::chrono::steady_clock::now() + kWatchdog);
          ASSERT_TRUE(c->write_all(kPipeline.substr(0, cut)));
          ASSERT_TRUE(wait_until_server_read(*c)) << "cut at " << cut;
          ASSERT_TRUE(c->write_all(kPipeline.substr(cut)));
          Exchange ex = read_to_eof(*c);
          EXPECT_TRUE(ex.closed) << "cut at " << cut;
          EXPECT_EQ(without_date(ex.data), expected) << "cut at " << cut;
        }
      },
      options());
}

// T42: the same pipeline delivered one byte per server read: each byte is
// written once the server has read the one before, which makes every read a
// single byte (gaps of a fixed time would not promise that) with the client's
// Nagle delay turned off. The answers must be the same bytes, Date aside.
TEST_P(HttpMalformedTest, PipelineOneByteAtATimeGivesTheSameAnswers) {
  fiber::run(
      [] {
        TestServer s;
        Exchange whole = send_and_read(s, kPipeline);
        ASSERT_TRUE(whole.closed);
        ASSERT_EQ(parse_responses(whole.data).size(), 3u) << whole.data;
        auto c = TcpStream::connect(s.addr(), kWatchdog);
        ASSERT_TRUE(c) << c.error().message();
        c->set_deadline(std::chrono::steady_clock::now() + kWatchdog);
        ASSERT_TRUE(c->set_nodelay(true));
        for (size_t i = 0; i < kPipeline.size(); ++i) {
          ASSERT_TRUE(c->write_all(kPipeline.substr(i, 1))) << "byte " << i;
          // After the last byte the server answers and closes: nothing to wait for.
          if (i + 1 < kPipeline.size()) {
            ASSERT_TRUE(wait_until_server_read(*c)) << "byte " << i;
          }
        }
        Exchange ex = read_to_eof(*c);
        EXPECT_TRUE(ex.closed);
        EXPECT_EQ(without_date(ex.data), without_date(whole.data));
      },
      options());
}

// T42: 100 pipelined GETs in one write are answered in order. The targets
// vary (200, 404, a chunked 200) so that an answer out of order shows.
TEST_P(HttpMalformedTest, HundredPipelinedGetsAreAnsweredInOrder) {
  fiber::run(
      [] {
        TestServer s;
        constexpr int kRequests = 100;
        std::string pipeline;
        std::vector<int> kinds;
        for (int i = 0; i < kRequests; ++i) {
          int kind = (i * 7 + i / 5) % 3;
          kinds.push_back(kind);
          const char* target = kind == 0 ? "/" : kind == 1 ? "/missing" : "/chunked";
          pipeline += std::string("GET ") + target + "?i=" + std::to_string(i) +
                      " HTTP/1.1\r\nHost: t\r\n" +
                      (i == kRequests - 1 ? "Connection: close\r\n" : "") + "\r\n";
        }
        Exchange ex = send_and_read(s, pipeline);
        EXPECT_TRUE(ex.closed);
        auto rs = parse_responses(ex.data);
        ASSERT_EQ(rs.size(), static_cast<size_t>(kRequests)) << ex.data.substr(0, 2000);
        for (int i = 0; i < kRequests; ++i) {
          ASSERT_TRUE(rs[i].complete) << "answer " << i;
          switch (kinds[i]) {
            case 0:
              EXPECT_EQ(rs[i].status, 200) << "answer " << i;
              EXPECT_EQ(rs[i].body, "Hello, World!") << "answer " << i;
              break;
            case 1:
              EXPECT_EQ(rs[i].status, 404) << "answer " << i;
              break;
            default:
              EXPECT_EQ(rs[i].status, 200) << "answer " << i;
              EXPECT_EQ(rs[i].body, "chunk 1\nchunk 2\nchunk 3\n") << "answer " << i;
          }
        }
      },
      options());
}

// ---- limits (T43) -------------------------------------------------------------

struct Oversized {
  const char* what;
  std::string bytes;
  int status;
};

// oversized() are requests over the default limits (8 KiB URI, 16 KiB head,
// 100 header fields, 8 MiB body).
std::vector<Oversized> oversized() {
  std::vector<Oversized> v;
  v.push_back({"64 KiB request line",
               "GET /" + std::string(64 * 1024, 'u') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414});
  v.push_back({"100 KiB header",
               "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(100 * 1024, 'b') + "\r\n\r\n",
               431});
  std::string many = "GET / HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 10000; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  v.push_back({"10,000 headers", many + "\r\n", 431});
  // The head never ends: the server must answer from the limit, not wait.
  v.push_back({"1 MiB without CRLFCRLF",
               "GET / HTTP/1.1\r\nHost: t\r\nX-Endless: " + std::string(1024 * 1024, 'e'), 431});
  // No body is sent: the answer must come from the head alone.
  v.push_back({"Content-Length over the limit",
               "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1073741824\r\n\r\n", 413});
  return v;
}

void expect_refused(const TestServer& s, const Oversized& o) {
  Exchange ex = send_and_read(s, o.bytes);
  EXPECT_TRUE(ex.closed) << o.what << ": not closed";
  EXPECT_EQ(ex.status_lines, 1) << o.what << ": " << ex.data;
  EXPECT_EQ(ex.first_status, o.status) << o.what << ": " << ex.data;
}

// memory_in_use() is the process's resident set (VmRSS). Under a sanitizer,
// whose allocator keeps freed blocks in quarantine and whose shadow memory
// grows with use, it is the allocator's live heap bytes instead.
size_t memory_in_use() {
#if defined(FIBER_ASAN) || defined(FIBER_TSAN)
  return __sanitizer_get_current_allocated_bytes();
#else
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmRSS: %zu kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib * 1024;
#endif
}

// T43: each limit answers its status and closes; the body over the limit is
// refused without being read (none is sent).
TEST_P(HttpMalformedTest, RequestsOverTheLimitsAreRefused) {
  fiber::run(
      [] {
        TestServer s;
        for (const Oversized& o : oversized()) {
          expect_refused(s, o);
          expect_still_serves(s, o.what);
        }
      },
      options());
}

// T43: 1000 requests over the limits leave the server's memory (in process)
// less than 10 MiB bigger.
TEST_P(HttpMalformedTest, ThousandOversizedRequestsCostNoMemory) {
  fiber::run(
      [] {
        TestServer s;
        const std::vector<Oversized> kinds = oversized();
        const size_t before = memory_in_use();
        ASSERT_GT(before, 0u);
        for (int i = 0; i < 1000; ++i) {
          expect_refused(s, kinds[i % kinds.size()]);
          if (::testing::Test::HasFailure()) return;  // one report, not a thousand
        }
        const size_t after = memory_in_use();
        EXPECT_LT(after, before + 10 * 1024 * 1024)
            << "grew from " << before << " to " << after << " bytes";
        expect_still_serves(s, "1000 oversized requests");
      },
      options());
}

FIBER_INSTANTIATE_DRIVER_TESTS(HttpMalformedTest);

}  // namespace
}  // namespace fiber::http::testing
