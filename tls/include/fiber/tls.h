// TlsStream is TLS (1.2, 1.3) over any of the runtime's streams (TcpStream,
// UnixStream: a fiber::Stream), as a client or as a server. Its calls look
// blocking and park the calling fiber, never the thread. OpenSSL does the
// cryptography over memory buffers; every byte reaches the socket through the
// Stream's own reads and writes, so the driver (io_uring or epoll), deadlines,
// cancel() and contexts work exactly as on the plain stream.
//
// Clients verify the server's chain against the trusted roots (the system's by
// default) and the server name given to client() (SNI is sent for DNS names);
// see TlsClientOptions::insecure_skip_verify to turn that off. Errors are
// TlsError codes (fiber/tls_error.h) or the transport's own (errno) codes.
//
// Threading: core-local, as the stream underneath. One fiber may read while
// another writes (after the handshake); two readers or two writers at once are
// not allowed. The handshake runs on the first call of handshake(), read() or
// write().
//
// Example:
//   auto cfg = fiber::TlsClientConfig::make({.alpn = {"http/1.1"}});
//   auto tcp = fiber::TcpStream::dial("example.com:443");
//   if (!cfg || !tcp) return ...;
//   auto tls = fiber::TlsStream::client(std::move(*tcp), *cfg, "example.com");
//   if (auto r = tls.handshake(); !r) return r.error();   // kUnknownAuthority, ...
//   tls.write_all(std::string_view("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
//   char buf[4096];
//   auto n = tls.read(buf);                              // 0: the peer's close_notify
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "fiber/result.h"
#include "fiber/socket.h"
#include "fiber/stream.h"
#include "fiber/tls_config.h"
#include "fiber/tls_error.h"

namespace fiber {

class Context;

class TlsStream {
 public:
  TlsStream();  // not connected: every call fails with bad_file_descriptor
  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream();  // closes the transport, as close() does

  // client() wraps `transport` as the client side; `server_name` is the name
  // to verify (DNS name or IP address) and to send as SNI. No I/O yet.
  static TlsStream client(Stream transport, const TlsClientConfig& config,
                          std::string_view server_name);
  // server() wraps `transport` (an accepted connection) as the server side,
  // with the configuration's current certificate. No I/O yet.
  static TlsStream server(Stream transport, const TlsServerConfig& config);

  // handshake() runs the handshake once; later calls return its result. It is
  // bounded by the config's handshake_timeout (kHandshakeTimeout) and by the
  // deadlines. Fails with a TlsError, or the transport's error (ECONNRESET,
  // operation_canceled, ...). Fiber-only: parks the caller.
  Result<void> handshake();
  // read() reads at most buf.size() bytes of plaintext; 0 means the peer sent
  // close_notify. The transport's end without close_notify is kUnexpectedEof.
  // An empty buffer is invalid_argument. Fiber-only: parks the caller.
  Result<size_t> read(std::span<char> buf);
  // read_exact() fills `buf`; end of stream first is connection_aborted.
  Result<void> read_exact(std::span<char> buf);
  // write() encrypts and sends some of `buf` (at most 64 KiB, at least one
  // byte unless it is empty). After a failed write the stream is broken: later
  // writes fail with the same error (bytes may have been half sent).
  // Fiber-only: parks the caller.
  Result<size_t> write(std::span<const char> buf);
  // write_all() writes all of `buf`.
  Result<void> write_all(std::span<const char> buf);
  // shutdown() sends close_notify (the peer's read() then returns 0) and ends
  // writing; reading stays possible. It does not wait for the peer's
  // close_notify. Fiber-only: parks the caller.
  Result<void> shutdown();
  // close() closes the transport without close_notify (call shutdown() first for
  // a clean end). Idempotent; as Socket::close().
  void close();
  // cancel() makes the calls in progress fail with operation_canceled (as
  // Socket::cancel()). A cancelled handshake or write leaves the stream broken.
  void cancel();

  // Deadlines work as Socket's and bound the handshake too. Set them here, not
  // on transport(): the handshake bound is combined with them.
  void set_deadline(Deadline d);
  void set_read_deadline(Deadline d);
  void set_write_deadline(Deadline d);
  // bind_context() makes the end of `ctx` fail the calls, as Socket's.
  ContextBinding bind_context(const Context& ctx);

  // After the handshake: the ALPN protocol chosen ("" if none), the version
  // ("TLSv1.3"), the cipher suite, whether the session was resumed, the name the
  // client asked for (SNI, server side), the peer's leaf certificate (DER, ""
  // if none).
  std::string alpn_protocol() const;
  std::string_view version() const;
  std::string_view cipher() const;
  bool session_reused() const;
  std::string server_name() const;
  std::string peer_certificate_der() const;
  // error_detail() is OpenSSL's text for the last TLS failure ("" if none),
  // e.g. "certificate has expired" or "error:0A00010B:SSL routines::wrong
  // version number".
  std::string error_detail() const;

  bool is_open() const;
  // transport() is the stream underneath (for its address, fd, options).
  Stream& transport();

  // Impl is the state behind the stream (heap-allocated, so that
  // OpenSSL's pointers to it survive a move).
  struct Impl;

 private:
  explicit TlsStream(std::unique_ptr<Impl> impl);
  Impl& impl();  // makes an unconnected one for a default-constructed stream
  std::unique_ptr<Impl> impl_;
};

}  // namespace fiber
