// TlsStream: OpenSSL's state machine over two memory BIOs. OpenSSL never sees
// the socket: it reads ciphertext from `rbio`, which fill() feeds from the
// transport, and writes ciphertext to `wbio`, which flush() sends on the
// transport. Each SSL_* call returns at once; a fiber parks only in fill() and
// flush(), on the transport's own read and write, where deadlines, cancel()
// and contexts act as on a plain stream.
//
// OpenSSL's error queue is per thread and fibers share threads: every SSL_*
// call clears it first and reads it before the fiber can park.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "fiber/mutex.h"
#include "fiber/tls.h"
#include "tls_shared.h"

namespace fiber {
namespace {

// One read of ciphertext: a whole record at most (16 KiB of data plus its
// header and tag) and some of the next.
constexpr size_t kReadChunk = 18 * 1024;
// One write() encrypts at most this much plaintext (four full records).
constexpr size_t kWriteChunk = 64 * 1024;

Deadline earlier(Deadline a, Deadline b) {
  if (a == Deadline{}) return b;
  if (b == Deadline{}) return a;
  return std::min(a, b);
}

bool is_ip_address(const std::string& name) {
  unsigned char buf[16];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

std::error_code from_verify_result(long v) {
  switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return std::error_code(TlsError::kCertificateExpired);
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return std::error_code(TlsError::kCertificateNotYetValid);
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return std::error_code(TlsError::kHostnameMismatch);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return std::error_code(TlsError::kUnknownAuthority);
    default:
      return std::error_code(TlsError::kCertificateInvalid);
  }
}

std::error_code from_ssl_reason(int reason) {
  switch (reason) {
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return std::error_code(TlsError::kUnexpectedEof);
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      return std::error_code(TlsError::kCertificateInvalid);
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return std::error_code(TlsError::kPeerRejectedCertificate);
    case SSL_R_NO_APPLICATION_PROTOCOL:
    case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
      return std::error_code(TlsError::kNoApplicationProtocol);
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
    case SSL_R_TLSV1_ALERT_INAPPROPRIATE_FALLBACK:
      return std::error_code(TlsError::kNoSharedVersion);
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
      return std::error_code(TlsError::kNoSharedCipher);
    case SSL_R_NO_RENEGOTIATION:
    case SSL_R_TLSV1_ALERT_NO_RENEGOTIATION:
    case SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED:
      return std::error_code(TlsError::kRenegotiationRefused);
    default:
      return std::error_code(TlsError::kProtocol);
  }
}

}  // namespace

struct TlsStream::Impl {
  enum class Role { kClient, kServer };

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (ssl != nullptr) SSL_free(ssl);  // frees both BIOs
  }

  Stream transport;
  Role role = Role::kClient;
  std::shared_ptr<detail::TlsClientShared> client;  // client side
  std::shared_ptr<const detail::ServerCtx> server;  // server side
  std::string server_name;                          // client side: the name to verify
  SSL* ssl = nullptr;
  BIO* rbio = nullptr;         // ciphertext in (owned by ssl)
  BIO* wbio = nullptr;         // ciphertext out (owned by ssl)
  std::unique_ptr<char[]> in;  // one transport read
  std::string out;             // ciphertext being sent
  size_t out_sent = 0;
  Mutex write_mu;  // serialises flush(): the bytes of `wbio` leave in order

  Deadline read_deadline{};
  Deadline write_deadline{};
  Deadline handshake_deadline{};  // while the handshake runs

  bool handshake_done = false;
  std::error_code handshake_error;       // sticky
  std::error_code read_error;            // sticky: a fatal TLS error
  std::error_code write_error;           // sticky: a failed send or a fatal TLS error
  bool reading = false;                  // a fiber is in fill()
  bool eof = false;                      // the transport ended
  bool shut = false;                     // shutdown() sent close_notify
  bool renegotiation_attempted = false;  // the peer asked to renegotiate (refused)
  std::string error_text;                // OpenSSL's text of the last failure

  std::error_code setup();
  Result<void> fill();
  Result<void> flush();
  std::error_code transport_error(std::error_code e, Deadline user) const;
  std::error_code classify(int ssl_error);
  template <class Op>
  Result<int> drive(Op op, bool may_read);
};

std::error_code TlsStream::Impl::setup() {
  SSL_CTX* ctx = role == Role::kClient ? client->ctx.get() : server->ctx.get();
  ERR_clear_error();
  ssl = SSL_new(ctx);
  if (ssl == nullptr) return std::error_code(TlsError::kInternal);
  rbio = BIO_new(BIO_s_mem());
  wbio = BIO_new(BIO_s_mem());
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    rbio = wbio = nullptr;
    return std::error_code(TlsError::kInternal);
  }
  BIO_set_mem_eof_return(rbio, -1);  // empty: "retry", until the transport ends
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_app_data(ssl, this);  // for the callbacks (tls_shared.h)
  if (role == Role::kServer) {
    SSL_set_accept_state(ssl);
    return {};
  }
  const TlsClientOptions& o = client->options;
  if (server_name.empty() && !o.insecure_skip_verify)
    return std::error_code(TlsError::kNoServerName);
  if (!server_name.empty()) {
    bool ip = is_ip_address(server_name);
    if (!ip && SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1)
      return std::error_code(TlsError::kInternal);
    if (!o.insecure_skip_verify) {
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str())
                  : SSL_set1_host(ssl, server_name.c_str());
      if (ok != 1) return std::error_code(TlsError::kInternal);
    }
  }
  if (o.session_cache) {
    if (SSL_SESSION* s = client->take_session(server_name)) {
      SSL_set_session(ssl, s);
      SSL_SESSION_free(s);
    }
  }
  SSL_set_connect_state(ssl);
  return {};
}

// transport_error() turns the transport's timeout into kHandshakeTimeout when
// the handshake's bound, not the user's deadline, was the one that passed.
std::error_code TlsStream::Impl::transport_error(std::error_code e, Deadline user) const {
  if (e == std::errc::timed_out && handshake_deadline != Deadline{} &&
      (user == Deadline{} || handshake_deadline <= user)) {
    return std::error_code(TlsError::kHandshakeTimeout);
  }
  return e;
}

Result<void> TlsStream::Impl::fill() {
  if (!in) in = std::make_unique<char[]>(kReadChunk);
  transport.set_read_deadline(earlier(read_deadline, handshake_deadline));
  reading = true;
  Result<size_t> n = transport.read({in.get(), kReadChunk});
  reading = false;
  if (!n) return transport_error(n.error(), read_deadline);
  if (*n == 0) {
    eof = true;
    BIO_set_mem_eof_return(rbio, 0);  // OpenSSL now sees the end
    return {};
  }
  if (BIO_write(rbio, in.get(), static_cast<int>(*n)) != static_cast<int>(*n)) {
    return std::error_code(TlsError::kInternal);
  }
  return {};
}

Result<void> TlsStream::Impl::flush() {
  if (BIO_ctrl_pending(wbio) == 0) return {};
  std::lock_guard lock(write_mu);
  for (;;) {
    if (write_error) return write_error;
    if (out_sent == out.size()) {
      size_t pending = BIO_ctrl_pending(wbio);
      out.clear();
      out_sent = 0;
      if (pending == 0) return {};
      out.resize(pending);
      if (BIO_read(wbio, out.data(), static_cast<int>(pending)) != static_cast<int>(pending)) {
        write_error = std::error_code(TlsError::kInternal);
        continue;
      }
    }
    transport.set_write_deadline(earlier(write_deadline, handshake_deadline));
    Result<size_t> n = transport.write(std::span<const char>(out).subspan(out_sent));
    if (!n) {
      write_error = transport_error(n.error(), write_deadline);
      continue;
    }
    out_sent += *n;
  }
}

std::error_code TlsStream::Impl::classify(int ssl_error) {
  unsigned long first = ERR_peek_error();
  error_text = detail::ssl_error_text();
  if (role == Role::kClient && !handshake_done && !client->options.insecure_skip_verify) {
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
      error_text = X509_verify_cert_error_string(v);
      return from_verify_result(v);
    }
  }
  if (first == 0) {
    // SSL_ERROR_SYSCALL with nothing queued: the transport ended.
    if (ssl_error == SSL_ERROR_SYSCALL || eof) return std::error_code(TlsError::kUnexpectedEof);
    return std::error_code(TlsError::kProtocol);
  }
  if (ERR_GET_LIB(first) == ERR_LIB_SSL) {
    if (ERR_GET_REASON(first) == ERR_R_MALLOC_FAILURE) return std::error_code(TlsError::kInternal);
    return from_ssl_reason(ERR_GET_REASON(first));
  }
  return std::error_code(TlsError::kProtocol);
}

// drive() runs `op` (SSL_do_handshake, SSL_read, ...) until it succeeds or
// fails: between tries it sends what OpenSSL wrote and, when OpenSSL wants
// more input and `may_read`, reads from the transport. Returns op's positive
// result, or 0 for the peer's close_notify.
template <class Op>
Result<int> TlsStream::Impl::drive(Op op, bool may_read) {
  for (;;) {
    ERR_clear_error();
    int r = op(ssl);
    int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
    if (renegotiation_attempted) {
      // OpenSSL refuses it with a warning and would carry on; the stream ends.
      ERR_clear_error();
      error_text = "the peer asked to renegotiate";
      (void)flush();
      return std::error_code(TlsError::kRenegotiationRefused);
    }
    switch (e) {
      case SSL_ERROR_NONE:
        if (auto f = flush(); !f) return f.error();
        return r;
      case SSL_ERROR_ZERO_RETURN:
        return 0;
      case SSL_ERROR_WANT_WRITE:
        if (auto f = flush(); !f) return f.error();
        continue;
      case SSL_ERROR_WANT_READ:
        if (auto f = flush(); !f) return f.error();
        if (!may_read || reading) return std::error_code(TlsError::kProtocol);
        if (eof) return std::error_code(TlsError::kUnexpectedEof);
        if (auto f = fill(); !f) return f.error();
        continue;
      default: {
        std::error_code err = classify(e);
        (void)flush();  // the alert that tells the peer why, if any
        return err;
      }
    }
  }
}

namespace detail {

void message_callback(int write_p, int, int content_type, const void* buf, size_t len, SSL* ssl,
                      void*) {
  // OpenSSL answers a renegotiation request (TLS 1.2; SSL_OP_NO_RENEGOTIATION)
  // with a no_renegotiation warning and would carry on; the stream ends instead.
  if (write_p != 1 || content_type != SSL3_RT_ALERT || len < 2) return;
  if (static_cast<const unsigned char*>(buf)[1] != SSL_AD_NO_RENEGOTIATION) return;
  if (auto* impl = static_cast<TlsStream::Impl*>(SSL_get_app_data(ssl))) {
    impl->renegotiation_attempted = true;
  }
}

const std::string* session_key(const SSL* ssl) {
  auto* impl = static_cast<TlsStream::Impl*>(SSL_get_app_data(ssl));
  return impl == nullptr ? nullptr : &impl->server_name;
}

}  // namespace detail

TlsStream::TlsStream() = default;
TlsStream::TlsStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsStream::TlsStream(TlsStream&&) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&&) noexcept = default;
TlsStream::~TlsStream() = default;

TlsStream::Impl& TlsStream::impl() {
  if (!impl_) impl_ = std::make_unique<Impl>();
  return *impl_;
}

TlsStream TlsStream::client(Stream transport, const TlsClientConfig& config,
                            std::string_view server_name) {
  auto s = std::make_unique<Impl>();
  s->transport = std::move(transport);
  s->role = Impl::Role::kClient;
  s->client = config.s_;
  s->server_name = std::string(server_name);
  return TlsStream(std::move(s));
}

TlsStream TlsStream::server(Stream transport, const TlsServerConfig& config) {
  auto s = std::make_unique<Impl>();
  s->transport = std::move(transport);
  s->role = Impl::Role::kServer;
  s->server = config.s_->current();
  return TlsStream(std::move(s));
}

Result<void> TlsStream::handshake() {
  Impl& s = impl();
  if (s.handshake_done) return {};
  if (s.handshake_error) return s.handshake_error;
  if (!s.client && !s.server) return std::errc::bad_file_descriptor;
  if (!s.transport.is_open()) return std::errc::bad_file_descriptor;
  if (s.ssl == nullptr) {
    if (std::error_code e = s.setup(); e) {
      s.error_text = detail::ssl_error_text();
      s.handshake_error = e;
      return e;
    }
  }
  std::chrono::nanoseconds bound = s.role == Impl::Role::kClient
                                       ? s.client->options.handshake_timeout
                                       : s.server->handshake_timeout;
  if (bound > std::chrono::nanoseconds::zero()) {
    s.handshake_deadline = std::chrono::steady_clock::now() + bound;
  }
  Result<int> r = s.drive([](SSL* ssl) { return SSL_do_handshake(ssl); }, true);
  s.handshake_deadline = Deadline{};
  if (r && *r == 0) r = std::error_code(TlsError::kUnexpectedEof);  // close_notify in the handshake
  if (!r) {
    s.handshake_error = r.error();
    s.write_error = r.error();
    s.read_error = r.error();
    return r.error();
  }
  s.handshake_done = true;
  return {};
}

Result<size_t> TlsStream::read(std::span<char> buf) {
  if (buf.empty()) return std::errc::invalid_argument;
  if (auto h = handshake(); !h) return h.error();
  Impl& s = *impl_;
  if (s.read_error) return s.read_error;
  int len = static_cast<int>(std::min<size_t>(buf.size(), INT_MAX));
  Result<int> r = s.drive([&](SSL* ssl) { return SSL_read(ssl, buf.data(), len); }, true);
  if (!r) {
    if (r.error().category() == tls_category()) s.read_error = r.error();
    return r.error();
  }
  return static_cast<size_t>(*r);
}

Result<void> TlsStream::read_exact(std::span<char> buf) {
  while (!buf.empty()) {
    Result<size_t> n = read(buf);
    if (!n) return n.error();
    if (*n == 0) return std::errc::connection_aborted;
    buf = buf.subspan(*n);
  }
  return {};
}

Result<size_t> TlsStream::write(std::span<const char> buf) {
  if (buf.empty()) return size_t{0};
  if (auto h = handshake(); !h) return h.error();
  Impl& s = *impl_;
  if (s.write_error) return s.write_error;
  if (s.shut) return std::error_code(TlsError::kClosed);
  int len = static_cast<int>(std::min(buf.size(), kWriteChunk));
  Result<int> r = s.drive([&](SSL* ssl) { return SSL_write(ssl, buf.data(), len); }, !s.reading);
  if (!r || *r == 0) {
    std::error_code e = r ? std::error_code(TlsError::kClosed) : r.error();
    if (!s.write_error) s.write_error = e;
    return e;
  }
  return static_cast<size_t>(*r);
}

Result<void> TlsStream::write_all(std::span<const char> buf) {
  while (!buf.empty()) {
    Result<size_t> n = write(buf);
    if (!n) return n.error();
    buf = buf.subspan(*n);
  }
  return {};
}

Result<void> TlsStream::shutdown() {
  Impl& s = impl();
  if (!s.handshake_done) {
    if (s.handshake_error) return s.handshake_error;
    return std::errc::not_connected;
  }
  if (s.shut) return {};
  s.shut = true;
  if (s.write_error) return s.write_error;
  ERR_clear_error();
  if (SSL_shutdown(s.ssl) < 0) {
    s.error_text = detail::ssl_error_text();
    return std::error_code(TlsError::kProtocol);
  }
  return s.flush();
}

void TlsStream::close() {
  if (impl_) impl_->transport.close();
}

void TlsStream::cancel() {
  if (impl_) impl_->transport.cancel();
}

void TlsStream::set_deadline(Deadline d) { impl().read_deadline = impl().write_deadline = d; }
void TlsStream::set_read_deadline(Deadline d) { impl().read_deadline = d; }
void TlsStream::set_write_deadline(Deadline d) { impl().write_deadline = d; }

ContextBinding TlsStream::bind_context(const Context& ctx) {
  return impl().transport.bind_context(ctx);
}

std::string TlsStream::alpn_protocol() const {
  if (!impl_ || impl_->ssl == nullptr) return {};
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(impl_->ssl, &p, &len);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), len);
}

std::string_view TlsStream::version() const {
  if (!impl_ || !impl_->handshake_done) return {};
  return SSL_get_version(impl_->ssl);
}

std::string_view TlsStream::cipher() const {
  if (!impl_ || !impl_->handshake_done) return {};
  const char* c = SSL_get_cipher_name(impl_->ssl);
  return c == nullptr ? std::string_view() : std::string_view(c);
}

bool TlsStream::session_reused() const {
  return impl_ && impl_->handshake_done && SSL_session_reused(impl_->ssl) == 1;
}

std::string TlsStream::server_name() const {
  if (!impl_ || impl_->ssl == nullptr) return {};
  if (impl_->role == Impl::Role::kClient) return impl_->server_name;
  const char* n = SSL_get_servername(impl_->ssl, TLSEXT_NAMETYPE_host_name);
  return n == nullptr ? std::string() : std::string(n);
}

std::string TlsStream::peer_certificate_der() const {
  if (!impl_ || impl_->ssl == nullptr) return {};
  X509* cert = SSL_get0_peer_certificate(impl_->ssl);
  if (cert == nullptr) return {};
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) return {};
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  i2d_X509(cert, &p);
  return der;
}

std::string TlsStream::error_detail() const { return impl_ ? impl_->error_text : std::string(); }

bool TlsStream::is_open() const { return impl_ && impl_->transport.is_open(); }

Stream& TlsStream::transport() { return impl().transport; }

}  // namespace fiber
