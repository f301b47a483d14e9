#include "date.h"

#include <time.h>

#include <cstring>
#include <string>

#include "absl/time/time.h"

namespace fiber::http::detail {

std::string_view http_date() {
  // Per thread, so that cores never share (or lock) the cache: fibers never
  // change thread, and a view handed out is used before the fiber parks again.
  thread_local char cached[64];
  thread_local size_t cached_len = 0;
  thread_local time_t cached_second = -1;
  timespec now;
  // The coarse clock is a vDSO read of the last tick: a date at most one tick
  // late, at a fraction of the cost of the precise clock.
  clock_gettime(CLOCK_REALTIME_COARSE, &now);
  if (now.tv_sec != cached_second) {
    // absl::RFC1123_full ends in a numeric zone ("+0000"); HTTP wants "GMT".
    std::string s = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::FromTimeT(now.tv_sec),
                                     absl::UTCTimeZone());
    cached_len = std::min(s.size(), sizeof cached);
    std::memcpy(cached, s.data(), cached_len);
    cached_second = now.tv_sec;
  }
  return {cached, cached_len};
}

std::string_view status_reason(int code) {
  switch (code) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace fiber::http::detail
