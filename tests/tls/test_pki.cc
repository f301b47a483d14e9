#include "tests/tls/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace fiber::testing {
namespace {

constexpr long kDay = 24 * 3600;

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "test_pki: %s failed\n", what);
  std::abort();
}

struct Made {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};

void add_ext(X509* x, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr || X509_add_ext(x, ext, -1) != 1) die("X509_add_ext");
  X509_EXTENSION_free(ext);
}

// make() issues a certificate for `cn` (and `san`, if any), valid from
// now+`from` to now+`to` seconds, signed by `issuer` (itself if null).
Made make(const char* cn, const char* san, long from, long to, const Made* issuer, bool ca) {
  static long serial = 1;
  Made m;
  m.key = EVP_EC_gen("P-256");
  if (m.key == nullptr) die("EVP_EC_gen");
  m.cert = X509_new();
  X509_set_version(m.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(m.cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(m.cert), from);
  X509_gmtime_adj(X509_getm_notAfter(m.cert), to);
  X509_set_pubkey(m.cert, m.key);
  X509_NAME* name = X509_get_subject_name(m.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert : m.cert;
  X509_set_issuer_name(m.cert, X509_get_subject_name(issuer_cert));
  add_ext(m.cert, issuer_cert, NID_subject_key_identifier, "hash");
  if (ca) {
    add_ext(m.cert, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(m.cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(m.cert, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(m.cert, issuer_cert, NID_key_usage, "critical,digitalSignature");
    add_ext(m.cert, issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
    add_ext(m.cert, issuer_cert, NID_authority_key_identifier, "keyid:always");
  }
  if (san != nullptr) add_ext(m.cert, issuer_cert, NID_subject_alt_name, san);
  EVP_PKEY* signer = issuer != nullptr ? issuer->key : m.key;
  if (X509_sign(m.cert, signer, EVP_sha256()) <= 0) die("X509_sign");
  return m;
}

std::string pem_of_cert(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string pem_of_key(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
  if (!f) die("writing a certificate file");
}

CertFiles save(const std::string& dir, const char* name, const Made& m) {
  CertFiles f;
  f.cert = dir + "/" + name + ".pem";
  f.key = dir + "/" + name + ".key";
  f.cert_pem = pem_of_cert(m.cert);
  f.key_pem = pem_of_key(m.key);
  int len = i2d_X509(m.cert, nullptr);
  f.cert_der.resize(static_cast<size_t>(len));
  auto* p = reinterpret_cast<unsigned char*>(f.cert_der.data());
  i2d_X509(m.cert, &p);
  write_file(f.cert, f.cert_pem);
  write_file(f.key, f.key_pem);
  return f;
}

void free_made(Made& m) {
  X509_free(m.cert);
  EVP_PKEY_free(m.key);
}

std::string* g_dir = nullptr;

void remove_dir() {
  if (g_dir != nullptr) std::filesystem::remove_all(*g_dir);
}

TestPki build() {
  char tmpl[] = "/tmp/fiber_tls_test.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) die("mkdtemp");
  TestPki pki;
  pki.dir = tmpl;
  g_dir = new std::string(pki.dir);
  std::atexit(remove_dir);
  const char* names = "DNS:localhost,IP:127.0.0.1";
  Made ca = make("fiber test CA", nullptr, -kDay, 30 * kDay, nullptr, true);
  Made other = make("fiber other CA", nullptr, -kDay, 30 * kDay, nullptr, true);
  Made lh = make("localhost", names, -kDay, 30 * kDay, &ca, false);
  Made lh2 = make("localhost", names, -kDay, 30 * kDay, &ca, false);
  Made expired = make("localhost", names, -3 * kDay, -kDay, &ca, false);
  Made not_yet = make("localhost", names, kDay, 3 * kDay, &ca, false);
  Made wrong = make("wrong.example", "DNS:wrong.example", -kDay, 30 * kDay, &ca, false);
  pki.ca = save(pki.dir, "ca", ca);
  pki.other_ca = save(pki.dir, "other_ca", other);
  pki.localhost = save(pki.dir, "localhost", lh);
  pki.localhost2 = save(pki.dir, "localhost2", lh2);
  pki.expired = save(pki.dir, "expired", expired);
  pki.not_yet = save(pki.dir, "not_yet", not_yet);
  pki.wrong_host = save(pki.dir, "wrong_host", wrong);
  for (Made* m : {&ca, &other, &lh, &lh2, &expired, &not_yet, &wrong}) free_made(*m);
  return pki;
}

}  // namespace

const TestPki& test_pki() {
  static const TestPki pki = build();
  return pki;
}

std::string client_hello_bytes() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set_connect_state(ssl);
  if (SSL_do_handshake(ssl) > 0) die("a ClientHello");
  char* p = nullptr;
  long n = BIO_get_mem_data(wbio, &p);
  std::string out(p, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

}  // namespace fiber::testing
