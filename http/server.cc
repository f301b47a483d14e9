// The HTTP/1.1 connection loop.
//
// A connection reads into its RequestParser's buffer (request_parser.h: llhttp
// plus the server's own checks; the head of a request stays in that buffer as
// offsets, so the head is never copied). Each complete request is answered at
// once (the answer appended to `out_`), then parsing resumes after it.
// Answers to pipelined requests accumulate in `out_` and leave in one write
// when the buffer holds no further complete request, so a batch of requests
// costs one read and one write.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "date.h"
#include "fiber/fiber.h"
#include "fiber/http.h"
#include "request_parser.h"
#include "strings.h"

namespace fiber::http {

struct CoreState {
  TcpListener listener;
  Connection* connections = nullptr;  // intrusive list of this core's connections
};

namespace {

constexpr size_t kFlushThreshold = 64 * 1024;  // pending answers flushed beyond this
constexpr size_t kDirectBody = 64 * 1024;      // bodies this big skip the copy into out_
constexpr size_t kKeepCapacity = 1024 * 1024;  // buffers bigger than this are freed after use
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }

// ContentLength formats the header line on the stack: the hot path makes no
// heap allocation for it.
class ContentLength {
 public:
  explicit ContentLength(uint64_t n) {
    constexpr std::string_view kName = "Content-Length: ";
    std::memcpy(buf_, kName.data(), kName.size());
    char* end = std::to_chars(buf_ + kName.size(), buf_ + sizeof buf_ - 2, n).ptr;
    end[0] = '\r';
    end[1] = '\n';
    len_ = static_cast<size_t>(end + 2 - buf_);
  }
  std::string_view view() const { return {buf_, len_}; }

 private:
  char buf_[48];
  size_t len_;
};

void release_if_big(std::string& s) {
  if (s.capacity() > kKeepCapacity) {
    std::string().swap(s);
  } else {
    s.clear();
  }
}

}  // namespace

// Connection is one client connection, on the stack of its fiber. Core-local:
// only its core touches it (the shutdown scan runs on that core too).
class Connection {
 public:
  Connection(Server& server, TcpStream stream, CoreState& core)
      : server_(server),
        opt_(server.options_),
        stream_(std::move(stream)),
        core_(core),
        parser_(server.options_) {
    next_ = core_.connections;
    if (next_ != nullptr) next_->prev_ = this;
    core_.connections = this;
  }

  ~Connection() {
    if (prev_ != nullptr) {
      prev_->next_ = next_;
    } else {
      core_.connections = next_;
    }
    if (next_ != nullptr) next_->prev_ = prev_;
    stream_.close();
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void run();

  // Shutdown scan (core-local): wake the connection if it waits for a request.
  void cancel_if_idle() {
    if (idle_) stream_.cancel();
  }
  void cancel() { stream_.cancel(); }
  Connection* next() const { return next_; }

 private:
  friend class ResponseWriter;

  // parse_buffered() parses what is buffered, answering each complete request.
  // Returns false when the connection must end (it has then been answered).
  bool parse_buffered();

  // ---- answering -------------------------------------------------------------
  // answer() runs the handler on the request just parsed and queues its answer.
  // Returns whether the connection stays open.
  bool answer();
  void append_head(int status, std::string_view framing);
  void append_chunk(std::string_view data);
  // write_direct() sends a big piece of a streamed body from the caller's buffer,
  // after what is pending: a client that reads slowly then pins no copy of it.
  bool write_direct(std::string_view data);
  // stream() sends the response body bytes in `pending` as the framing wants.
  void encode_stream_data(std::string_view data);
  bool flush_out();
  // fail() answers `status` with Connection: close and ends the connection.
  void fail(int status);
  // linger_close() half-closes and drains what the client still sends for a
  // moment, so that the kernel does not answer unread data with a reset that
  // would destroy the response in flight.
  void linger_close();

  Server& server_;
  const ServerOptions& opt_;
  TcpStream stream_;
  CoreState& core_;
  Connection* prev_ = nullptr;
  Connection* next_ = nullptr;
  bool idle_ = false;  // parked in read with no request in progress

  RequestParser parser_;
  bool continue_sent_ = false;

  // Deadlines of the request in progress.
  bool head_started_ = false;
  bool body_started_ = false;  // body_deadline_ is set: the head is complete
  std::chrono::steady_clock::time_point head_deadline_{};
  std::chrono::steady_clock::time_point body_deadline_{};
  bool first_request_ = true;

  // The response in progress.
  bool head_request_ = false;
  bool http10_ = false;
  bool keep_alive_ = true;
  enum class Framing { kLength, kChunked, kClose } framing_ = Framing::kLength;
  std::string resp_headers_;  // "Name: value\r\n" lines set by the handler
  std::string resp_body_;     // the body buffered by the handler

  std::string out_;  // answers not yet written, in request order
};

bool Connection::parse_buffered() {
  for (;;) {
    switch (parser_.parse()) {
      case RequestParser::Event::kNeedMore:
        if (parser_.headers_done() && !body_started_) {
          body_started_ = true;
          body_deadline_ = now() + opt_.body_timeout;
        }
        return true;
      case RequestParser::Event::kError:
        fail(parser_.error_status());
        return false;
      case RequestParser::Event::kRequest:
        break;
    }
    bool keep = answer();
    parser_.next_request();
    head_started_ = false;
    body_started_ = false;
    continue_sent_ = false;
    first_request_ = false;
    if (!keep) {
      if (flush_out()) linger_close();
      return false;
    }
    if (out_.size() >= kFlushThreshold && !flush_out()) return false;
  }
}

void Connection::run() {
  head_deadline_ = now() + opt_.header_timeout;  // the first request: from the connection's start
  head_started_ = true;
  for (;;) {
    if (!parse_buffered()) return;
    if (parser_.in_message() && parser_.headers_done() && parser_.expect_continue() &&
        !continue_sent_) {
      out_.append(kContinue);
      continue_sent_ = true;
    }
    if (!flush_out()) return;
    if (!parser_.in_message() && server_.stopping_.load(std::memory_order_acquire)) return;
    if (!parser_.make_room()) return;
    if (!parser_.in_message() && parser_.buffer_empty()) {
      stream_.set_read_deadline(first_request_ ? head_deadline_ : now() + opt_.idle_timeout);
      idle_ = true;
    } else if (!parser_.headers_done()) {
      if (!head_started_) {
        head_started_ = true;
        head_deadline_ = now() + opt_.header_timeout;
      }
      stream_.set_read_deadline(head_deadline_);
    } else {
      stream_.set_read_deadline(body_deadline_);
    }
    auto n = stream_.read(parser_.space());
    idle_ = false;
    // End of stream, timeout, cancel or reset: nothing more can be answered.
    // (A half-closed client has had its complete requests answered above.)
    if (!n || *n == 0) return;
    if (!parser_.in_message() && parser_.buffer_empty() && !head_started_) {
      head_started_ = true;
      head_deadline_ = now() + opt_.header_timeout;
    }
    parser_.commit(*n);
  }
}

bool Connection::flush_out() {
  if (out_.empty()) return true;
  stream_.set_write_deadline(now() + opt_.write_timeout);
  bool ok = static_cast<bool>(stream_.write_all(out_));
  release_if_big(out_);
  return ok;
}

void Connection::append_head(int status, std::string_view framing) {
  absl::StrAppend(&out_, "HTTP/1.1 ", status, " ", detail::av(detail::status_reason(status)),
                  "\r\nDate: ", detail::av(detail::http_date()), "\r\n");
  if (!opt_.server_name.empty()) absl::StrAppend(&out_, "Server: ", opt_.server_name, "\r\n");
  out_.append(resp_headers_);
  out_.append(framing);
  if (!keep_alive_) {
    out_.append("Connection: close\r\n");
  } else if (http10_) {
    out_.append("Connection: keep-alive\r\n");
  }
  out_.append("\r\n");
}

void Connection::append_chunk(std::string_view data) {
  if (data.empty()) return;  // an empty chunk would end the body
  char size[24];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  out_.append(size, static_cast<size_t>(n));
  out_.append(data);
  out_.append("\r\n");
}

bool Connection::write_direct(std::string_view data) {
  const bool chunked = framing_ == Framing::kChunked;
  if (chunked) {
    char size[24];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    out_.append(size, static_cast<size_t>(n));
  }
  if (!flush_out()) return false;
  stream_.set_write_deadline(now() + opt_.write_timeout);
  if (!stream_.write_all(data)) return false;
  if (chunked) out_.append("\r\n");  // leaves with what comes next
  return true;
}

void Connection::fail(int status) {
  keep_alive_ = false;
  http10_ = false;
  resp_headers_.assign("Content-Type: text/plain; charset=utf-8\r\n");
  std::string_view reason = detail::status_reason(status);
  append_head(status, ContentLength(reason.size() + 1).view());
  absl::StrAppend(&out_, detail::av(reason), "\n");
  if (flush_out()) linger_close();
}

void Connection::linger_close() {
  (void)stream_.shutdown(SHUT_WR);
  auto until = now() + std::chrono::milliseconds(500);
  stream_.set_read_deadline(until);
  size_t drained = 0;
  while (drained < 256 * 1024) {
    auto n = stream_.read(parser_.scratch());
    if (!n || *n == 0) break;
    drained += *n;
  }
}

bool Connection::answer() {
  Request req = parser_.request();
  head_request_ = parser_.head_request();
  http10_ = parser_.http10();
  keep_alive_ = parser_.keep_alive() && !server_.stopping_.load(std::memory_order_acquire);
  framing_ = Framing::kLength;
  resp_headers_.clear();
  resp_body_.clear();

  ResponseWriter w(*this);
  try {
    server_.handler_(req, w);
  } catch (const std::exception&) {
    if (w.streaming_) {
      keep_alive_ = false;  // the body is cut short; only a close can say so
      w.failed_ = true;
    } else {
      w.status_ = 500;
      resp_headers_.assign("Content-Type: text/plain; charset=utf-8\r\n");
      resp_body_.assign("Internal Server Error\n");
    }
  }
  if (w.failed_) return false;
  // A shutdown that began while the handler ran: this is the last answer.
  if (!w.streaming_ && server_.stopping_.load(std::memory_order_acquire)) keep_alive_ = false;

  if (!w.streaming_) {
    int status = w.status_;
    bool no_body = status == 204 || status == 304 || status < 200;
    if (no_body) {
      append_head(status, "");
    } else {
      append_head(status, ContentLength(resp_body_.size()).view());
    }
    if (!head_request_ && !no_body) {
      if (resp_body_.size() >= kDirectBody) {
        // A big body leaves in its own write rather than being copied.
        if (!flush_out()) return false;
        stream_.set_write_deadline(now() + opt_.write_timeout);
        if (!stream_.write_all(resp_body_)) return false;
      } else {
        out_.append(resp_body_);
      }
    }
    release_if_big(resp_body_);
    parser_.release_body();
    return keep_alive_;
  }

  // Streaming: send what is left and end the body.
  encode_stream_data(resp_body_);
  resp_body_.clear();
  if (framing_ == Framing::kChunked && !head_request_) out_.append("0\r\n\r\n");
  if (framing_ == Framing::kLength && w.content_length_ && w.streamed_ != *w.content_length_) {
    keep_alive_ = false;  // fewer bytes than announced: the client must see a close
  }
  parser_.release_body();
  return keep_alive_ && framing_ != Framing::kClose;
}

void Connection::encode_stream_data(std::string_view data) {
  if (head_request_ || data.empty()) return;
  if (framing_ == Framing::kChunked) {
    append_chunk(data);
  } else {
    out_.append(data);
  }
}

// ---- ResponseWriter ------------------------------------------------------------

namespace {
bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }
}  // namespace

void ResponseWriter::set_status(int code) {
  if (!streaming_ && code >= 100 && code <= 999) status_ = code;
}

void ResponseWriter::set_header(std::string_view name, std::string_view value) {
  if (streaming_ || name.empty() || has_crlf(name) || has_crlf(value)) return;
  // Framing and connection management are the server's.
  if (detail::iequals(name, "content-length") || detail::iequals(name, "transfer-encoding") ||
      detail::iequals(name, "connection") || detail::iequals(name, "date")) {
    return;
  }
  absl::StrAppend(&conn_.resp_headers_, detail::av(name), ": ", detail::av(value), "\r\n");
}

void ResponseWriter::set_content_length(uint64_t n) {
  if (!streaming_) content_length_ = n;
}

void ResponseWriter::write(std::string_view data) {
  if (failed_) return;
  if (!streaming_) {
    conn_.resp_body_.append(data);
    return;
  }
  if (content_length_) {
    uint64_t room = *content_length_ - streamed_;
    if (data.size() > room) {
      data = data.substr(0, room);  // never more than announced
      conn_.keep_alive_ = false;
    }
  }
  streamed_ += data.size();
  if (conn_.head_request_) return;
  if (data.size() >= kDirectBody && conn_.resp_body_.empty()) {
    if (!conn_.write_direct(data)) failed_ = true;
    return;
  }
  conn_.resp_body_.append(data);
  if (conn_.resp_body_.size() >= kFlushThreshold) (void)flush();
}

Result<void> ResponseWriter::flush() {
  if (failed_) return std::errc::broken_pipe;
  Connection& c = conn_;
  if (!streaming_) {
    streaming_ = true;
    streamed_ = c.resp_body_.size();
    if (content_length_) {
      c.framing_ = Connection::Framing::kLength;
      if (streamed_ > *content_length_) {
        c.resp_body_.resize(*content_length_);
        streamed_ = *content_length_;
        c.keep_alive_ = false;
      }
      c.append_head(status_, ContentLength(*content_length_).view());
    } else if (!c.http10_) {
      c.framing_ = Connection::Framing::kChunked;
      c.append_head(status_, "Transfer-Encoding: chunked\r\n");
    } else {
      // HTTP/1.0 knows no chunks: the body ends with the connection.
      c.framing_ = Connection::Framing::kClose;
      c.keep_alive_ = false;
      c.append_head(status_, "");
    }
  }
  c.encode_stream_data(c.resp_body_);
  c.resp_body_.clear();
  if (!c.flush_out()) {
    failed_ = true;
    return std::errc::broken_pipe;
  }
  return {};
}

// ---- Request -----------------------------------------------------------------

std::string_view Request::path() const {
  return target_.substr(0, std::min(target_.find('?'), target_.size()));
}

std::string_view Request::query() const {
  size_t q = target_.find('?');
  return q == std::string_view::npos ? std::string_view() : target_.substr(q + 1);
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const Header& h : headers_) {
    if (detail::iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

// ---- Server ------------------------------------------------------------------

Server::Server(Handler handler, ServerOptions options)
    : handler_(std::move(handler)), options_(std::move(options)) {}

Server::~Server() {
  if (started_ && !shut_down_) shutdown(std::chrono::nanoseconds(0));
}

Result<Address> Server::listen(const Address& at) {
  const unsigned n = scheduler_count();
  // A plain bind first: it fails if another process has the port (listeners
  // sharing it through SO_REUSEPORT would not), and it fixes port 0.
  Address bound;
  {
    auto probe = TcpListener::bind(at);
    if (!probe) return probe.error();
    auto local = probe->local_address();
    if (!local) return local.error();
    bound = *local;
  }
  cores_.clear();
  for (unsigned i = 0; i < n; ++i) cores_.push_back(std::make_unique<CoreState>());
  ListenOptions shared;
  shared.reuse_port = true;
  int group_fd = -1;
  for (unsigned i = 0; i < n; ++i) {
    auto err = spawn_on(i, [&, i] {
                 auto ln = TcpListener::bind(bound, shared);
                 if (!ln) return ln.error();
                 if (i == 0) group_fd = ln->fd();
                 cores_[i]->listener = std::move(*ln);
                 return std::error_code();
               }).join();
    if (err) {
      for (unsigned j = 0; j < i; ++j) spawn_on(j, [&, j] { cores_[j]->listener.close(); }).join();
      cores_.clear();
      return err;
    }
  }
  if (options_.steer_from_stuck_cores && n > 1) {
    // Listener i joined the SO_REUSEPORT group i-th, so i is its position.
    group_fd_ = group_fd;
    unresponsive_.assign(n, false);
    steer_ = std::make_unique<HealthWatch>([this](unsigned core, bool responsive) {
      if (core >= unresponsive_.size()) return;
      unresponsive_[core] = !responsive;
      std::vector<unsigned> targets;
      for (unsigned i = 0; i < unresponsive_.size(); ++i) {
        if (!unresponsive_[i]) targets.push_back(i);
      }
      // None answering: keep the steering as it is, since nothing is better.
      // All answering: the kernel's own choice again.
      if (targets.empty()) return;
      if (targets.size() == unresponsive_.size()) targets.clear();
      (void)TcpListener::steer_group(group_fd_, targets);
    });
  }
  return bound;
}

void Server::start() {
  if (started_ || cores_.empty()) return;
  started_ = true;
  for (unsigned i = 0; i < cores_.size(); ++i) {
    accepting_.add(1);
    go_on(i, [this, i] {
      accept_loop(i);
      accepting_.done();
    });
  }
}

void Server::accept_loop(unsigned core) {
  CoreState& cs = *cores_[core];
  // stopping_ is checked before each accept with no park in between, and
  // shutdown() sets it before cancelling the listener on this core: either
  // this loop sees it or its accept is parked when the cancel comes.
  while (!stopping_.load(std::memory_order_acquire)) {
    auto conn = cs.listener.accept();
    if (!conn) {
      if (conn.error() == std::errc::operation_canceled) return;
      if (conn.error() == std::errc::too_many_files_open ||
          conn.error() == std::errc::too_many_files_open_in_system ||
          conn.error() == std::errc::no_buffer_space ||
          conn.error() == std::errc::not_enough_memory) {
        sleep_for(std::chrono::milliseconds(10));  // back off until fds free up
      } else if (conn.error() != std::errc::connection_aborted) {
        sleep_for(std::chrono::milliseconds(1));  // unexpected: never spin on it
      }
      continue;
    }
    if (open_.fetch_add(1, std::memory_order_relaxed) >= options_.max_connections) {
      conn->close();  // over the limit: accepted and closed at once
      connection_ended();
      continue;
    }
    try {
      go([this, s = std::move(*conn), core]() mutable { serve(std::move(s), core); });
    } catch (const std::exception&) {
      // No stack for a fiber: the connection (destroyed with the lambda) is
      // closed; back off as for a full fd table.
      connection_ended();
      sleep_for(std::chrono::milliseconds(10));
    }
  }
}

void Server::serve(TcpStream stream, unsigned core) {
  (void)stream.set_nodelay(true);
  {
    Connection c(*this, std::move(stream), *cores_[core]);
    c.run();
  }
  connection_ended();
}

void Server::connection_ended() {
  if (open_.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
      stopping_.load(std::memory_order_acquire)) {
    std::lock_guard<Mutex> g(mu_);
    drained_.notify_all();
  }
}

void Server::shutdown(std::chrono::nanoseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  steer_.reset();  // before a listener closes
  if (!started_) {
    for (unsigned i = 0; i < cores_.size(); ++i) {
      spawn_on(i, [&, i] { cores_[i]->listener.close(); }).join();
    }
    return;
  }
  stopping_.store(true, std::memory_order_release);
  const unsigned n = static_cast<unsigned>(cores_.size());
  for (unsigned i = 0; i < n; ++i) {
    spawn_on(i, [&, i] {
      cores_[i]->listener.cancel();
      for (Connection* c = cores_[i]->connections; c != nullptr; c = c->next()) {
        c->cancel_if_idle();
      }
    }).join();
  }
  accepting_.wait();
  for (unsigned i = 0; i < n; ++i) spawn_on(i, [&, i] { cores_[i]->listener.close(); }).join();
  auto drained = [&] { return open_.load(std::memory_order_acquire) == 0; };
  std::unique_lock<Mutex> lk(mu_);
  if (drained_.wait_for(lk, grace, drained)) return;
  // Past the grace period: cancel whatever is left, again every 100 ms for a
  // connection that was between two operations when the cancel came.
  while (!drained()) {
    lk.unlock();
    for (unsigned i = 0; i < n; ++i) {
      spawn_on(i, [&, i] {
        for (Connection* c = cores_[i]->connections; c != nullptr; c = c->next()) c->cancel();
      }).join();
    }
    lk.lock();
    drained_.wait_for(lk, std::chrono::milliseconds(100), drained);
  }
}

}  // namespace fiber::http
