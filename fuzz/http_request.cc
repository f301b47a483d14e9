// fuzz/http_request: the HTTP server's request parser (examples/http's
// RequestParser: llhttp in strict mode plus the server's framing rules and
// limits) on arbitrary bytes. See README.md.
//
// Input: the request bytes, then (taken from the end by FuzzedDataProvider) one
// byte choosing the limits and a seed for the read boundaries.
//
// Oracles:
//  1. No crash, no sanitizer report, no hang (libFuzzer's -timeout).
//  2. Split invariance: the bytes fed as one read, one byte per read and in
//     pieces cut by the seed give the same sequence of requests and the same
//     final error or state.
//  3. Every accepted request has unambiguous framing (at most one
//     Content-Length, never with Transfer-Encoding, Transfer-Encoding only as
//     a single "chunked", none in HTTP/1.0), a body that matches its
//     Content-Length, and fits the limits.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "http/request_parser.h"
#include "http/strings.h"

namespace {

using fiber::http::Request;
using fiber::http::RequestParser;
using fiber::http::ServerOptions;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "http_request oracle failed: %s\n%s\n", what, detail.c_str());
  std::abort();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// check_framing() is oracle 3 on one accepted request.
void check_framing(const Request& req, const ServerOptions& opt, const std::string& line) {
  int content_lengths = 0, transfer_encodings = 0;
  std::string_view cl, te;
  for (const auto& h : req.headers()) {
    if (fiber::http::detail::iequals(h.name, "content-length")) {
      ++content_lengths;
      cl = trim(h.value);
    } else if (fiber::http::detail::iequals(h.name, "transfer-encoding")) {
      ++transfer_encodings;
      te = trim(h.value);
    }
  }
  if (content_lengths > 1) fail("accepted two Content-Length", line);
  if (content_lengths && transfer_encodings) fail("accepted Content-Length with TE", line);
  if (transfer_encodings > 1) fail("accepted two Transfer-Encoding", line);
  if (transfer_encodings && !fiber::http::detail::iequals(te, "chunked")) {
    fail("accepted a transfer coding other than chunked", line);
  }
  if (transfer_encodings && req.version_minor() == 0) fail("accepted TE in HTTP/1.0", line);
  if (req.version_major() != 1) fail("accepted a version other than 1.x", line);
  if (content_lengths) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
    if (ec != std::errc() || end != cl.data() + cl.size())
      fail("accepted a bad Content-Length", line);
    if (n != req.body().size()) fail("body length differs from Content-Length", line);
  }
  if (!content_lengths && !transfer_encodings && !req.body().empty()) {
    fail("a body without framing", line);
  }
  if (req.body().size() > opt.max_body_bytes) fail("body over the limit", line);
  if (req.target().size() > opt.max_uri_bytes) fail("URI over the limit", line);
  if (req.headers().size() > opt.max_headers) fail("too many headers accepted", line);
}

// describe() is what the split-invariance oracle compares for one request.
std::string describe(const Request& req, const RequestParser& p) {
  std::string s = "REQ ";
  s.append(req.method()).append(" ").append(req.target());
  s += " " + std::to_string(req.version_major()) + "." + std::to_string(req.version_minor());
  for (const auto& h : req.headers()) {
    s.append(" [").append(h.name).append("]=[").append(h.value).append("]");
  }
  s += " body=" + std::to_string(req.body().size()) + ":";
  s.append(req.body());
  s += p.keep_alive() ? " keep" : " close";
  if (p.head_request()) s += " head";
  return s;
}

// feed() runs the parser the way Connection::run does, with reads that end at
// the given cuts (and never beyond the free room). Returns the log.
std::vector<std::string> feed(std::string_view input, const std::vector<size_t>& cuts,
                              const ServerOptions& opt) {
  std::vector<std::string> log;
  RequestParser p(opt);
  size_t pos = 0, next_cut = 0;
  for (;;) {
    for (;;) {
      RequestParser::Event ev = p.parse();
      if (ev == RequestParser::Event::kNeedMore) break;
      if (ev == RequestParser::Event::kError) {
        log.push_back("ERROR " + std::to_string(p.error_status()));
        return log;
      }
      Request req = p.request();
      log.push_back(describe(req, p));
      check_framing(req, opt, log.back());
      bool keep = p.keep_alive();
      p.next_request();
      if (!keep) return log;  // the connection ends after answering
    }
    if (pos == input.size()) break;
    if (!p.make_room()) {
      log.push_back("FULL");
      return log;
    }
    while (next_cut < cuts.size() && cuts[next_cut] <= pos) ++next_cut;
    size_t piece_end =
        std::min(next_cut < cuts.size() ? cuts[next_cut] : input.size(), input.size());
    std::span<char> room = p.space();
    size_t n = std::min(room.size(), piece_end - pos);
    std::memcpy(room.data(), input.data() + pos, n);
    p.commit(n);
    pos += n;
  }
  log.push_back(p.in_message() ? (p.headers_done() ? "EOF in body" : "EOF in head") : "EOF");
  return log;
}

std::string join(const std::vector<std::string>& log) {
  std::string s;
  for (const auto& l : log) s.append(l).append("\n");
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  // From the end of the input: the limits (small ones make the limit paths
  // reachable with short inputs) and the seed of the read boundaries.
  const uint8_t limits = fdp.ConsumeIntegral<uint8_t>();
  const uint32_t seed = fdp.ConsumeIntegral<uint32_t>();
  const std::string input = fdp.ConsumeRemainingBytesAsString();

  ServerOptions opt;  // the server's defaults unless `limits` picks small ones
  static constexpr size_t kHead[] = {16 * 1024, 40, 200, 5000};
  static constexpr size_t kUri[] = {8 * 1024, 4, 64, 300};
  static constexpr size_t kBody[] = {8 * 1024 * 1024, 0, 16, 5000};
  static constexpr size_t kHeaders[] = {100, 0, 1, 4};
  opt.max_header_bytes = kHead[limits & 3];
  opt.max_uri_bytes = kUri[(limits >> 2) & 3];
  opt.max_body_bytes = kBody[(limits >> 4) & 3];
  opt.max_headers = kHeaders[(limits >> 6) & 3];

  const std::vector<std::string> whole = feed(input, {}, opt);

  std::vector<size_t> cuts;
  std::minstd_rand rng(seed);
  // Piece sizes from 1 byte to a few KiB, small ones favoured.
  for (size_t at = 0; at < input.size();) {
    size_t bits = rng() % 13;
    at += 1 + rng() % (size_t{1} << bits);
    cuts.push_back(at);
  }
  const std::vector<std::string> pieces = feed(input, cuts, opt);
  if (pieces != whole) {
    fail("split invariance (random pieces)", "whole:\n" + join(whole) + "pieces:\n" + join(pieces));
  }
  if (input.size() <= 1024) {  // longer inputs: O(n) reads would dominate the run
    cuts.clear();
    for (size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
    const std::vector<std::string> bytes = feed(input, cuts, opt);
    if (bytes != whole) {
      fail("split invariance (one byte per read)",
           "whole:\n" + join(whole) + "bytes:\n" + join(bytes));
    }
  }
  return 0;
}
