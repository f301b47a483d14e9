#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fiber/http_router.h"
#include "strings.h"

namespace fiber::http {

void Router::Route::set(std::string_view method, Handler handler) {
  for (auto& [m, h] : methods) {
    if (m == method) {
      h = std::move(handler);
      return;
    }
  }
  methods.emplace_back(std::string(method), std::move(handler));
}

const Handler* Router::Route::find(std::string_view method) const {
  for (const auto& [m, h] : methods) {
    if (m == method) return &h;
  }
  return nullptr;
}

std::string Router::Route::allow() const {
  std::string out;
  bool get = false, head = false;
  for (const auto& [m, h] : methods) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", m);
    get = get || m == "GET";
    head = head || m == "HEAD";
  }
  if (get && !head) absl::StrAppend(&out, ", HEAD");
  return out;
}

void Router::handle(std::string_view method, std::string_view path, Handler handler) {
  exact_[detail::av(path)].set(method, std::move(handler));
}

void Router::handle_prefix(std::string_view method, std::string_view prefix, Handler handler) {
  for (auto& [p, route] : prefixes_) {
    if (p == prefix) {
      route.set(method, std::move(handler));
      return;
    }
  }
  prefixes_.emplace_back(std::string(prefix), Route{});
  prefixes_.back().second.set(method, std::move(handler));
  std::stable_sort(prefixes_.begin(), prefixes_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void Router::dispatch(const Route& route, const Request& req, ResponseWriter& w) const {
  const Handler* h = route.find(req.method());
  if (h == nullptr && req.method() == "HEAD") h = route.find("GET");
  if (h != nullptr) {
    (*h)(req, w);
    return;
  }
  w.set_status(405);
  w.set_header("Allow", route.allow());
  w.set_header("Content-Type", "text/plain; charset=utf-8");
  w.write("Method Not Allowed\n");
}

void Router::operator()(const Request& req, ResponseWriter& w) const {
  std::string_view path = req.path();
  if (auto it = exact_.find(detail::av(path)); it != exact_.end()) {
    dispatch(it->second, req, w);
    return;
  }
  for (const auto& [prefix, route] : prefixes_) {
    if (path.starts_with(prefix)) {
      dispatch(route, req, w);
      return;
    }
  }
  w.set_status(404);
  w.set_header("Content-Type", "text/plain; charset=utf-8");
  w.write("Not Found\n");
}

}  // namespace fiber::http
