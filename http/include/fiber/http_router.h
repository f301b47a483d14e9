// Router: a Handler that dispatches on method and path. Exact paths are a hash
// lookup; prefix routes ("/static/") are tried longest first. HEAD falls back
// to the GET handler (the server drops the body). No route: 404; a route
// without that method: 405 with an Allow header.
//
// Threading: build it before the server starts; routing is read-only and safe
// on every core at once.
//
// Example:
//   fiber::http::Router r;
//   r.handle("GET", "/", [](const auto&, auto& w) { w.write("Hello, World!"); });
//   fiber::http::Server server(r);
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "fiber/http.h"

namespace fiber::http {

class Router {
 public:
  // handle() routes requests for exactly `path` (percent-encoded, as sent) with
  // `method` to `handler`; a second handler for the same pair replaces it.
  void handle(std::string_view method, std::string_view path, Handler handler);
  // handle_prefix() routes requests whose path starts with `prefix`.
  void handle_prefix(std::string_view method, std::string_view prefix, Handler handler);

  // operator() routes one request.
  void operator()(const Request& req, ResponseWriter& w) const;

 private:
  // Route holds a path's handlers, by method (few: a vector beats a map).
  struct Route {
    std::vector<std::pair<std::string, Handler>> methods;
    void set(std::string_view method, Handler handler);
    const Handler* find(std::string_view method) const;
    std::string allow() const;
  };
  void dispatch(const Route& route, const Request& req, ResponseWriter& w) const;

  absl::flat_hash_map<std::string, Route> exact_;
  std::vector<std::pair<std::string, Route>> prefixes_;  // longest first
};

}  // namespace fiber::http
