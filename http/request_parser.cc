#include "request_parser.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "strings.h"

namespace fiber::http {

namespace {

constexpr size_t kInitialBuffer = 4096;
constexpr size_t kBodyBuffer = 64 * 1024;      // read buffer while a big body streams in
constexpr size_t kKeepCapacity = 1024 * 1024;  // a body buffer bigger than this is freed after use
constexpr size_t kTrailerName = 32;  // bytes of a trailer field's name kept: enough to compare

// trim() strips optional whitespace around a header value's list element.
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// chunked_before_last() says whether an element of the comma-separated list
// `value` other than the last names the chunked coding.
bool chunked_before_last(std::string_view value) {
  bool chunked = false;  // the element before the current one is chunked
  while (!value.empty()) {
    if (chunked) return true;
    size_t comma = std::min(value.find(','), value.size());
    std::string_view element = trim(value.substr(0, comma));
    element = element.substr(0, std::min(element.find(';'), element.size()));
    chunked = detail::iequals(trim(element), "chunked");
    value.remove_prefix(std::min(comma + 1, value.size()));
  }
  return false;
}

bool is_tchar(char ch) {
  auto c = static_cast<unsigned char>(ch);
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// valid_head() checks the line structure of a head that llhttp accepted:
// llhttp 8 lets through, even in strict mode, bare LF line ends, runs of
// spaces in the request line, a missing version, empty field names and
// obsolete line folding after an empty value. `head` starts at the method and
// holds at least the whole head. RFC 9112 2.2, 3, 5.1, 5.2.
bool valid_head(std::string_view head) {
  size_t eol = head.find('\n');
  if (eol == std::string_view::npos || eol == 0 || head[eol - 1] != '\r') return false;
  std::string_view line = head.substr(0, eol - 1);
  head.remove_prefix(eol + 1);
  // request-line = method SP request-target SP HTTP-version
  size_t sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos) return false;
  if (!std::all_of(line.begin(), line.begin() + sp1, is_tchar)) return false;
  std::string_view rest = line.substr(sp1 + 1);
  size_t sp2 = rest.find(' ');
  if (sp2 == 0 || sp2 == std::string_view::npos) return false;
  std::string_view version = rest.substr(sp2 + 1);
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
      !std::isdigit(static_cast<unsigned char>(version[5])) ||
      !std::isdigit(static_cast<unsigned char>(version[7]))) {
    return false;
  }
  // field lines, then an empty line
  for (;;) {
    eol = head.find('\n');
    if (eol == std::string_view::npos || eol == 0 || head[eol - 1] != '\r') return false;
    line = head.substr(0, eol - 1);
    head.remove_prefix(eol + 1);
    if (line.empty()) return true;
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return false;
    if (!std::all_of(line.begin(), line.begin() + colon, is_tchar)) return false;
  }
}

}  // namespace

RequestParser::RequestParser(const ServerOptions& options) : opt_(options) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &RequestParser::on_message_begin;
  settings_.on_url = &RequestParser::on_url;
  settings_.on_url_complete = &RequestParser::on_url_complete;
  settings_.on_header_field = &RequestParser::on_header_field;
  settings_.on_header_field_complete = &RequestParser::on_header_field_complete;
  settings_.on_header_value = &RequestParser::on_header_value;
  settings_.on_header_value_complete = &RequestParser::on_header_value_complete;
  settings_.on_headers_complete = &RequestParser::on_headers_complete;
  settings_.on_chunk_header = &RequestParser::on_chunk_header;
  settings_.on_chunk_extension_name = &RequestParser::on_chunk_extension_piece;
  settings_.on_chunk_extension_value = &RequestParser::on_chunk_extension_piece;
  settings_.on_chunk_extension_name_complete = &RequestParser::on_chunk_extension_complete;
  settings_.on_chunk_extension_value_complete = &RequestParser::on_chunk_extension_complete;
  settings_.on_body = &RequestParser::on_body;
  settings_.on_message_complete = &RequestParser::on_message_complete;
  // Strict mode: llhttp is built with LLHTTP_STRICT_MODE=1 and llhttp_init
  // leaves every lenient flag off, so bad header characters, conflicting
  // Content-Length/Transfer-Encoding and keep-alive after Connection: close
  // are all errors. What llhttp 8 still lets through (bare LF line ends, runs
  // of spaces, empty names, some folding, loose chunk lines) is refused by
  // valid_head(), the chunk callbacks and parse().
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
  buf_ = std::make_unique<char[]>(kInitialBuffer);
  cap_ = kInitialBuffer;
}

// ---- llhttp callbacks ----------------------------------------------------------

// fail_with() makes the current llhttp callback fail with HTTP status `code`.
int RequestParser::fail_with(int code, const char* reason) {
  error_status_ = code;
  llhttp_set_error_reason(&parser_, reason);
  return -1;
}

// extend() appends a piece of a span. Pieces are contiguous in buf_: they are
// parsed in order from one buffer that only ever moves as a whole.
// A piece that does not follow the previous one means llhttp skipped bytes
// inside a value: obsolete line folding, which is refused (RFC 9112 5.2).
int RequestParser::extend(Span& s, const char* at, size_t len) {
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

// on_message_begin() pauses the parser, so that parse() learns where the head
// starts before llhttp sees any of it (the head limit counts from there).
int RequestParser::on_message_begin(llhttp_t* p) {
  RequestParser& c = self(p);
  c.in_message_ = true;
  c.url_ = {};
  c.url_done_ = false;
  c.spans_.clear();
  c.in_field_ = false;
  c.headers_done_ = false;
  c.content_lengths_ = 0;
  c.transfer_encodings_ = 0;
  c.hosts_ = 0;
  c.trailer_value_end_ = kNoValue;
  c.expect_continue_ = false;
  c.body_.clear();
  c.pause_ = Pause::kMessageBegin;
  return HPE_PAUSED;
}

int RequestParser::on_url(llhttp_t* p, const char* at, size_t len) {
  RequestParser& c = self(p);
  return c.extend(c.url_, at, len);
}

// The URI limit is checked on the complete URL: a check on a partial span would
// answer 414 or 400 depending on where a read ended (memory is bounded by the
// head limit meanwhile).
int RequestParser::on_url_complete(llhttp_t* p) {
  RequestParser& c = self(p);
  c.url_done_ = true;
  if (c.url_.len > c.opt_.max_uri_bytes) return c.fail_with(414, "URI too long");
  return 0;
}

// Fields after the head are a chunked body's trailer (RFC 9112 7.1.2). They are
// not merged into the request's headers (RFC 9110 6.5.1: a handler would take a
// trailer Content-Length for the framing one) and not stored: only the start of
// each name is kept, to refuse framing fields there.
int RequestParser::on_header_field(llhttp_t* p, const char* at, size_t len) {
  RequestParser& c = self(p);
  if (c.headers_done_) {
    if (!c.in_field_) c.trailer_name_.clear();
    c.in_field_ = true;
    if (len > 0) c.trailer_named_ = true;
    c.trailer_name_.append(at, std::min(len, kTrailerName - c.trailer_name_.size()));
    return 0;
  }
  if (!c.in_field_) {
    c.spans_.emplace_back();
    c.in_field_ = true;
  }
  return c.extend(c.spans_.back().name, at, len);
}

// The header count is checked once the name is complete, for the same reason as
// the URI limit.
int RequestParser::on_header_field_complete(llhttp_t* p) {
  RequestParser& c = self(p);
  if (c.headers_done_) return 0;
  if (c.spans_.size() > c.opt_.max_headers) return c.fail_with(431, "too many headers");
  return 0;
}

int RequestParser::on_header_value(llhttp_t* p, const char* at, size_t len) {
  RequestParser& c = self(p);
  c.in_field_ = false;
  if (c.headers_done_) {
    // A trailer value is not stored, but a piece that does not follow the
    // previous one is obsolete line folding, as in extend().
    size_t off = static_cast<size_t>(at - c.buf_.get());
    if (c.trailer_value_end_ != kNoValue && off != c.trailer_value_end_) {
      return c.fail_with(400, "obsolete line folding");
    }
    c.trailer_value_end_ = off + len;
    return 0;
  }
  return c.extend(c.spans_.back().value, at, len);
}

// on_header_value_complete() applies the server's own framing rules on top of
// llhttp's, against request smuggling: one Content-Length at most, and the
// only transfer coding is a single "chunked".
int RequestParser::on_header_value_complete(llhttp_t* p) {
  RequestParser& c = self(p);
  c.in_field_ = false;
  if (c.headers_done_) {
    c.trailer_value_end_ = kNoValue;
    // A trailer field line without a name (": v"): RFC 9112 5.1.
    if (!std::exchange(c.trailer_named_, false)) return c.fail_with(400, "empty field name");
    if (detail::iequals(c.trailer_name_, "content-length") ||
        detail::iequals(c.trailer_name_, "transfer-encoding")) {
      return c.fail_with(400, "framing field in the trailer");
    }
    return 0;
  }
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
      // RFC 9112 6.3: chunked applied but not last leaves the length unknown:
      // 400. Any other coding is one the server does not implement: 501.
      if (chunked_before_last(value)) return c.fail_with(400, "chunked is not the final coding");
      return c.fail_with(501, "unsupported transfer coding");
    }
  } else if (detail::iequals(name, "host")) {
    if (++c.hosts_ > 1) return c.fail_with(400, "more than one Host");
  } else if (detail::iequals(name, "expect")) {
    if (!detail::iequals(value, "100-continue")) {
      return c.fail_with(417, "unsupported expectation");
    }
    c.expect_continue_ = true;
  }
  return 0;
}

int RequestParser::on_headers_complete(llhttp_t* p) {
  RequestParser& c = self(p);
  c.headers_done_ = true;
  const char* base = c.buf_.get();
  if (!valid_head(std::string_view(base + c.head_start_, c.end_ - c.head_start_))) {
    return c.fail_with(400, "malformed head");
  }
  if (p->http_major != 1) return c.fail_with(505, "HTTP version not supported");
  // RFC 9112 3.2: an HTTP/1.1 request without Host is answered 400 (so is one
  // with two, refused as the second arrives).
  if (p->http_minor != 0 && c.hosts_ == 0) return c.fail_with(400, "missing Host");
  if (c.content_lengths_ > 0 && c.transfer_encodings_ > 0) {
    return c.fail_with(400, "Content-Length with Transfer-Encoding");
  }
  // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing.
  if (c.transfer_encodings_ > 0 && p->http_minor == 0) {
    return c.fail_with(400, "Transfer-Encoding in an HTTP/1.0 request");
  }
  // RFC 9110 9.3.6: a CONNECT request has no content. llhttp does not read a
  // body after CONNECT (what follows is the tunnel), so a body announced there
  // would be handed to the handler as missing.
  if (p->method == HTTP_CONNECT &&
      (c.transfer_encodings_ > 0 || (c.content_lengths_ > 0 && p->content_length > 0))) {
    return c.fail_with(400, "CONNECT with content");
  }
  if (c.content_lengths_ > 0 && p->content_length > c.opt_.max_body_bytes) {
    return c.fail_with(413, "body too large");
  }
  // 100-continue means nothing to HTTP/1.0 and to a request without a body.
  if (p->http_minor == 0 || (c.content_lengths_ == 0 && c.transfer_encodings_ == 0) ||
      (c.content_lengths_ > 0 && p->content_length == 0)) {
    c.expect_continue_ = false;
  }
  return 0;
}

// on_chunk_header() refuses a chunk that would take the body over the limit
// as soon as its size is known, before any of its bytes are read.
int RequestParser::on_chunk_header(llhttp_t* p) {
  RequestParser& c = self(p);
  if (p->content_length > c.opt_.max_body_bytes - c.body_.size()) {
    return c.fail_with(413, "body too large");
  }
  c.pause_ = Pause::kChunkHeader;  // parse() checks the end of the size line
  return HPE_PAUSED;
}

// Chunk extensions are ignored, but must be well formed (RFC 9112 7.1.1):
// llhttp reports an empty name or value ("3;=x", "3;a=") as a complete one.
int RequestParser::on_chunk_extension_piece(llhttp_t* p, const char*, size_t len) {
  self(p).chunk_ext_len_ += len;
  return 0;
}

int RequestParser::on_chunk_extension_complete(llhttp_t* p) {
  RequestParser& c = self(p);
  if (std::exchange(c.chunk_ext_len_, 0) == 0) return c.fail_with(400, "empty chunk extension");
  return 0;
}

int RequestParser::on_body(llhttp_t* p, const char* at, size_t len) {
  RequestParser& c = self(p);
  if (c.body_.size() + len > c.opt_.max_body_bytes) return c.fail_with(413, "body too large");
  c.body_.append(at, len);
  return 0;
}

int RequestParser::on_message_complete(llhttp_t* p) {
  self(p).pause_ = Pause::kMessageComplete;
  return HPE_PAUSED;  // answer it before parsing the next one (pipelining)
}

// status_for() maps a parse error to the status to answer with.
int RequestParser::status_for(llhttp_errno_t err) const {
  if (error_status_ != 0) return error_status_;
  switch (err) {
    case HPE_INVALID_VERSION:
      // A supported version followed by something else is a syntax error;
      // a well-formed other version is one the server does not support.
      return parser_.http_major == 1 && parser_.http_minor <= 1 ? 400 : 505;
    case HPE_INVALID_TRANSFER_ENCODING:
      // llhttp's: chunked that is not the final coding (RFC 9112 6.3).
      return 400;
    default:
      return 400;
  }
}

// ---- parsing and the buffer ----------------------------------------------------

// remember_tail() keeps the last bytes llhttp has parsed, which this execute
// call ran from `start` to parsed_: the buffer may drop them.
void RequestParser::remember_tail(size_t start) {
  for (size_t i = std::max(start, parsed_ - std::min(parsed_, sizeof tail_)); i < parsed_; ++i) {
    std::memmove(tail_, tail_ + 1, sizeof tail_ - 1);
    tail_[sizeof tail_ - 1] = buf_[i];
  }
}

// parsed_ends_with() says whether the bytes parsed so far (this execute call
// ran from `start` to parsed_) end with `suffix`, at most sizeof tail_ bytes.
bool RequestParser::parsed_ends_with(size_t start, std::string_view suffix) const {
  char last[sizeof tail_];
  std::memcpy(last, tail_, sizeof last);
  for (size_t i = std::max(start, parsed_ - std::min(parsed_, sizeof last)); i < parsed_; ++i) {
    std::memmove(last, last + 1, sizeof last - 1);
    last[sizeof last - 1] = buf_[i];
  }
  return std::string_view(last, sizeof last).ends_with(suffix);
}

RequestParser::Event RequestParser::parse() {
  while (parsed_ < end_) {
    size_t len = end_ - parsed_;
    if (in_message_ && !headers_done_) {
      // llhttp gets no byte of a head past the limit, so the limit trips at
      // the same byte whatever the reads were, and the head never needs more
      // than max_header_bytes of buffer.
      size_t limit = head_start_ + opt_.max_header_bytes;
      if (parsed_ >= limit) {
        error_status_ = url_done_ ? 431 : 414;
        return Event::kError;
      }
      len = std::min(len, limit - parsed_);
    }
    size_t start = parsed_;
    llhttp_errno_t err = llhttp_execute(&parser_, buf_.get() + parsed_, len);
    if (err == HPE_OK) {
      parsed_ += len;
      remember_tail(start);
      continue;
    }
    if (err == HPE_PAUSED) {
      parsed_ = static_cast<size_t>(llhttp_get_error_pos(&parser_) - buf_.get());
      llhttp_resume(&parser_);
      Pause why = std::exchange(pause_, Pause::kNone);
      // llhttp ends a chunked message at a bare LF too ("0\r\n\n"), and
      // takes a chunk extension list ending in ';' ("3;a=b;"), which has no
      // callback of its own.
      if ((why == Pause::kMessageComplete && transfer_encodings_ > 0 &&
           !parsed_ends_with(start, "\r\n")) ||
          (why == Pause::kChunkHeader && parsed_ends_with(start, ";\r\n"))) {
        error_status_ = 400;
        return Event::kError;
      }
      remember_tail(start);
      if (why == Pause::kChunkHeader) continue;
      if (why == Pause::kMessageBegin) {
        // What came before the method were empty lines between requests.
        head_start_ = begin_ = head_end_ = parsed_;
        continue;
      }
      return Event::kRequest;
    }
    error_status_ = status_for(err);
    return Event::kError;
  }
  if (!in_message_) {
    // Nothing of a request is buffered (llhttp skips CRLFs between requests).
    begin_ = parsed_ = end_ = 0;
  }
  return Event::kNeedMore;
}

Request RequestParser::request() {
  const char* base = buf_.get();
  headers_.clear();
  for (const HeaderSpan& h : spans_) headers_.push_back({h.name.view(base), h.value.view(base)});
  Request req;
  req.method_ = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  req.target_ = url_.view(base);
  req.major_ = parser_.http_major;
  req.minor_ = parser_.http_minor;
  req.headers_ = headers_;
  req.body_ = body_;
  return req;
}

void RequestParser::next_request() {
  in_message_ = false;
  begin_ = parsed_;
}

void RequestParser::release_body() {
  if (body_.capacity() > kKeepCapacity) {
    std::string().swap(body_);
  } else {
    body_.clear();
  }
}

void RequestParser::slide(size_t keep_end) {
  // Moves [begin_, keep_end) to the front; every span moves with it.
  size_t shift = begin_;
  if (shift == 0 && keep_end == end_) return;
  std::memmove(buf_.get(), buf_.get() + begin_, keep_end - begin_);
  url_.off -= std::min(url_.off, shift);
  for (HeaderSpan& h : spans_) {
    h.name.off -= std::min(h.name.off, shift);
    h.value.off -= std::min(h.value.off, shift);
  }
  head_start_ -= std::min(head_start_, shift);
  head_end_ -= std::min(head_end_, shift);
  // A trailer value that ended at the end of the buffer continues at its new
  // end; one that ended earlier cannot continue (see on_header_value).
  if (trailer_value_end_ != kNoValue) {
    trailer_value_end_ = trailer_value_end_ == end_ ? keep_end - shift : kNoValue - 1;
  }
  end_ = parsed_ = keep_end - shift;
  begin_ = 0;
}

bool RequestParser::make_room() {
  if (end_ < cap_) return true;
  // The buffer is full and everything in it is parsed. Keep the head of the
  // request in progress; body bytes past it are in body_ already.
  slide(headers_done_ ? head_end_ : end_);
  if (end_ < cap_ / 2 || (headers_done_ && end_ < cap_ && cap_ >= kBodyBuffer)) return true;
  // parse() keeps an incomplete head within max_header_bytes from begin_, so a
  // buffer of max_header_bytes + 1 always has room.
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

}  // namespace fiber::http
