// TlsError is what the TLS layer (fiber/tls.h) adds to the errno codes: one
// readable code per way a handshake or a record can fail. A failed certificate
// check on the client maps OpenSSL's X509 verify result (X509_V_ERR_*) to the
// first five; TlsStream::error_detail() has OpenSSL's own text.
//
// kHandshakeTimeout also compares equal to std::errc::timed_out, so code that
// checks for timeouts generically still sees one.
//
// Example:
//   auto r = tls.handshake();
//   if (r.error() == fiber::TlsError::kCertificateExpired) ...
//   std::cerr << r.error().message();     // "tls: certificate has expired"
#pragma once

#include <system_error>
#include <type_traits>

namespace fiber {

enum class TlsError {
  // Certificate checks (the client's view of the server's certificate).
  kCertificateExpired = 1,   // X509_V_ERR_CERT_HAS_EXPIRED (or the CRL's)
  kCertificateNotYetValid,   // X509_V_ERR_CERT_NOT_YET_VALID
  kHostnameMismatch,         // X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH
  kUnknownAuthority,         // no path to a trusted root (unknown CA, self-signed)
  kCertificateInvalid,       // any other verify failure (bad signature, purpose, ...)
  kPeerRejectedCertificate,  // the peer sent an alert refusing our certificate
  // Negotiation.
  kHandshakeTimeout,       // the handshake did not finish in handshake_timeout
  kNoApplicationProtocol,  // ALPN: no protocol in common
  kNoSharedVersion,        // no TLS version in common (e.g. 1.2-only against 1.3-only)
  kNoSharedCipher,         // no cipher suite or group in common
  kRenegotiationRefused,   // a renegotiation was attempted and refused
  kNoServerName,           // a verifying client was given no server name
  // The byte stream.
  kProtocol,       // not TLS, a malformed or unexpected record, a bad MAC
  kUnexpectedEof,  // the transport ended without close_notify (truncation)
  kClosed,         // write after shutdown(), or after a failed write
  // Configuration (TlsServerConfig::make, TlsClientConfig::make, reload).
  kCertificateLoad,  // the certificate (chain) cannot be read
  kPrivateKeyLoad,   // the private key cannot be read
  kKeyMismatch,      // the key does not belong to the certificate
  kRootsLoad,        // the trusted roots cannot be read
  kInternal,         // OpenSSL failed otherwise (out of memory, ...)
};

// tls_category() is TlsError's category ("fiber.tls"); messages start "tls: ".
const std::error_category& tls_category();
inline std::error_code make_error_code(TlsError e) { return {static_cast<int>(e), tls_category()}; }

}  // namespace fiber

template <>
struct std::is_error_code_enum<fiber::TlsError> : std::true_type {};
