// http_date() and status_reason(): small pieces of the response head.
#pragma once

#include <string_view>

namespace fiber::http::detail {

// http_date() is the current time as an HTTP date ("Sun, 06 Nov 1994 08:49:37
// GMT"), formatted at most once a second per thread. The view is valid until
// the calling thread's next call.
std::string_view http_date();

// status_reason() is the reason phrase of `code` ("Not Found"); "Unknown" for
// codes it does not know.
std::string_view status_reason(int code);

}  // namespace fiber::http::detail
