#include "fiber/tls_config.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <utility>

#include "tls_shared.h"

namespace fiber {
namespace detail {
namespace {

int version_of(TlsVersion v) { return v == TlsVersion::k1_3 ? TLS1_3_VERSION : TLS1_2_VERSION; }

// The ticket keys of an SSL_CTX (name, HMAC and AES keys in OpenSSL 3).
constexpr long kTicketKeysLen = 80;

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// common_setup() sets what clients and servers share: versions, no
// renegotiation, no compression, buffers released while idle.
bool common_setup(SSL_CTX* ctx, TlsVersion min, TlsVersion max) {
  if (SSL_CTX_set_min_proto_version(ctx, version_of(min)) != 1) return false;
  if (SSL_CTX_set_max_proto_version(ctx, version_of(max)) != 1) return false;
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_msg_callback(ctx, message_callback);
  return true;
}

// use_chain_pem() installs a PEM chain (leaf first) from memory.
bool use_chain_pem(SSL_CTX* ctx, const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return false;
  X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) return false;
  bool ok = SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  if (!ok) return false;
  SSL_CTX_clear_chain_certs(ctx);
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
      X509_free(ca);
      return false;
    }
  }
  ERR_clear_error();  // the end of the PEM data is reported as an error
  return true;
}

bool use_key_pem(SSL_CTX* ctx, const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return false;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return false;
  bool ok = SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  return ok;
}

// load_identity() installs a certificate chain and its key, from PEM in memory
// or from files.
std::error_code load_identity(SSL_CTX* ctx, const std::string& cert_pem,
                              const std::string& cert_file, const std::string& key_pem,
                              const std::string& key_file) {
  bool cert_ok = !cert_pem.empty()
                     ? use_chain_pem(ctx, cert_pem)
                     : SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) == 1;
  if (!cert_ok) return std::error_code(TlsError::kCertificateLoad);
  bool key_ok = !key_pem.empty()
                    ? use_key_pem(ctx, key_pem)
                    : SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) == 1;
  if (!key_ok) {
    // OpenSSL checks the key against the certificate as it installs it.
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
      return std::error_code(TlsError::kKeyMismatch);
    }
    return std::error_code(TlsError::kPrivateKeyLoad);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) return std::error_code(TlsError::kKeyMismatch);
  return {};
}

// add_roots_pem() adds every certificate of a PEM bundle to the trust store.
bool add_roots_pem(SSL_CTX* ctx, const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return false;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int added = 0;
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    int ok = X509_STORE_add_cert(store, c);
    X509_free(c);
    if (ok != 1) return false;
    ++added;
  }
  ERR_clear_error();
  return added > 0;
}

// new_session() is the client's per-SSL_CTX callback for a new session (a
// TLS 1.3 ticket arrives after the handshake, during a read): the stream's
// config caches it under the stream's server name.
int new_session(SSL* ssl, SSL_SESSION* session) {
  auto* shared = static_cast<TlsClientShared*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  const std::string* name = session_key(ssl);
  if (shared == nullptr || name == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  shared->put_session(*name, session);
  return 1;  // the cache took the reference
}

// select_alpn() is the server's per-SSL_CTX ALPN choice: its own first
// protocol that the client offers; none in common is a fatal alert
// (no_application_protocol), as Go does.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto* ours = static_cast<const std::vector<unsigned char>*>(arg);
  for (size_t i = 0; i < ours->size(); i += 1 + (*ours)[i]) {
    unsigned char len = (*ours)[i];
    for (unsigned int j = 0; j < inlen; j += 1 + in[j]) {
      if (j + 1 + in[j] > inlen) break;
      if (in[j] == len && std::equal(in + j + 1, in + j + 1 + len, ours->data() + i + 1)) {
        *out = in + j + 1;
        *outlen = len;
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

Result<std::shared_ptr<ServerCtx>> build_server_ctx(const TlsServerOptions& o) {
  init_openssl();
  ERR_clear_error();
  auto sc = std::make_shared<ServerCtx>();
  sc->ctx.reset(SSL_CTX_new(TLS_server_method()));
  if (!sc->ctx || !common_setup(sc->ctx.get(), o.min_version, o.max_version)) {
    return std::error_code(TlsError::kInternal);
  }
  SSL_CTX* ctx = sc->ctx.get();
  if (auto e = load_identity(ctx, o.cert_pem, o.cert_file, o.key_pem, o.key_file); e) {
    ERR_clear_error();
    return e;
  }
  static constexpr unsigned char kSessionContext[] = "fiber.tls";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  // Resumption by stateless tickets only: no server-side cache to grow.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (!o.session_tickets) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  sc->alpn = alpn_wire(o.alpn);
  if (!sc->alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx, select_alpn, &sc->alpn);
  sc->handshake_timeout = o.handshake_timeout;
  return sc;
}

}  // namespace

void init_openssl() {
  static std::once_flag once;
  std::call_once(once, [] { OPENSSL_init_ssl(0, nullptr); });
}

std::string ssl_error_text() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::vector<unsigned char> alpn_wire(const std::vector<std::string>& protocols) {
  std::vector<unsigned char> out;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) continue;
    out.push_back(static_cast<unsigned char>(p.size()));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

SSL_SESSION* TlsClientShared::take_session(const std::string& name) {
  std::lock_guard lock(mu);
  auto it = sessions.find(name);
  if (it == sessions.end()) return nullptr;
  SSL_SESSION_up_ref(it->second);
  return it->second;
}

void TlsClientShared::put_session(const std::string& name, SSL_SESSION* s) {
  SSL_SESSION* old = nullptr;
  {
    std::lock_guard lock(mu);
    auto it = sessions.find(name);
    if (it != sessions.end()) {
      old = it->second;
      it->second = s;
    } else {
      if (sessions.size() >= kMaxSessions) {
        old = sessions.begin()->second;
        sessions.erase(sessions.begin());
      }
      sessions.emplace(name, s);
    }
  }
  if (old != nullptr) SSL_SESSION_free(old);
}

TlsClientShared::~TlsClientShared() {
  for (auto& [name, s] : sessions) SSL_SESSION_free(s);
}

std::shared_ptr<const ServerCtx> TlsServerShared::current() const {
  std::lock_guard lock(mu);
  return ctx;
}

}  // namespace detail

Result<TlsClientConfig> TlsClientConfig::make(const TlsClientOptions& o) {
  detail::init_openssl();
  ERR_clear_error();
  auto s = std::make_shared<detail::TlsClientShared>();
  s->options = o;
  s->ctx.reset(SSL_CTX_new(TLS_client_method()));
  if (!s->ctx || !detail::common_setup(s->ctx.get(), o.min_version, o.max_version)) {
    return std::error_code(TlsError::kInternal);
  }
  SSL_CTX* ctx = s->ctx.get();
  SSL_CTX_set_app_data(ctx, s.get());
  if (!o.insecure_skip_verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    bool ok = true;
    if (!o.root_ca_pem.empty()) ok = detail::add_roots_pem(ctx, o.root_ca_pem);
    if (ok && !o.root_ca_file.empty()) {
      ok = SSL_CTX_load_verify_locations(ctx, o.root_ca_file.c_str(), nullptr) == 1;
    }
    if (ok && o.root_ca_pem.empty() && o.root_ca_file.empty()) {
      ok = SSL_CTX_set_default_verify_paths(ctx) == 1;
    }
    if (!ok) {
      ERR_clear_error();
      return std::error_code(TlsError::kRootsLoad);
    }
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!o.cert_file.empty() || !o.key_file.empty()) {
    if (auto e = detail::load_identity(ctx, "", o.cert_file, "", o.key_file); e) {
      ERR_clear_error();
      return e;
    }
  }
  s->alpn = detail::alpn_wire(o.alpn);
  if (!s->alpn.empty() &&
      SSL_CTX_set_alpn_protos(ctx, s->alpn.data(), static_cast<unsigned>(s->alpn.size())) != 0) {
    return std::error_code(TlsError::kInternal);
  }
  if (o.session_cache) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, detail::new_session);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  return TlsClientConfig(std::move(s));
}

const TlsClientOptions& TlsClientConfig::options() const { return s_->options; }

Result<TlsServerConfig> TlsServerConfig::make(const TlsServerOptions& o) {
  auto sc = detail::build_server_ctx(o);
  if (!sc) return sc.error();
  auto s = std::make_shared<detail::TlsServerShared>();
  s->ctx = std::move(*sc);
  return TlsServerConfig(std::move(s));
}

Result<void> TlsServerConfig::reload(const TlsServerOptions& o) {
  auto sc = detail::build_server_ctx(o);
  if (!sc) return sc.error();
  std::shared_ptr<const detail::ServerCtx> old = s_->current();
  // Tickets issued under the old context must still resume: carry its keys.
  unsigned char keys[detail::kTicketKeysLen];
  if (SSL_CTX_get_tlsext_ticket_keys(old->ctx.get(), keys, sizeof(keys)) != 1 ||
      SSL_CTX_set_tlsext_ticket_keys((*sc)->ctx.get(), keys, sizeof(keys)) != 1) {
    OPENSSL_cleanse(keys, sizeof(keys));
    ERR_clear_error();
    return std::error_code(TlsError::kInternal);
  }
  OPENSSL_cleanse(keys, sizeof(keys));
  std::lock_guard lock(s_->mu);
  s_->ctx = std::move(*sc);
  ++s_->reloads;
  return {};
}

uint64_t TlsServerConfig::reloads() const {
  std::lock_guard lock(s_->mu);
  return s_->reloads;
}

}  // namespace fiber
