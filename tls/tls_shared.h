// The state that TlsClientConfig and TlsServerConfig share with their streams,
// and the OpenSSL helpers of the layer. Private to tls/.
//
// OpenSSL is used so that it coexists with any other user in the process: it
// is initialised once with OPENSSL_init_ssl (idempotent, thread-safe), and all
// state and callbacks are per SSL_CTX or per SSL (ALPN selection, the client's
// new-session callback, app data); nothing global is set.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "fiber/tls_config.h"

namespace fiber::detail {

// init_openssl() initialises libssl once per process.
void init_openssl();

// ssl_error_text() pops OpenSSL's error queue of this thread into one line ("" if
// empty). The queue is per thread; a fiber reads it before it can park.
std::string ssl_error_text();

// message_callback() is the per-SSL_CTX protocol message callback: it marks
// a stream that refused a renegotiation (it sent a no_renegotiation alert).
// Defined in tls_stream.cc, as is:
void message_callback(int write_p, int version, int content_type, const void* buf, size_t len,
                      SSL* ssl, void* arg);
// session_key() is the client stream's server name: its session cache key.
const std::string* session_key(const SSL* ssl);

// alpn_wire() encodes protocol names as ALPN's length-prefixed list.
std::vector<unsigned char> alpn_wire(const std::vector<std::string>& protocols);

struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

struct TlsClientShared {
  TlsClientOptions options;
  CtxPtr ctx;
  std::vector<unsigned char> alpn;

  // take_session() is the cached session for `name` with a reference for the
  // caller (nullptr if none). Thread-safe.
  SSL_SESSION* take_session(const std::string& name);
  // put_session() caches `s` (whose reference it takes) for `name`. Thread-safe.
  void put_session(const std::string& name, SSL_SESSION* s);
  ~TlsClientShared();

  static constexpr size_t kMaxSessions = 1024;
  std::mutex mu;  // a thread lock held for a map lookup, never across a park
  std::map<std::string, SSL_SESSION*> sessions;  // guarded by mu
};

// One SSL_CTX of a server, with what its callbacks point at. A stream keeps
// the ServerCtx it started with alive, whatever reload() does meanwhile.
struct ServerCtx {
  CtxPtr ctx;
  std::vector<unsigned char> alpn;
  std::chrono::nanoseconds handshake_timeout{};
};

struct TlsServerShared {
  // current() is the context new streams use. Thread-safe.
  std::shared_ptr<const ServerCtx> current() const;

  mutable std::mutex mu;                 // held to copy or swap the pointer, never across a park
  std::shared_ptr<const ServerCtx> ctx;  // guarded by mu
  uint64_t reloads = 0;                  // guarded by mu
};

}  // namespace fiber::detail
