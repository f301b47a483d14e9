// A TLS server fed bad input, on both drivers: garbage instead of a
// ClientHello, truncated records, a client that stops in mid-handshake, a
// renegotiation attempt, and many handshakes cut off by resets. In every case
// the connection ends with an error value, nothing leaks (the per-test leak
// check: fds, fibers, stacks, handles) and the server goes on serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "fiber/blocking.h"
#include "fiber/fiber.h"
#include "fiber/net.h"
#include "fiber/tls.h"
#include "tests/support/drivers.h"
#include "tests/support/leak_check.h"
#include "tests/tls/test_pki.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;
using testing::test_pki;

class TlsBadInputTest : public testing::DriverTest {
 protected:
  static void SetUpTestSuite() { (void)test_pki(); }
};
FIBER_INSTANTIATE_DRIVER_TESTS(TlsBadInputTest);

// Server is a TLS echo server on loopback: one fiber per connection, each
// connection's outcome ({} for a clean end, else the error) sent on `results`.
class Server {
 public:
  explicit Server(std::chrono::nanoseconds handshake_timeout = kDefaultHandshakeTimeout) {
    TlsServerOptions o;
    o.cert_file = test_pki().localhost.cert;
    o.key_file = test_pki().localhost.key;
    o.handshake_timeout = handshake_timeout;
    auto cfg = TlsServerConfig::make(o);
    EXPECT_TRUE(cfg);
    cfg_.emplace(std::move(*cfg));
    auto ln = TcpListener::bind(*Address::parse("127.0.0.1:0"));
    EXPECT_TRUE(ln);
    ln_ = std::move(*ln);
    at_ = *ln_.local_address();
    loop_done_.add(1);
    go([this] {
      for (;;) {
        auto c = ln_.accept();
        if (!c) break;
        ++accepted_;
        conns_.add(1);
        go([this, tls = TlsStream::server(std::move(*c), *cfg_)]() mutable {
          (void)results_.send(serve(tls));
          conns_.done();
        });
      }
      loop_done_.done();
    });
  }

  // stop() closes the listener and waits for every connection's fiber.
  void stop() {
    ln_.close();
    loop_done_.wait();
    conns_.wait();
  }

  const Address& at() const { return at_; }
  std::error_code next_result() {
    return results_.recv().value_or(std::make_error_code(std::errc::io_error));
  }
  int accepted() const { return accepted_; }

 private:
  static std::error_code serve(TlsStream& tls) {
    char buf[4096];
    for (;;) {
      auto n = tls.read(buf);  // handshakes first
      if (!n) return n.error();
      if (*n == 0) return tls.shutdown().error();
      if (auto w = tls.write_all({buf, *n}); !w) return w.error();
    }
  }

  std::optional<TlsServerConfig> cfg_;
  TcpListener ln_;
  Address at_;
  Chan<std::error_code> results_{4096};
  WaitGroup conns_;
  WaitGroup loop_done_;
  int accepted_ = 0;
};

// round_trip() is a well-behaved client: handshake, echo, close_notify both ways.
std::error_code round_trip(const Address& at) {
  TlsClientOptions o;
  o.root_ca_file = test_pki().ca.cert;
  auto cfg = TlsClientConfig::make(o);
  if (!cfg) return cfg.error();
  auto tcp = TcpStream::connect(at);
  if (!tcp) return tcp.error();
  TlsStream tls = TlsStream::client(std::move(*tcp), *cfg, "localhost");
  if (auto w = tls.write_all(std::string_view("ping")); !w) return w.error();
  char buf[4];
  if (auto r = tls.read_exact(buf); !r) return r.error();
  if (std::string(buf, 4) != "ping") return std::make_error_code(std::errc::protocol_error);
  if (auto s = tls.shutdown(); !s) return s.error();
  auto n = tls.read(buf);
  if (!n) return n.error();
  return *n == 0 ? std::error_code() : std::make_error_code(std::errc::protocol_error);
}

// send_raw() connects, sends `bytes`, ends its side, and reads until the
// server closes (end of stream or a reset).
void send_raw(const Address& at, const std::string& bytes) {
  auto tcp = TcpStream::connect(at);
  ASSERT_TRUE(tcp);
  ASSERT_TRUE(tcp->write_all(bytes));
  ASSERT_TRUE(tcp->shutdown(SHUT_WR));
  char buf[4096];
  for (;;) {
    auto n = tcp->read(buf);
    if (!n || *n == 0) break;
  }
}

void reset_on_close(TcpStream& s) {
  linger l{1, 0};
  ASSERT_EQ(setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
}

TEST_P(TlsBadInputTest, GarbageInsteadOfAClientHelloIsAProtocolError) {
  run(
      [&] {
        Server server;
        send_raw(server.at(), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        EXPECT_EQ(server.next_result(), TlsError::kProtocol);
        // A handshake record longer than TLS allows.
        send_raw(server.at(), std::string("\x16\x03\x01\xff\xff", 5) + std::string(64, 'a'));
        EXPECT_EQ(server.next_result(), TlsError::kProtocol);
        // A ClientHello message of length zero.
        send_raw(server.at(), std::string("\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9));
        EXPECT_EQ(server.next_result(), TlsError::kProtocol);
        // An alert instead of a hello.
        send_raw(server.at(), std::string("\x15\x03\x01\x00\x02\x02\x28", 7));
        EXPECT_EQ(server.next_result(), TlsError::kProtocol);
        // Random bytes: whatever they look like, a TLS error, never a hang.
        std::mt19937 rng(19);
        for (int i = 0; i < 8; ++i) {
          std::string junk(1024, '\0');
          for (char& c : junk) c = static_cast<char>(rng());
          send_raw(server.at(), junk);
          std::error_code e = server.next_result();
          EXPECT_EQ(e.category(), tls_category()) << e.message();
        }
        EXPECT_EQ(round_trip(server.at()), std::error_code());
        EXPECT_EQ(server.next_result(), std::error_code());
        server.stop();
        return 0;
      },
      options());
}

TEST_P(TlsBadInputTest, TruncatedRecordsAreUnexpectedEof) {
  run(
      [&] {
        Server server;
        // Half a ClientHello, then the end.
        std::string hello = testing::client_hello_bytes();
        send_raw(server.at(), hello.substr(0, hello.size() / 2));
        EXPECT_EQ(server.next_result(), TlsError::kUnexpectedEof);

        TlsClientOptions o;
        o.root_ca_file = test_pki().ca.cert;
        auto cfg = TlsClientConfig::make(o);
        // After the handshake: a record cut short, a record with a bad tag,
        // the end of the stream with no close_notify.
        const std::string inputs[] = {
            std::string("\x17\x03\x03\x00\x40", 5) + std::string(10, 'x'),
            std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, '\0'),
            std::string(),
        };
        const std::error_code want[] = {TlsError::kUnexpectedEof, TlsError::kProtocol,
                                        TlsError::kUnexpectedEof};
        for (int i = 0; i < 3; ++i) {
          auto tcp = TcpStream::connect(server.at());
          EXPECT_TRUE(tcp);
          TlsStream tls = TlsStream::client(std::move(*tcp), *cfg, "localhost");
          EXPECT_TRUE(tls.handshake());
          EXPECT_TRUE(tls.transport().write_all(inputs[i]));
          EXPECT_TRUE(tls.transport().shutdown(SHUT_WR));
          EXPECT_EQ(server.next_result(), want[i]) << i;
        }
        EXPECT_EQ(round_trip(server.at()), std::error_code());
        EXPECT_EQ(server.next_result(), std::error_code());
        server.stop();
        return 0;
      },
      options());
}

TEST_P(TlsBadInputTest, AClientThatStopsMidHandshakeIsCutOffByTheTimeout) {
  run(
      [&] {
        Server server(200ms);
        std::string hello = testing::client_hello_bytes();
        {
          // A genuine ClientHello, then silence: the server's bound ends it.
          auto tcp = TcpStream::connect(server.at());
          EXPECT_TRUE(tcp);
          EXPECT_TRUE(tcp->write_all(hello));
          EXPECT_EQ(server.next_result(), TlsError::kHandshakeTimeout);
          char buf[4096];
          for (;;) {  // the server's flight, then its close
            auto n = tcp->read(buf);
            if (!n || *n == 0) break;
          }
        }
        {
          // A ClientHello, some of the answer, then the client goes away.
          auto tcp = TcpStream::connect(server.at());
          EXPECT_TRUE(tcp);
          EXPECT_TRUE(tcp->write_all(hello));
          char buf[1];
          EXPECT_TRUE(tcp->read_exact(buf));
          tcp->close();
          std::error_code e = server.next_result();
          EXPECT_TRUE(e == TlsError::kUnexpectedEof || e == std::errc::connection_reset)
              << e.message();
        }
        EXPECT_EQ(round_trip(server.at()), std::error_code());
        EXPECT_EQ(server.next_result(), std::error_code());
        server.stop();
        return 0;
      },
      options());
}

// RenegotiationOutcome is what a plain blocking OpenSSL TLS 1.2 client saw.
struct RenegotiationOutcome {
  bool connected = false;
  bool echoed = false;
  int renegotiate = 0;      // SSL_renegotiate's result: 1 when scheduled
  int handshake = 0;        // SSL_do_handshake's result after it: <= 0 refused
  bool read_after = false;  // an SSL_read afterwards still got data
};

// renegotiating_client() runs on a blocking-pool thread: it is a client of
// another TLS stack (OpenSSL with its own socket BIO), not of TlsStream.
RenegotiationOutcome renegotiating_client(uint16_t port) {
  RenegotiationOutcome out;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    if (fd >= 0) ::close(fd);
    return out;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) == 1) {
    out.connected = true;
    char buf[4];
    out.echoed = SSL_write(ssl, "ping", 4) == 4 && SSL_read(ssl, buf, 4) == 4;
    out.renegotiate = SSL_renegotiate(ssl);
    out.handshake = SSL_do_handshake(ssl);
    out.read_after = SSL_write(ssl, "more", 4) == 4 && SSL_read(ssl, buf, 4) > 0;
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  ::close(fd);
  return out;
}

TEST_P(TlsBadInputTest, ARenegotiationAttemptIsRefused) {
  run(
      [&] {
        Server server;
        uint16_t port = server.at().port();
        RenegotiationOutcome o = spawn_blocking([port] { return renegotiating_client(port); });
        EXPECT_TRUE(o.connected);
        EXPECT_TRUE(o.echoed);
        EXPECT_EQ(o.renegotiate, 1);
        EXPECT_LE(o.handshake, 0);
        EXPECT_FALSE(o.read_after);
        EXPECT_EQ(server.next_result(), TlsError::kRenegotiationRefused);
        EXPECT_EQ(round_trip(server.at()), std::error_code());
        EXPECT_EQ(server.next_result(), std::error_code());
        server.stop();
        return 0;
      },
      options());
}

TEST_P(TlsBadInputTest, ManyHandshakesAbortedByResetsLeakNothing) {
  constexpr int kAborts = 1000;
  run(
      [&] {
        const int64_t fds_before = testing::count_open_fds();
        Server server;
        std::string hello = testing::client_hello_bytes();
        for (int i = 0; i < kAborts; ++i) {
          auto tcp = TcpStream::connect(server.at());
          EXPECT_TRUE(tcp);
          if (!tcp) break;
          reset_on_close(*tcp);
          switch (i % 3) {
            case 0:  // reset at once
              break;
            case 1:  // reset after half a ClientHello
              EXPECT_TRUE(tcp->write_all({hello.data(), hello.size() / 2}));
              break;
            case 2: {  // reset once the server has answered
              EXPECT_TRUE(tcp->write_all(hello));
              char b[1];
              EXPECT_TRUE(tcp->read_exact(b));
              break;
            }
          }
          tcp->close();  // SO_LINGER 0: a reset
        }
        int failed = 0;
        for (int i = 0; i < kAborts; ++i) {
          std::error_code e = server.next_result();
          EXPECT_TRUE(e == std::errc::connection_reset || e == std::errc::broken_pipe ||
                      e == TlsError::kUnexpectedEof)
              << e.message();
          if (e) ++failed;
        }
        EXPECT_EQ(failed, kAborts);
        EXPECT_EQ(round_trip(server.at()), std::error_code());
        EXPECT_EQ(server.next_result(), std::error_code());
        EXPECT_EQ(server.accepted(), kAborts + 1);
        server.stop();
        EXPECT_EQ(testing::count_open_fds(), fds_before);
        return 0;
      },
      options());
}

}  // namespace
}  // namespace fiber
