// TLS configurations, made once and shared by many connections (fiber/tls.h):
// TlsClientConfig (trusted roots, ALPN, a session cache) and TlsServerConfig
// (certificate and key, ALPN, session tickets), each holding an OpenSSL
// SSL_CTX. A server's certificate can be replaced while it serves (reload()).
//
// Threading: thread-safe: a config may be copied (it is a shared handle) and
// used from any core; reload() may run while handshakes are under way.
//
// Example:
//   auto server_cfg = fiber::TlsServerConfig::make({.cert_file = "cert.pem",
//                                                   .key_file = "key.pem"});
//   if (!server_cfg) return server_cfg.error();   // TlsError::kCertificateLoad, ...
//   auto client_cfg = fiber::TlsClientConfig::make({.alpn = {"http/1.1"}});
//   ...
//   server_cfg->reload({.cert_file = "new.pem", .key_file = "new.key"});
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "fiber/result.h"
#include "fiber/tls_error.h"

namespace fiber {

enum class TlsVersion { k1_2, k1_3 };

// The default bound on a handshake, from its start to its end (Go's
// http.Server uses 10 s too). Zero: no bound but the stream's deadlines.
inline constexpr std::chrono::nanoseconds kDefaultHandshakeTimeout = std::chrono::seconds(10);

struct TlsClientOptions {
  // Trusted roots: PEM, in a file or in memory. Both empty: the system's trust
  // store (SSL_CTX_set_default_verify_paths). Given, they replace it.
  std::string root_ca_file;
  std::string root_ca_pem;
  // insecure_skip_verify accepts any certificate for any name: the
  // connection is then open to anyone in the path. For tests only.
  bool insecure_skip_verify = false;
  // alpn lists the protocols offered, in order of preference ("h2", "http/1.1").
  std::vector<std::string> alpn;
  TlsVersion min_version = TlsVersion::k1_2;
  TlsVersion max_version = TlsVersion::k1_3;
  std::chrono::nanoseconds handshake_timeout = kDefaultHandshakeTimeout;
  // session_cache keeps the last session ticket per server name so that the
  // next connection resumes (TLS 1.3 PSK or a TLS 1.2 ticket); at most 1024 names.
  bool session_cache = true;
  // A client certificate, PEM (optional): chain file and key file.
  std::string cert_file;
  std::string key_file;
};

struct TlsServerOptions {
  // The certificate chain (leaf first) and its private key: PEM, either in files
  // or in memory (the *_pem fields win when set).
  std::string cert_file;
  std::string key_file;
  std::string cert_pem;
  std::string key_pem;
  // alpn lists the protocols served, in order of preference. A client that offers
  // ALPN with none of them fails with kNoApplicationProtocol; a client that offers
  // none is served.
  std::vector<std::string> alpn;
  TlsVersion min_version = TlsVersion::k1_2;
  TlsVersion max_version = TlsVersion::k1_3;
  std::chrono::nanoseconds handshake_timeout = kDefaultHandshakeTimeout;
  // session_tickets lets clients resume (stateless tickets; the ticket keys
  // survive reload()).
  bool session_tickets = true;
};

namespace detail {
struct TlsClientShared;
struct TlsServerShared;
}  // namespace detail

class TlsClientConfig {
 public:
  // make() builds the configuration; fails with kRootsLoad, kCertificateLoad,
  // kPrivateKeyLoad, kKeyMismatch or kInternal. With the system's roots it reads
  // their bundle (tens of ms): make one per program, not per connection, and on
  // a fiber through spawn_blocking(). Thread-safe: any thread.
  static Result<TlsClientConfig> make(const TlsClientOptions& options = {});
  const TlsClientOptions& options() const;

 private:
  friend class TlsStream;
  explicit TlsClientConfig(std::shared_ptr<detail::TlsClientShared> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::TlsClientShared> s_;
};

class TlsServerConfig {
 public:
  // make() loads the certificate and key; fails with kCertificateLoad,
  // kPrivateKeyLoad, kKeyMismatch or kInternal. Thread-safe: any thread.
  static Result<TlsServerConfig> make(const TlsServerOptions& options);
  // reload() builds a new SSL_CTX from `options` and swaps it in atomically:
  // streams made afterwards handshake with it, those already made keep the one
  // they started with. Session tickets issued before stay valid. On failure the
  // configuration in use is unchanged. Thread-safe: any thread; it reads files,
  // so on a fiber prefer spawn_blocking() for a slow disk.
  Result<void> reload(const TlsServerOptions& options);
  // reloads() counts the successful reload() calls.
  uint64_t reloads() const;

 private:
  friend class TlsStream;
  explicit TlsServerConfig(std::shared_ptr<detail::TlsServerShared> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::TlsServerShared> s_;
};

}  // namespace fiber
