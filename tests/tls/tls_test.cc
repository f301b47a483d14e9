// TlsStream on both drivers: round trips over TCP and Unix streams, each
// verification failure as its own error, ALPN and version mismatches,
// handshake timeouts, deadlines, cancel() and contexts, session resumption
// and certificate reloads.
#include "fiber/tls.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <system_error>
#include <utility>

#include "fiber/blocking.h"
#include "fiber/cancellation.h"
#include "fiber/fiber.h"
#include "fiber/net.h"
#include "tests/support/drivers.h"
#include "tests/support/leak_check.h"
#include "tests/tls/test_pki.h"

namespace fiber {
namespace {

using namespace std::chrono_literals;
using testing::test_pki;

class TlsTest : public testing::DriverTest {
 protected:
  // The certificates are made before any runtime starts (signing takes a while).
  static void SetUpTestSuite() { (void)test_pki(); }
};
FIBER_INSTANTIATE_DRIVER_TESTS(TlsTest);

Address loopback() { return *Address::parse("127.0.0.1:0"); }

// text() is the bytes of `s`, without a string literal's NUL.
std::span<const char> text(std::string_view s) { return {s.data(), s.size()}; }

TlsServerOptions server_options(const testing::CertFiles& c) {
  TlsServerOptions o;
  o.cert_file = c.cert;
  o.key_file = c.key;
  return o;
}

TlsClientOptions client_options() {
  TlsClientOptions o;
  o.root_ca_file = test_pki().ca.cert;
  return o;
}

// dial_tls() connects to `at` and runs the client handshake for `name`.
Result<TlsStream> dial_tls(const Address& at, const TlsClientConfig& cfg, std::string_view name,
                           std::string* detail = nullptr) {
  auto tcp = TcpStream::connect(at);
  if (!tcp) return tcp.error();
  TlsStream tls = TlsStream::client(std::move(*tcp), cfg, name);
  if (auto h = tls.handshake(); !h) {
    if (detail != nullptr) *detail = tls.error_detail();
    return h.error();
  }
  return tls;
}

// echo() echoes until the peer's close_notify (then answers with its own):
// {} then, the error otherwise.
std::error_code echo(TlsStream& s) {
  char buf[4096];
  for (;;) {
    auto n = s.read(buf);
    if (!n) return n.error();
    if (*n == 0) return s.shutdown().error();
    if (auto w = s.write_all({buf, *n}); !w) return w.error();
  }
}

// accept_one() accepts one connection on `ln`, handshakes as the server and
// echoes; the handshake's or the echo's error.
std::error_code accept_one(TcpListener& ln, const TlsServerConfig& cfg) {
  auto c = ln.accept();
  if (!c) return c.error();
  TlsStream tls = TlsStream::server(std::move(*c), cfg);
  if (auto h = tls.handshake(); !h) return h.error();
  return echo(tls);
}

TEST_P(TlsTest, RoundTripsWhileReadingAndWritingAtOnce) {
  run(
      [&] {
        TlsServerOptions so = server_options(test_pki().localhost);
        so.alpn = {"h2", "http/1.1"};
        auto scfg = TlsServerConfig::make(so);
        TlsClientOptions co = client_options();
        co.alpn = {"http/1.1"};
        auto ccfg = TlsClientConfig::make(co);
        EXPECT_TRUE(scfg && ccfg);
        auto ln = TcpListener::bind(loopback());
        EXPECT_TRUE(ln);
        std::string sni;
        auto server = spawn([&] {
          auto c = ln->accept();
          if (!c) return c.error();
          TlsStream tls = TlsStream::server(std::move(*c), *scfg);
          if (auto h = tls.handshake(); !h) return h.error();
          sni = tls.server_name();
          return echo(tls);
        });
        auto tls = dial_tls(*ln->local_address(), *ccfg, "localhost");
        EXPECT_TRUE(tls) << tls.error().message();
        if (!tls) return 1;
        EXPECT_EQ(tls->version(), "TLSv1.3");
        EXPECT_EQ(tls->alpn_protocol(), "http/1.1");
        EXPECT_FALSE(tls->cipher().empty());
        EXPECT_EQ(tls->peer_certificate_der(), test_pki().localhost.cert_der);

        std::string data(256 * 1024, '\0');
        for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 1000);
        auto writer = spawn([&] {
          if (auto w = tls->write_all(data); !w) return w.error();
          return tls->shutdown().error();
        });
        std::string got;
        char buf[8192];
        for (;;) {
          auto n = tls->read(buf);
          EXPECT_TRUE(n) << n.error().message();
          if (!n || *n == 0) break;
          got.append(buf, *n);
        }
        EXPECT_EQ(writer.join(), std::error_code());
        EXPECT_EQ(got.size(), data.size());
        EXPECT_TRUE(got == data);
        EXPECT_EQ(server.join(), std::error_code());
        EXPECT_EQ(sni, "localhost");
        auto after = tls->write(text("x"));
        EXPECT_EQ(after.error(), TlsError::kClosed);
        return 0;
      },
      options());
}

TEST_P(TlsTest, RoundTripsOverTls12AndOverAnIpAddress) {
  run(
      [&] {
        auto scfg = TlsServerConfig::make(server_options(test_pki().localhost));
        TlsClientOptions co = client_options();
        co.max_version = TlsVersion::k1_2;
        auto ccfg = TlsClientConfig::make(co);
        auto ln = TcpListener::bind(loopback());
        auto server = spawn([&] { return accept_one(*ln, *scfg); });
        auto tls = dial_tls(*ln->local_address(), *ccfg, "127.0.0.1");
        EXPECT_TRUE(tls) << tls.error().message();
        if (!tls) return 1;
        EXPECT_EQ(tls->version(), "TLSv1.2");
        EXPECT_TRUE(tls->write_all(text("ping")));
        char buf[4];
        EXPECT_TRUE(tls->read_exact(buf));
        EXPECT_EQ(std::string(buf, 4), "ping");
        EXPECT_TRUE(tls->shutdown());
        char end[1];
        auto n = tls->read(end);
        EXPECT_TRUE(n && *n == 0);
        EXPECT_EQ(server.join(), std::error_code());
        return 0;
      },
      options());
}

TEST_P(TlsTest, RoundTripsOverAUnixStreamPair) {
  run(
      [&] {
        auto scfg = TlsServerConfig::make(server_options(test_pki().localhost));
        auto ccfg = TlsClientConfig::make(client_options());
        auto pair = UnixStream::pair();
        EXPECT_TRUE(pair);
        if (!pair) return 1;
        auto server = spawn([&] {
          TlsStream tls = TlsStream::server(std::move(pair->second), *scfg);
          return echo(tls);  // handshakes on its first read
        });
        TlsStream tls = TlsStream::client(std::move(pair->first), *ccfg, "localhost");
        EXPECT_TRUE(tls.write_all(text("over a socketpair")));
        std::string back(17, '\0');
        EXPECT_TRUE(tls.read_exact(back));
        EXPECT_EQ(back, "over a socketpair");
        EXPECT_TRUE(tls.shutdown());
        EXPECT_EQ(server.join(), std::error_code());
        return 0;
      },
      options());
}

struct Outcome {
  std::error_code client;
  std::error_code server;
  std::string client_detail;
};

// handshake_pair() runs one handshake between a server and a client made
// with these options, the client asking for `name`.
Outcome handshake_pair(const TlsServerOptions& so, const TlsClientOptions& co,
                       std::string_view name) {
  Outcome out;
  auto scfg = TlsServerConfig::make(so);
  // Loading the system's trust store reads a file of some 150 roots: off the core.
  auto ccfg = spawn_blocking([&] { return TlsClientConfig::make(co); });
  EXPECT_TRUE(scfg && ccfg);
  if (!scfg || !ccfg) return out;
  auto ln = TcpListener::bind(loopback());
  auto server = spawn([&] { return accept_one(*ln, *scfg); });
  {
    auto tls = dial_tls(*ln->local_address(), *ccfg, name, &out.client_detail);
    if (tls) {
      (void)tls->shutdown();
      char end[1];
      (void)tls->read(end);
    } else {
      out.client = tls.error();
    }
  }
  out.server = server.join();
  return out;
}

TEST_P(TlsTest, EachVerificationFailureIsItsOwnError) {
  run(
      [&] {
        const auto& pki = test_pki();
        // The system's roots do not know the test CA.
        Outcome o = handshake_pair(server_options(pki.localhost), TlsClientOptions{}, "localhost");
        EXPECT_EQ(o.client, TlsError::kUnknownAuthority) << o.client.message();
        EXPECT_EQ(o.server, TlsError::kPeerRejectedCertificate) << o.server.message();
        EXPECT_FALSE(o.client_detail.empty());

        TlsClientOptions other = client_options();
        other.root_ca_file = pki.other_ca.cert;
        o = handshake_pair(server_options(pki.localhost), other, "localhost");
        EXPECT_EQ(o.client, TlsError::kUnknownAuthority) << o.client.message();

        o = handshake_pair(server_options(pki.expired), client_options(), "localhost");
        EXPECT_EQ(o.client, TlsError::kCertificateExpired) << o.client.message();
        EXPECT_EQ(o.client.message(), "tls: certificate has expired");
        EXPECT_EQ(o.client_detail, "certificate has expired");
        EXPECT_EQ(o.server, TlsError::kPeerRejectedCertificate) << o.server.message();

        o = handshake_pair(server_options(pki.not_yet), client_options(), "localhost");
        EXPECT_EQ(o.client, TlsError::kCertificateNotYetValid) << o.client.message();

        o = handshake_pair(server_options(pki.wrong_host), client_options(), "localhost");
        EXPECT_EQ(o.client, TlsError::kHostnameMismatch) << o.client.message();
        o = handshake_pair(server_options(pki.localhost), client_options(), "example.com");
        EXPECT_EQ(o.client, TlsError::kHostnameMismatch) << o.client.message();
        o = handshake_pair(server_options(pki.localhost), client_options(), "127.0.0.2");
        EXPECT_EQ(o.client, TlsError::kHostnameMismatch) << o.client.message();

        // A verifying client needs a name; skipping verification takes the
        // loudly named option, and then accepts even the expired certificate.
        o = handshake_pair(server_options(pki.localhost), client_options(), "");
        EXPECT_EQ(o.client, TlsError::kNoServerName) << o.client.message();
        TlsClientOptions insecure;
        insecure.insecure_skip_verify = true;
        o = handshake_pair(server_options(pki.expired), insecure, "localhost");
        EXPECT_EQ(o.client, std::error_code()) << o.client.message();
        EXPECT_EQ(o.server, std::error_code()) << o.server.message();
        return 0;
      },
      options());
}

TEST_P(TlsTest, NoSharedAlpnOrVersionIsItsOwnError) {
  run(
      [&] {
        const auto& pki = test_pki();
        TlsServerOptions so = server_options(pki.localhost);
        so.alpn = {"h2"};
        TlsClientOptions co = client_options();
        co.alpn = {"http/1.1"};
        Outcome o = handshake_pair(so, co, "localhost");
        EXPECT_EQ(o.client, TlsError::kNoApplicationProtocol) << o.client.message();
        EXPECT_EQ(o.server, TlsError::kNoApplicationProtocol) << o.server.message();

        so = server_options(pki.localhost);
        so.min_version = TlsVersion::k1_3;
        co = client_options();
        co.max_version = TlsVersion::k1_2;
        o = handshake_pair(so, co, "localhost");
        EXPECT_EQ(o.client, TlsError::kNoSharedVersion) << o.client.message();
        EXPECT_EQ(o.server, TlsError::kNoSharedVersion) << o.server.message();
        return 0;
      },
      options());
}

TEST_P(TlsTest, HandshakeTimesOutAgainstASilentServer) {
  run(
      [&] {
        auto ln = TcpListener::bind(loopback());
        Chan<int> done(1);
        auto silent = spawn([&] {
          auto c = ln->accept();  // accepts, then says nothing
          (void)done.recv();
          return c.has_value();
        });
        TlsClientOptions co = client_options();
        co.handshake_timeout = 200ms;
        auto ccfg = TlsClientConfig::make(co);
        auto tls = dial_tls(*ln->local_address(), *ccfg, "localhost");
        EXPECT_EQ(tls.error(), TlsError::kHandshakeTimeout) << tls.error().message();
        EXPECT_TRUE(tls.error() == std::errc::timed_out);  // also a timeout, generically

        // The stream's own deadline, when it comes first, is a plain timeout.
        co.handshake_timeout = 0ns;
        auto ccfg2 = TlsClientConfig::make(co);
        auto tcp = TcpStream::connect(*ln->local_address());
        EXPECT_TRUE(tcp);
        TlsStream own = TlsStream::client(std::move(*tcp), *ccfg2, "localhost");
        own.set_deadline(std::chrono::steady_clock::now() + 100ms);
        auto h = own.handshake();
        EXPECT_TRUE(h.error() == std::errc::timed_out) << h.error().message();
        EXPECT_NE(h.error(), TlsError::kHandshakeTimeout);
        EXPECT_EQ(own.handshake().error(), h.error());  // the result stays

        // A bound context that is cancelled ends the handshake too.
        auto tcp3 = TcpStream::connect(*ln->local_address());
        EXPECT_TRUE(tcp3);
        TlsStream bound = TlsStream::client(std::move(*tcp3), *ccfg2, "localhost");
        WithCancel wc = with_cancel(background());
        {
          auto binding = bound.bind_context(wc.ctx);
          go([&wc] { wc.cancel(); });  // runs once the handshake has parked
          auto hc = bound.handshake();
          EXPECT_EQ(hc.error(), std::errc::operation_canceled) << hc.error().message();
        }
        (void)done.send(1);
        EXPECT_TRUE(silent.join());
        return 0;
      },
      options());
}

TEST_P(TlsTest, CancelAndContextEndAParkedRead) {
  run(
      [&] {
        auto scfg = TlsServerConfig::make(server_options(test_pki().localhost));
        auto ccfg = TlsClientConfig::make(client_options());
        auto ln = TcpListener::bind(loopback());
        Chan<int> done(1);
        auto server = spawn([&] {
          auto c = ln->accept();
          if (!c) return c.error();
          TlsStream tls = TlsStream::server(std::move(*c), *scfg);
          if (auto w = tls.write_all(text("x")); !w) return w.error();
          (void)done.recv();  // then says nothing until the client is done
          return std::error_code();
        });
        auto tls = dial_tls(*ln->local_address(), *ccfg, "localhost");
        EXPECT_TRUE(tls);
        if (!tls) return 1;
        char buf[16];
        // The tickets and "x": after them nothing is in flight or buffered.
        EXPECT_TRUE(tls->read_exact({buf, 1}));
        go([&] { tls->cancel(); });  // runs once the read below has parked
        auto n = tls->read(buf);
        EXPECT_EQ(n.error(), std::errc::operation_canceled) << n.error().message();

        {
          auto [ctx, cancel] = with_timeout(background(), 50ms);
          auto bound = tls->bind_context(ctx);
          n = tls->read(buf);
          EXPECT_TRUE(n.error() == std::errc::timed_out) << n.error().message();
        }
        tls->set_read_deadline(std::chrono::steady_clock::now() + 50ms);
        n = tls->read(buf);
        EXPECT_TRUE(n.error() == std::errc::timed_out) << n.error().message();
        (void)done.send(1);
        EXPECT_EQ(server.join(), std::error_code());
        return 0;
      },
      options());
}

TEST_P(TlsTest, SessionsResumeAcrossACertificateReload) {
  run(
      [&] {
        auto scfg = TlsServerConfig::make(server_options(test_pki().localhost));
        auto ccfg = TlsClientConfig::make(client_options());
        auto ln = TcpListener::bind(loopback());
        constexpr int kConns = 4;
        auto server = spawn([&] {
          std::vector<bool> reused;
          for (int i = 0; i < kConns; ++i) {
            auto c = ln->accept();
            if (!c) break;
            TlsStream tls = TlsStream::server(std::move(*c), *scfg);
            if (!tls.handshake() || !tls.write_all(text("hi"))) break;
            reused.push_back(tls.session_reused());
            (void)echo(tls);  // until the client's close_notify
          }
          return reused;
        });
        std::vector<bool> client_reused;
        for (int i = 0; i < kConns; ++i) {
          if (i == 2) {
            EXPECT_TRUE(scfg->reload(server_options(test_pki().localhost2)));
          }
          auto tls = dial_tls(*ln->local_address(), *ccfg, "localhost");
          EXPECT_TRUE(tls) << tls.error().message();
          if (!tls) break;
          char hi[2];
          EXPECT_TRUE(tls->read_exact(hi));  // the tickets arrive before it
          client_reused.push_back(tls->session_reused());
          EXPECT_TRUE(tls->shutdown());
          char end[1];
          auto n = tls->read(end);
          EXPECT_TRUE(n && *n == 0);
        }
        std::vector<bool> want = {false, true, true, true};
        EXPECT_EQ(client_reused, want);
        EXPECT_EQ(server.join(), want);
        return 0;
      },
      options());
}

TEST_P(TlsTest, ReloadSwapsTheCertificateForNewHandshakesOnly) {
  run(
      [&] {
        const auto& pki = test_pki();
        auto scfg = TlsServerConfig::make(server_options(pki.localhost));
        TlsClientOptions co = client_options();
        co.session_cache = false;  // full handshakes: the certificate is sent each time
        auto ccfg = TlsClientConfig::make(co);
        auto ln = TcpListener::bind(loopback());
        WaitGroup conns;
        auto loop = spawn([&] {
          int served = 0;
          for (;;) {
            auto c = ln->accept();
            if (!c) return served;
            ++served;
            conns.add(1);
            go([&, tls = TlsStream::server(std::move(*c), *scfg)]() mutable {
              (void)echo(tls);
              conns.done();
            });
          }
        });
        auto at = *ln->local_address();
        auto first = dial_tls(at, *ccfg, "localhost");
        EXPECT_TRUE(first);
        if (!first) return 1;
        EXPECT_EQ(first->peer_certificate_der(), pki.localhost.cert_der);

        EXPECT_TRUE(scfg->reload(server_options(pki.localhost2)));
        EXPECT_EQ(scfg->reloads(), 1u);
        auto second = dial_tls(at, *ccfg, "localhost");
        EXPECT_TRUE(second);
        if (!second) return 1;
        EXPECT_EQ(second->peer_certificate_der(), pki.localhost2.cert_der);

        // A failed reload keeps the certificate in use.
        TlsServerOptions missing;
        missing.cert_file = pki.dir + "/missing.pem";
        missing.key_file = pki.localhost.key;
        EXPECT_EQ(scfg->reload(missing).error(), TlsError::kCertificateLoad);
        TlsServerOptions mismatched;
        mismatched.cert_file = pki.localhost.cert;
        mismatched.key_file = pki.localhost2.key;
        EXPECT_EQ(scfg->reload(mismatched).error(), TlsError::kKeyMismatch);
        EXPECT_EQ(scfg->reloads(), 1u);
        auto third = dial_tls(at, *ccfg, "localhost");
        EXPECT_TRUE(third);
        if (!third) return 1;
        EXPECT_EQ(third->peer_certificate_der(), pki.localhost2.cert_der);

        // The connection made before the reload still works.
        EXPECT_TRUE(first->write_all(text("still here")));
        std::string back(10, '\0');
        EXPECT_TRUE(first->read_exact(back));
        EXPECT_EQ(back, "still here");
        for (TlsStream* t : {&*first, &*second, &*third}) {
          EXPECT_TRUE(t->shutdown());
          char end[1];
          auto n = t->read(end);
          EXPECT_TRUE(n && *n == 0);
        }
        ln->close();
        EXPECT_EQ(loop.join(), 3);
        conns.wait();
        return 0;
      },
      options());
}

TEST(TlsConfigTest, BadFilesAreDistinctErrors) {
  const auto& pki = test_pki();
  TlsServerOptions o;
  o.cert_file = pki.dir + "/missing.pem";
  o.key_file = pki.localhost.key;
  EXPECT_EQ(TlsServerConfig::make(o).error(), TlsError::kCertificateLoad);
  o.cert_file = pki.localhost.cert;
  o.key_file = pki.dir + "/missing.key";
  EXPECT_EQ(TlsServerConfig::make(o).error(), TlsError::kPrivateKeyLoad);
  o.key_file = pki.localhost2.key;
  EXPECT_EQ(TlsServerConfig::make(o).error(), TlsError::kKeyMismatch);
  TlsServerOptions pem;
  pem.cert_pem = pki.localhost.cert_pem;
  pem.key_pem = pki.localhost.key_pem;
  EXPECT_TRUE(TlsServerConfig::make(pem));
  pem.cert_pem = "not a certificate";
  EXPECT_EQ(TlsServerConfig::make(pem).error(), TlsError::kCertificateLoad);
  TlsClientOptions c;
  c.root_ca_file = pki.dir + "/missing.pem";
  EXPECT_EQ(TlsClientConfig::make(c).error(), TlsError::kRootsLoad);
  c.root_ca_file.clear();
  c.root_ca_pem = "garbage";
  EXPECT_EQ(TlsClientConfig::make(c).error(), TlsError::kRootsLoad);
  EXPECT_TRUE(TlsClientConfig::make());  // the system's roots
}

TEST(TlsConfigTest, MessagesAreReadable) {
  EXPECT_EQ(std::error_code(TlsError::kUnknownAuthority).message(),
            "tls: certificate signed by unknown authority");
  EXPECT_EQ(std::error_code(TlsError::kHandshakeTimeout).message(), "tls: handshake timed out");
  EXPECT_STREQ(std::error_code(TlsError::kProtocol).category().name(), "fiber.tls");
  EXPECT_TRUE(std::error_code(TlsError::kHandshakeTimeout) == std::errc::timed_out);
  EXPECT_FALSE(std::error_code(TlsError::kUnexpectedEof) == std::errc::timed_out);
}

}  // namespace
}  // namespace fiber
