// Test certificates, made at run time with OpenSSL's API into a temporary
// folder: a CA, a server certificate for "localhost" (and 127.0.0.1), a second
// one (for reloads), an expired one, a not-yet-valid one, one for another
// host, and a CA that signed none of them. Made once per test binary.
#pragma once

#include <string>

namespace fiber::testing {

struct CertFiles {
  std::string cert;  // path of the PEM chain (leaf first)
  std::string key;   // path of the PEM key
  std::string cert_pem;
  std::string key_pem;
  std::string cert_der;  // the leaf, DER
};

struct TestPki {
  std::string dir;
  CertFiles ca;          // the trusted root (key kept for signing)
  CertFiles other_ca;    // a root that signed nothing here
  CertFiles localhost;   // DNS:localhost, IP:127.0.0.1, valid now
  CertFiles localhost2;  // the same names, another key
  CertFiles expired;     // localhost, expired yesterday
  CertFiles not_yet;     // localhost, valid from tomorrow
  CertFiles wrong_host;  // DNS:wrong.example only
};

// test_pki() makes the certificates on first use (aborts the test binary if
// OpenSSL cannot) and removes the folder at exit.
const TestPki& test_pki();

// client_hello_bytes() is a genuine TLS ClientHello (for "localhost"), as
// OpenSSL's client would send it first.
std::string client_hello_bytes();

}  // namespace fiber::testing
