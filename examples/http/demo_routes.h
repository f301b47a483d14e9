// The demo server's routes, shared by examples/http/main.cc and the tests:
//   GET  /          "Hello, World!"
//   POST /echo      the request body, back
//   GET  /chunked   a few lines as a chunked response
//   GET  /stats     fiber::stats() and the driver in use, as JSON
//   GET  /static/…  files under DemoOptions::static_dir
//   GET  /debug/fibers  fiber::dump(): every fiber with its state and stack
//
// Static files never escape the directory: the path is percent-decoded once,
// then NUL, backslash-free "..", and malformed escapes are rejected; the file is
// opened without following a final symlink, and its real path (through
// /proc/self/fd) must still lie under the directory's real path, which also
// stops symlinked directories on the way.
//
// Threading: the routes run on every core at once; they share only immutable
// state.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "fiber/http_router.h"

namespace fiber::http {

struct DemoOptions {
  // static_dir is the directory /static/ serves; empty: /static/ is 404.
  std::string static_dir;
};

// demo_router() builds the routes above. Throws std::invalid_argument when
// static_dir is set but is not a directory.
Router demo_router(const DemoOptions& options);

// static_relative_path() turns the part of a path after "/static/" into a
// relative file path: percent-decoded, "." and empty segments dropped. Returns
// nullopt for a malformed escape, a NUL byte or a ".." segment (encoded or not).
std::optional<std::string> static_relative_path(std::string_view encoded);

}  // namespace fiber::http
