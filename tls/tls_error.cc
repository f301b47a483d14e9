#include "fiber/tls_error.h"

#include <string>

namespace fiber {
namespace {

class TlsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "fiber.tls"; }

  std::string message(int c) const override {
    switch (static_cast<TlsError>(c)) {
      case TlsError::kCertificateExpired:
        return "tls: certificate has expired";
      case TlsError::kCertificateNotYetValid:
        return "tls: certificate is not yet valid";
      case TlsError::kHostnameMismatch:
        return "tls: certificate is not valid for the server name";
      case TlsError::kUnknownAuthority:
        return "tls: certificate signed by unknown authority";
      case TlsError::kCertificateInvalid:
        return "tls: certificate verification failed";
      case TlsError::kPeerRejectedCertificate:
        return "tls: the peer rejected our certificate";
      case TlsError::kHandshakeTimeout:
        return "tls: handshake timed out";
      case TlsError::kNoApplicationProtocol:
        return "tls: no application protocol (ALPN) in common";
      case TlsError::kNoSharedVersion:
        return "tls: no protocol version in common";
      case TlsError::kNoSharedCipher:
        return "tls: no cipher suite in common";
      case TlsError::kRenegotiationRefused:
        return "tls: renegotiation refused";
      case TlsError::kNoServerName:
        return "tls: a verifying client needs a server name";
      case TlsError::kProtocol:
        return "tls: protocol error (not TLS, or a malformed or unexpected record)";
      case TlsError::kUnexpectedEof:
        return "tls: the connection ended without close_notify (truncated)";
      case TlsError::kClosed:
        return "tls: write on a stream that is shut down or broken";
      case TlsError::kCertificateLoad:
        return "tls: cannot load the certificate chain";
      case TlsError::kPrivateKeyLoad:
        return "tls: cannot load the private key";
      case TlsError::kKeyMismatch:
        return "tls: the private key does not match the certificate";
      case TlsError::kRootsLoad:
        return "tls: cannot load the trusted roots";
      case TlsError::kInternal:
        return "tls: internal error in OpenSSL";
    }
    return "tls: unknown error " + std::to_string(c);
  }

  std::error_condition default_error_condition(int c) const noexcept override {
    if (static_cast<TlsError>(c) == TlsError::kHandshakeTimeout) {
      return std::make_error_condition(std::errc::timed_out);
    }
    return {c, *this};
  }
};

}  // namespace

const std::error_category& tls_category() {
  static const TlsCategory category;
  return category;
}

}  // namespace fiber
