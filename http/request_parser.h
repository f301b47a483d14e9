// RequestParser turns the bytes a connection reads into requests: llhttp in
// strict mode, the server's own framing rules against request smuggling, and
// the limits of ServerOptions. It owns the connection's read buffer and does no
// I/O, so the same code runs under a socket (server.cc) and under a fuzzer
// feeding it bytes (fuzz/http_request).
//
// Split invariance: the requests and the error a byte stream yields do not
// depend on how the stream is cut into reads. llhttp is incremental; the
// server's checks are made where llhttp reports a complete item (a URL, a
// field name, a value, the head), never on a partial span, and the head limit
// is enforced by giving llhttp no byte past it, so every limit trips at the
// same byte whatever the reads were.
//
// Buffer layout (offsets into buf_):
//   [0, begin_)        consumed: requests already answered
//   [begin_, parsed_)  the request in progress, given to llhttp
//   [parsed_, end_)    read, not parsed yet (only while a request is answered)
//   [end_, cap_)       free
// The head of the request in progress (request line and headers, the spans'
// targets) stays in [begin_, head_end_) until it is answered; body bytes past
// it are copied into body_ as they are parsed and may be dropped.
//
// Use:
//   for (;;) {
//     switch (p.parse()) {                    // until kNeedMore or kError
//       case kRequest: answer(p.request()); p.next_request(); continue; ...
//     }
//     if (p.make_room() != 0) ...;            // then read into p.space()
//     p.commit(read(p.space()));
//   }
//
// Threading: core-local, like the connection that owns it.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fiber/http.h"

namespace fiber::http {

class RequestParser {
 public:
  enum class Event {
    kNeedMore,  // every buffered byte is parsed; read more
    kRequest,   // a complete request is ready: request(), then next_request()
    kError,     // the stream is malformed or over a limit: answer error_status()
  };

  // The options are read, not copied: they must outlive the parser.
  explicit RequestParser(const ServerOptions& options);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // parse() parses the buffered bytes up to the end of the next complete
  // request, or all of them. After kError the parser is dead.
  Event parse();
  // request() is the request parse() just completed; its views point into the
  // parser and are valid until next_request().
  Request request();
  // next_request() drops the answered request and resumes parsing after it.
  void next_request();

  // make_room() ensures free space at the end of the buffer, sliding or
  // growing it. Returns false when the head of the request in progress fills a
  // buffer that may grow no more (the connection can only close).
  bool make_room();
  // space() is the free room after make_room(); commit() adds `n` bytes read
  // into its front.
  std::span<char> space() { return {buf_.get() + end_, cap_ - end_}; }
  void commit(size_t n) { end_ += n; }
  // scratch() is the whole buffer, for draining a connection that ends.
  std::span<char> scratch() { return {buf_.get(), cap_}; }

  bool in_message() const { return in_message_; }
  bool headers_done() const { return headers_done_; }
  bool buffer_empty() const { return end_ == 0; }
  bool expect_continue() const { return expect_continue_; }
  int error_status() const { return error_status_; }
  // keep_alive() applies HTTP/1.0's and Connection's rules to the request
  // just completed; an upgrade (or CONNECT) is not supported, so it ends the
  // connection.
  bool keep_alive() const {
    return llhttp_should_keep_alive(&parser_) != 0 && parser_.upgrade == 0;
  }
  bool head_request() const { return parser_.method == HTTP_HEAD; }
  bool http10() const { return parser_.http_minor == 0; }
  // release_body() frees the body buffer if it grew big.
  void release_body();

 private:
  struct Span {
    size_t off = 0;
    size_t len = 0;
    std::string_view view(const char* base) const { return {base + off, len}; }
    size_t end() const { return off + len; }
  };
  struct HeaderSpan {
    Span name, value;
  };
  // Why llhttp paused.
  enum class Pause { kNone, kMessageBegin, kChunkHeader, kMessageComplete };

  static RequestParser& self(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }
  int fail_with(int code, const char* reason);
  int extend(Span& s, const char* at, size_t len);
  void slide(size_t keep_end);

  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, size_t len);
  static int on_url_complete(llhttp_t* p);
  static int on_header_field(llhttp_t* p, const char* at, size_t len);
  static int on_header_field_complete(llhttp_t* p);
  static int on_header_value(llhttp_t* p, const char* at, size_t len);
  static int on_header_value_complete(llhttp_t* p);
  static int on_headers_complete(llhttp_t* p);
  static int on_chunk_header(llhttp_t* p);
  static int on_chunk_extension_piece(llhttp_t* p, const char* at, size_t len);
  static int on_chunk_extension_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t len);
  static int on_message_complete(llhttp_t* p);
  int status_for(llhttp_errno_t err) const;
  void remember_tail(size_t start);
  bool parsed_ends_with(size_t start, std::string_view suffix) const;
  static constexpr size_t kNoValue = static_cast<size_t>(-1);

  const ServerOptions& opt_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0, begin_ = 0, parsed_ = 0, end_ = 0;
  Pause pause_ = Pause::kNone;

  // The request in progress (reset by on_message_begin).
  bool in_message_ = false;
  size_t head_start_ = 0;  // offset of the method's first byte
  Span url_;
  bool url_done_ = false;
  std::vector<HeaderSpan> spans_;
  bool in_field_ = false;
  bool headers_done_ = false;
  size_t head_end_ = 0;
  int content_lengths_ = 0;
  int transfer_encodings_ = 0;
  int hosts_ = 0;
  bool expect_continue_ = false;
  int error_status_ = 0;
  std::string body_;
  std::string trailer_name_;             // the start of the trailer field being parsed
  bool trailer_named_ = false;           // the trailer field being parsed has a name
  size_t chunk_ext_len_ = 0;             // bytes of the chunk extension name or value so far
  size_t trailer_value_end_ = kNoValue;  // end of the trailer value's last piece
  char tail_[3] = {0, 0, 0};             // the last bytes parsed
  std::vector<Header> headers_;          // spans_ as views, built by request()
};

}  // namespace fiber::http
