// The HTTP/1.1 connection loop.
//
// A connection reads into one buffer and hands llhttp every byte it has not
// parsed yet. llhttp reports the request line and headers as spans of that
// buffer (possibly in pieces, when a read ended inside them); the connection
// keeps them as offsets, so the buffer may grow or slide without copying
// headers anywhere. on_message_complete pauses the parser: the connection
// answers that request (appending the answer to `out_`), then resumes after it.
// Answers to pipelined requests accumulate in `out_` and leave in one write
// when the buffer holds no further complete request, so a batch of requests
// costs one read and one write.
//
// Buffer layout (offsets into buf_):
//   [0, begin_)        consumed: requests already answered
//   [begin_, parsed_)  the request in progress, given to llhttp
//   [parsed_, end_)    read, not parsed yet (only while answering a request)
//   [end_, cap_)       free
// The head of the request in progress (request line and headers, the spans'
// targets) stays in [begin_, head_end_) until it is answered; body bytes past
// it are copied into body_ as they are parsed and may be dropped.
#include <llhttp.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "date.h"
#include "fiber/fiber.h"
#include "fiber/http.h"
#include "strings.h"

namespace fiber::http {

struct CoreState {
  TcpListener listener;
  Connection* connections = nullptr;  // intrusive list of this core's connections
};

namespace {

constexpr size_t kInitialBuffer = 4096;
constexpr size_t kBodyBuffer = 64 * 1024;      // read buffer while a big body streams in
constexpr size_t kFlushThreshold = 64 * 1024;  // pending answers flushed beyond this
constexpr size_t kDirectBody = 64 * 1024;      // bodies this big skip the copy into out_
constexpr size_t kKeepCapacity = 1024 * 1024;  // buffers bigger than this are freed after use
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::chrono::steady_clock::time_point now() { return std::chrono::steady_clock::now(); }

// trim() strips optional whitespace around a header value's list element.
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

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
      : server_(server), opt_(server.options_), stream_(std::move(stream)), core_(core) {
    llhttp_settings_init(&settings_);
    settings_.on_message_begin = &Connection::on_message_begin;
    settings_.on_url = &Connection::on_url;
    settings_.on_url_complete = &Connection::on_url_complete;
    settings_.on_header_field = &Connection::on_header_field;
    settings_.on_header_value = &Connection::on_header_value;
    settings_.on_header_value_complete = &Connection::on_header_value_complete;
    settings_.on_headers_complete = &Connection::on_headers_complete;
    settings_.on_body = &Connection::on_body;
    settings_.on_message_complete = &Connection::on_message_complete;
    // Strict mode: llhttp_init leaves every lenient flag off, so bare LF line
    // ends, bad header characters, conflicting Content-Length/Transfer-Encoding
    // and keep-alive after Connection: close are all errors.
    llhttp_init(&parser_, HTTP_REQUEST, &settings_);
    parser_.data = this;
    buf_ = std::make_unique<char[]>(kInitialBuffer);
    cap_ = kInitialBuffer;
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

  struct Span {
    size_t off = 0;
    size_t len = 0;
    std::string_view view(const char* base) const { return {base + off, len}; }
    size_t end() const { return off + len; }
  };
  struct HeaderSpan {
    Span name, value;
  };

  // ---- parsing ---------------------------------------------------------------
  static Connection& self(llhttp_t* p) { return *static_cast<Connection*>(p->data); }

  // fail_with() makes the current llhttp callback fail with HTTP status `code`.
  int fail_with(int code, const char* reason) {
    error_status_ = code;
    llhttp_set_error_reason(&parser_, reason);
    return -1;
  }

  // extend() appends a piece of a span. Pieces are contiguous in buf_: they are
  // parsed in order from one buffer that only ever moves as a whole.
  // A piece that does not follow the previous one means llhttp skipped bytes
  // inside a value: obsolete line folding, which is refused (RFC 9112 5.2).
  int extend(Span& s, const char* at, size_t len) {
    size_t off = static_cast<size_t>(at - buf_.get());
    if (s.len == 0) {
      s.off = off;
    } else if (off != s.end()) {
      return fail_with(400, "obsolete line folding");
    }
    s.len += len;
    head_end_ = std::max(head_end_, s.end());
    return 0;
  }

  static int on_message_begin(llhttp_t* p) {
    Connection& c = self(p);
    c.in_message_ = true;
    c.url_ = {};
    c.url_done_ = false;
    c.spans_.clear();
    c.in_field_ = false;
    c.headers_done_ = false;
    c.head_end_ = c.begin_;
    c.content_lengths_ = 0;
    c.transfer_encodings_ = 0;
    c.expect_continue_ = false;
    c.body_.clear();
    return 0;
  }

  static int on_url(llhttp_t* p, const char* at, size_t len) {
    Connection& c = self(p);
    if (c.extend(c.url_, at, len) != 0) return -1;
    if (c.url_.len > c.opt_.max_uri_bytes) return c.fail_with(414, "URI too long");
    return 0;
  }

  static int on_url_complete(llhttp_t* p) {
    self(p).url_done_ = true;
    return 0;
  }

  static int on_header_field(llhttp_t* p, const char* at, size_t len) {
    Connection& c = self(p);
    if (!c.in_field_) {
      if (c.spans_.size() >= c.opt_.max_headers) return c.fail_with(431, "too many headers");
      c.spans_.emplace_back();
      c.in_field_ = true;
    }
    return c.extend(c.spans_.back().name, at, len);
  }

  static int on_header_value(llhttp_t* p, const char* at, size_t len) {
    Connection& c = self(p);
    c.in_field_ = false;
    return c.extend(c.spans_.back().value, at, len);
  }

  // on_header_value_complete() applies the server's own framing rules on top of
  // llhttp's, against request smuggling: one Content-Length at most, and the
  // only transfer coding is a single "chunked".
  static int on_header_value_complete(llhttp_t* p) {
    Connection& c = self(p);
    c.in_field_ = false;
    if (c.spans_.empty()) return 0;
    const char* base = c.buf_.get();
    std::string_view name = c.spans_.back().name.view(base);
    std::string_view value = trim(c.spans_.back().value.view(base));
    if (value.find_first_of("\r\n") != std::string_view::npos) {
      return c.fail_with(400, "line break in a header value");
    }
    if (detail::iequals(name, "content-length")) {
      if (++c.content_lengths_ > 1) return c.fail_with(400, "more than one Content-Length");
    } else if (detail::iequals(name, "transfer-encoding")) {
      if (++c.transfer_encodings_ > 1) return c.fail_with(501, "more than one Transfer-Encoding");
      if (!detail::iequals(value, "chunked")) {
        return c.fail_with(501, "unsupported transfer coding");
      }
    } else if (detail::iequals(name, "expect")) {
      if (!detail::iequals(value, "100-continue")) {
        return c.fail_with(417, "unsupported expectation");
      }
      c.expect_continue_ = true;
    }
    return 0;
  }

  static int on_headers_complete(llhttp_t* p) {
    Connection& c = self(p);
    c.headers_done_ = true;
    if (p->http_major != 1) return c.fail_with(505, "HTTP version not supported");
    if (c.content_lengths_ > 0 && c.transfer_encodings_ > 0) {
      return c.fail_with(400, "Content-Length with Transfer-Encoding");
    }
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing.
    if (c.transfer_encodings_ > 0 && p->http_minor == 0) {
      return c.fail_with(400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    if (c.content_lengths_ > 0 && p->content_length > c.opt_.max_body_bytes) {
      return c.fail_with(413, "body too large");
    }
    // 100-continue means nothing to HTTP/1.0 and to a request without a body.
    if (p->http_minor == 0 || (c.content_lengths_ == 0 && c.transfer_encodings_ == 0) ||
        (c.content_lengths_ > 0 && p->content_length == 0)) {
      c.expect_continue_ = false;
    }
    c.body_deadline_ = now() + c.opt_.body_timeout;
    return 0;
  }

  static int on_body(llhttp_t* p, const char* at, size_t len) {
    Connection& c = self(p);
    if (c.body_.size() + len > c.opt_.max_body_bytes) return c.fail_with(413, "body too large");
    c.body_.append(at, len);
    return 0;
  }

  static int on_message_complete(llhttp_t* p) {
    (void)p;
    return HPE_PAUSED;  // answer it before parsing the next one (pipelining)
  }

  // status_for() maps a parse error to the status to answer with.
  int status_for(llhttp_errno_t err) const {
    if (error_status_ != 0) return error_status_;
    switch (err) {
      case HPE_INVALID_VERSION:
        return 505;
      case HPE_INVALID_TRANSFER_ENCODING:
        return 501;
      default:
        return 400;
    }
  }

  // parse_buffered() parses [parsed_, end_), answering each complete request.
  // Returns false when the connection must end (it has then been answered).
  bool parse_buffered();
  // make_room() ensures free space at end_, sliding or growing the buffer.
  // Returns false after answering 431/414 when the head outgrows its limit.
  bool make_room();
  void slide(size_t keep_end);

  // ---- answering -------------------------------------------------------------
  // answer() runs the handler on the request just parsed and queues its answer.
  // Returns whether the connection stays open.
  bool answer();
  void append_head(int status, std::string_view framing);
  void append_chunk(std::string_view data);
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

  llhttp_settings_t settings_;
  llhttp_t parser_;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0, begin_ = 0, parsed_ = 0, end_ = 0;

  // The request in progress (reset by on_message_begin).
  bool in_message_ = false;
  Span url_;
  bool url_done_ = false;
  std::vector<HeaderSpan> spans_;
  bool in_field_ = false;
  bool headers_done_ = false;
  size_t head_end_ = 0;
  int content_lengths_ = 0;
  int transfer_encodings_ = 0;
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  int error_status_ = 0;
  std::string body_;
  std::vector<Header> headers_;  // spans_ as views, built for the handler

  // Deadlines of the request in progress.
  bool head_started_ = false;
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
  while (parsed_ < end_) {
    const char* start = buf_.get() + parsed_;
    llhttp_errno_t err = llhttp_execute(&parser_, start, end_ - parsed_);
    if (err == HPE_OK) {
      parsed_ = end_;
      break;
    }
    if (err == HPE_PAUSED) {
      parsed_ = static_cast<size_t>(llhttp_get_error_pos(&parser_) - buf_.get());
      llhttp_resume(&parser_);
      bool keep = answer();
      in_message_ = false;
      head_started_ = false;
      continue_sent_ = false;
      first_request_ = false;
      begin_ = parsed_;
      if (!keep) {
        if (flush_out()) linger_close();
        return false;
      }
      if (out_.size() >= kFlushThreshold && !flush_out()) return false;
      continue;
    }
    fail(status_for(err));
    return false;
  }
  if (!in_message_) {
    // Nothing of a request is buffered (llhttp skips CRLFs between requests).
    begin_ = parsed_ = end_ = 0;
  }
  return true;
}

void Connection::slide(size_t keep_end) {
  // Moves [begin_, keep_end) to the front; every span moves with it.
  size_t shift = begin_;
  if (shift == 0 && keep_end == end_) return;
  std::memmove(buf_.get(), buf_.get() + begin_, keep_end - begin_);
  url_.off -= std::min(url_.off, shift);
  for (HeaderSpan& h : spans_) {
    h.name.off -= std::min(h.name.off, shift);
    h.value.off -= std::min(h.value.off, shift);
  }
  head_end_ -= std::min(head_end_, shift);
  end_ = parsed_ = keep_end - shift;
  begin_ = 0;
}

bool Connection::make_room() {
  if (in_message_ && !headers_done_ && end_ - begin_ > opt_.max_header_bytes) {
    fail(url_done_ ? 431 : 414);
    return false;
  }
  if (end_ < cap_) return true;
  // The buffer is full and everything in it is parsed. Keep the head of the
  // request in progress; body bytes past it are in body_ already.
  slide(headers_done_ ? head_end_ : end_);
  if (end_ < cap_ / 2 || (headers_done_ && end_ < cap_ && cap_ >= kBodyBuffer)) return true;
  // The head check above keeps end_ <= max_header_bytes while the head is
  // incomplete, so a buffer of max_header_bytes + 1 always has room.
  size_t limit =
      headers_done_ ? std::max(kBodyBuffer, opt_.max_header_bytes + 1) : opt_.max_header_bytes + 1;
  if (cap_ >= limit) return end_ < cap_;
  size_t grown = std::min(limit, cap_ * 2);
  auto bigger = std::make_unique<char[]>(grown);
  std::memcpy(bigger.get(), buf_.get(), end_);
  buf_ = std::move(bigger);
  cap_ = grown;
  return true;
}

void Connection::run() {
  head_deadline_ = now() + opt_.header_timeout;  // the first request: from the connection's start
  head_started_ = true;
  for (;;) {
    if (!parse_buffered()) return;
    if (in_message_ && headers_done_ && expect_continue_ && !continue_sent_) {
      out_.append(kContinue);
      continue_sent_ = true;
    }
    if (!flush_out()) return;
    if (!in_message_ && server_.stopping_.load(std::memory_order_acquire)) return;
    if (!make_room()) return;
    if (!in_message_ && end_ == 0) {
      stream_.set_read_deadline(first_request_ ? head_deadline_ : now() + opt_.idle_timeout);
      idle_ = true;
    } else if (!headers_done_) {
      if (!head_started_) {
        head_started_ = true;
        head_deadline_ = now() + opt_.header_timeout;
      }
      stream_.set_read_deadline(head_deadline_);
    } else {
      stream_.set_read_deadline(body_deadline_);
    }
    auto n = stream_.read({buf_.get() + end_, cap_ - end_});
    idle_ = false;
    // End of stream, timeout, cancel or reset: nothing more can be answered.
    // (A half-closed client has had its complete requests answered above.)
    if (!n || *n == 0) return;
    if (!in_message_ && end_ == 0 && !head_started_) {
      head_started_ = true;
      head_deadline_ = now() + opt_.header_timeout;
    }
    end_ += *n;
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
    auto n = stream_.read({buf_.get(), cap_});
    if (!n || *n == 0) break;
    drained += *n;
  }
}

bool Connection::answer() {
  const char* base = buf_.get();
  headers_.clear();
  for (const HeaderSpan& h : spans_) headers_.push_back({h.name.view(base), h.value.view(base)});
  Request req;
  auto method = static_cast<llhttp_method_t>(parser_.method);
  req.method_ = llhttp_method_name(method);
  req.target_ = url_.view(base);
  req.major_ = parser_.http_major;
  req.minor_ = parser_.http_minor;
  req.headers_ = headers_;
  req.body_ = body_;

  head_request_ = method == HTTP_HEAD;
  http10_ = parser_.http_minor == 0;
  // llhttp_should_keep_alive() applies HTTP/1.0's and Connection's rules; an
  // upgrade (or CONNECT) is not supported, so its connection ends here.
  keep_alive_ = llhttp_should_keep_alive(&parser_) != 0 && parser_.upgrade == 0 &&
                !server_.stopping_.load(std::memory_order_acquire);
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
    release_if_big(body_);
    return keep_alive_;
  }

  // Streaming: send what is left and end the body.
  encode_stream_data(resp_body_);
  resp_body_.clear();
  if (framing_ == Framing::kChunked && !head_request_) out_.append("0\r\n\r\n");
  if (framing_ == Framing::kLength && w.content_length_ && w.streamed_ != *w.content_length_) {
    keep_alive_ = false;  // fewer bytes than announced: the client must see a close
  }
  release_if_big(body_);
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
  for (unsigned i = 0; i < n; ++i) {
    auto err = spawn_on(i, [&, i] {
                 auto ln = TcpListener::bind(bound, shared);
                 if (!ln) return ln.error();
                 cores_[i]->listener = std::move(*ln);
                 return std::error_code();
               }).join();
    if (err) {
      for (unsigned j = 0; j < i; ++j) spawn_on(j, [&, j] { cores_[j]->listener.close(); }).join();
      cores_.clear();
      return err;
    }
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
