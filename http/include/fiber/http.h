// An HTTP/1.1 server on fibers: one SO_REUSEPORT listener per core, a fiber per
// connection, handlers written in blocking style. Keep-alive, pipelining
// (answers in order, batched into one write), chunked request bodies, chunked
// or Content-Length responses, Expect: 100-continue, HEAD and HTTP/1.0. The
// parser is llhttp in strict mode; limits and timeouts are ServerOptions.
//
// Threading: a Handler runs on the core of its connection, on many cores at
// once, so it must be safe to call concurrently. Request and ResponseWriter
// belong to the handler's fiber for the duration of the call. Server's calls
// are fiber-only and may be made from any core.
//
// Example:
//   fiber::run([] {
//     fiber::http::Server server([](const fiber::http::Request& req,
//                                   fiber::http::ResponseWriter& w) {
//       w.set_header("Content-Type", "text/plain");
//       w.write("Hello, World!");
//     });
//     auto at = server.listen(*fiber::Address::parse("127.0.0.1:8080"));
//     if (!at) return 1;
//     server.start();
//     ...                                   // wait for a reason to stop
//     server.shutdown(std::chrono::seconds(5));
//     return 0;
//   });
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fiber/health.h"
#include "fiber/mutex.h"
#include "fiber/net.h"
#include "fiber/result.h"
#include "fiber/wait_group.h"

namespace fiber::http {

class Connection;
class RequestParser;

struct Header {
  std::string_view name;
  std::string_view value;
};

// Request is one parsed request. Every view points into the connection's
// buffers and is valid only during the handler call.
class Request {
 public:
  std::string_view method() const { return method_; }
  // target() is the request target as sent ("/a%20b?x=1"); path() is its part
  // before '?', still percent-encoded; query() the part after it.
  std::string_view target() const { return target_; }
  std::string_view path() const;
  std::string_view query() const;
  int version_major() const { return major_; }
  int version_minor() const { return minor_; }
  // header() is the first value of the header `name` (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const;
  std::span<const Header> headers() const { return headers_; }
  // body() is the whole body, de-chunked.
  std::string_view body() const { return body_; }

 private:
  friend class RequestParser;
  std::string_view method_, target_, body_;
  int major_ = 1, minor_ = 1;
  std::span<const Header> headers_;
};

// ResponseWriter builds the answer to one request. By default the body is
// buffered and sent with a Content-Length once the handler returns. flush()
// starts streaming: the head goes out at once, with chunked framing (or, after
// set_content_length(), exactly that many bytes; for an HTTP/1.0 client, the
// body ends with the connection). Date, Content-Length/Transfer-Encoding and
// Connection are the server's to set.
class ResponseWriter {
 public:
  // set_status() sets the status code (default 200); no effect once streaming.
  void set_status(int code);
  // set_header() adds a header; no effect once streaming. Names and values with
  // CR or LF are dropped (they would split the response).
  void set_header(std::string_view name, std::string_view value);
  // set_content_length() announces the body length for a streamed response.
  void set_content_length(uint64_t n);
  // write() appends to the body (discarded for HEAD, still counted). Once
  // streaming, data is sent when the buffer fills or at flush().
  void write(std::string_view data);
  // flush() sends what is buffered, starting the stream if needed. Fails when
  // the client is gone; later writes are then dropped. Fiber-only: parks.
  Result<void> flush();
  int status() const { return status_; }

 private:
  friend class Connection;
  explicit ResponseWriter(Connection& c) : conn_(c) {}
  Connection& conn_;
  int status_ = 200;
  bool streaming_ = false;
  bool failed_ = false;
  std::optional<uint64_t> content_length_;
  uint64_t streamed_ = 0;  // body bytes sent (or skipped for HEAD) while streaming
};

using Handler = std::function<void(const Request&, ResponseWriter&)>;

struct ServerOptions {
  size_t max_header_bytes = 16 * 1024;      // request line + headers; beyond: 431
  size_t max_uri_bytes = 8 * 1024;          // beyond: 414
  size_t max_body_bytes = 8 * 1024 * 1024;  // beyond: 413
  size_t max_headers = 100;                 // header lines; beyond: 431
  // header_timeout bounds the time from a request's first byte (or the
  // connection's start) to the end of its headers; then the connection closes.
  std::chrono::nanoseconds header_timeout = std::chrono::seconds(10);
  // body_timeout bounds reading a body, from the end of the headers.
  std::chrono::nanoseconds body_timeout = std::chrono::seconds(30);
  // idle_timeout closes a keep-alive connection with no request in progress.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(60);
  // write_timeout bounds each write to a client that does not read.
  std::chrono::nanoseconds write_timeout = std::chrono::seconds(30);
  // max_connections: connections beyond it are accepted and closed at once.
  int64_t max_connections = 10000;
  // server_name, if not empty, is sent as the Server header.
  std::string server_name = "fiber";
  // steer_from_stuck_cores: while a core is unresponsive (fiber/health.h: one
  // fiber has held it for 10 ms), the kernel hands new connections to the
  // other cores' listeners only (TcpListener::steer_group()).
  bool steer_from_stuck_cores = true;
};

struct CoreState;

// Server serves one Handler on every core.
class Server {
 public:
  explicit Server(Handler handler, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // listen() binds a listener with SO_REUSEPORT on every scheduler at `at`
  // (port 0 picks one) and returns the bound address. Fails with the bind
  // error (address_in_use, ...). Fiber-only: parks the caller.
  Result<Address> listen(const Address& at);
  // start() starts one accept loop per core. Call after listen(). Fiber-only.
  void start();
  // shutdown() stops accepting, closes idle connections, lets requests in
  // progress finish for `grace`, cancels what is left, and returns once every
  // connection has ended. Idempotent. Fiber-only: parks the caller.
  void shutdown(std::chrono::nanoseconds grace);

  // connections() is the number of open connections. Thread-safe: any thread.
  int64_t connections() const { return open_.load(std::memory_order_relaxed); }

 private:
  friend class Connection;
  void accept_loop(unsigned core);
  void serve(TcpStream stream, unsigned core);
  void connection_ended();

  Handler handler_;
  ServerOptions options_;
  std::vector<std::unique_ptr<CoreState>> cores_;  // cores_[i] is touched on core i only
  WaitGroup accepting_;
  bool started_ = false;
  bool shut_down_ = false;
  // stopping_ is set (release) by shutdown() before it wakes connections; a
  // connection reads it (acquire) before each wait for a new request.
  std::atomic<bool> stopping_{false};
  // open_ counts connections; the one that brings it to 0 while stopping_
  // notifies drained_ under mu_, so shutdown() cannot miss the wake-up.
  std::atomic<int64_t> open_{0};
  Mutex mu_;
  CondVar drained_;
  // Steering (ServerOptions::steer_from_stuck_cores). The watch's callback
  // runs on the runtime's monitor thread, one call at a time, and alone uses
  // unresponsive_ and group_fd_ (core 0's listener) once listen() has set them;
  // the watch goes before any listener closes.
  std::unique_ptr<HealthWatch> steer_;
  std::vector<bool> unresponsive_;
  int group_fd_ = -1;
};

}  // namespace fiber::http
