#include "demo_routes.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fiber/blocking.h"
#include "fiber/debug.h"
#include "fiber/file.h"
#include "fiber/runtime.h"

namespace fiber::http {
namespace {

using StaticFile = fiber::File;

constexpr std::string_view kStaticPrefix = "/static/";
constexpr size_t kWholeFile = 256 * 1024;  // files up to this are sent with one write
constexpr size_t kFileChunk = 64 * 1024;

void text(ResponseWriter& w, int status, std::string_view body) {
  w.set_status(status);
  w.set_header("Content-Type", "text/plain; charset=utf-8");
  w.write(body);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view content_type(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".svg", "image/svg+xml"},
      {".ico", "image/x-icon"},
      {".wasm", "application/wasm"},
      {".pdf", "application/pdf"},
  };
  for (const auto& [ext, type] : kTypes) {
    if (absl::EndsWithIgnoreCase(absl::string_view(path.data(), path.size()),
                                 absl::string_view(ext.data(), ext.size())))
      return type;
  }
  return "application/octet-stream";
}

void json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out.append(esc);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void stats(const Request&, ResponseWriter& w) {
  std::string out;
  const DriverInfo& d = driver_info();
  out.append("{\"driver\":");
  json_string(out, to_string(d.kind));
  out.append(",\"driver_reason\":");
  json_string(out, d.reason);
  out.append(",\"schedulers\":[");
  bool first = true;
  for (const SchedulerStats& s : fiber::stats()) {
    absl::StrAppend(&out, first ? "" : ",", "{\"index\":", s.index,
                    ",\"fibers_alive\":", s.fibers_alive, ",\"fibers_spawned\":", s.fibers_spawned,
                    ",\"io_ops\":", s.io_ops, ",\"context_switches\":", s.context_switches,
                    ",\"stalls\":", s.stalls, ",\"longest_stall_ns\":", s.longest_stall_ns,
                    ",\"slice_yields\":", s.slice_yields, "}");
    first = false;
  }
  out.append("]}\n");
  w.set_header("Content-Type", "application/json");
  w.set_header("Cache-Control", "no-store");
  w.write(out);
}

// StaticFiles serves one directory; `root` is its real path (no symlinks).
class StaticFiles {
 public:
  explicit StaticFiles(std::string root) : root_(std::move(root)) {}

  void operator()(const Request& req, ResponseWriter& w) const {
    std::string_view path = req.path();
    auto rel = static_relative_path(path.substr(std::min(path.size(), kStaticPrefix.size())));
    if (!rel) {
      text(w, 400, "Bad Request: bad path\n");
      return;
    }
    if (rel->empty() || path.back() == '/')
      absl::StrAppend(&*rel, rel->empty() ? "" : "/", "index.html");
    std::string full = absl::StrCat(root_, "/", *rel);
    // O_NOFOLLOW: a final symlink fails (ELOOP); O_NONBLOCK: a FIFO planted in
    // the directory cannot hold the open forever.
    auto f = StaticFile::open(full, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!f) {
      int e = f.error().value();
      text(w, e == EACCES ? 403 : 404, e == EACCES ? "Forbidden\n" : "Not Found\n");
      return;
    }
    struct stat st;
    if (::fstat(f->fd(), &st) != 0 || !S_ISREG(st.st_mode) || !beneath_root(f->fd())) {
      text(w, 404, "Not Found\n");
      return;
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    w.set_header("Content-Type", content_type(*rel));
    if (req.method() == "HEAD") {
      w.set_content_length(size);
      (void)w.flush();
      return;
    }
    if (size <= kWholeFile) {
      std::string body(size, '\0');
      size_t got = 0;
      while (got < size) {
        auto n = f->read_at({body.data() + got, size - got}, got);
        if (!n) {
          text(w, 500, "Internal Server Error: read failed\n");
          return;
        }
        if (*n == 0) break;  // the file shrank under us: send what is there
        got += *n;
      }
      body.resize(got);
      w.write(body);
      return;
    }
    // A big file streams with its length announced; if reading fails midway
    // the server closes the connection (fewer bytes than announced).
    w.set_content_length(size);
    if (!w.flush()) return;
    auto chunk = std::make_unique<char[]>(kFileChunk);
    uint64_t off = 0;
    while (off < size) {
      auto n = f->read_at(
          {chunk.get(), static_cast<size_t>(std::min<uint64_t>(kFileChunk, size - off))}, off);
      if (!n || *n == 0) return;
      w.write({chunk.get(), *n});
      off += *n;
    }
  }

 private:
  // beneath_root() checks where the open file really is: a directory symlink
  // on the way could have led outside the root.
  bool beneath_root(int fd) const {
    char link[64];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    char real[PATH_MAX];
    ssize_t n = ::readlink(link, real, sizeof real - 1);
    if (n <= 0) return false;
    std::string_view r(real, static_cast<size_t>(n));
    if (root_ == "/") return true;
    return r.size() > root_.size() && r.starts_with(root_) && r[root_.size()] == '/';
  }

  std::string root_;
};

}  // namespace

std::optional<std::string> static_relative_path(std::string_view encoded) {
  std::string decoded;
  decoded.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (c == '%') {
      if (i + 2 >= encoded.size()) return std::nullopt;
      int hi = hex_value(encoded[i + 1]), lo = hex_value(encoded[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    decoded.push_back(c);
  }
  std::string out;
  std::string_view rest = decoded;
  while (!rest.empty()) {
    size_t slash = std::min(rest.find('/'), rest.size());
    std::string_view seg = rest.substr(0, slash);
    rest.remove_prefix(std::min(slash + 1, rest.size()));
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") return std::nullopt;
    if (!out.empty()) out.push_back('/');
    out.append(seg);
  }
  return out;
}

Router demo_router(const DemoOptions& options) {
  Router r;
  // fiber::dump(): every fiber, its state and stack (like Go's /debug/pprof/goroutine).
  r.handle("GET", "/debug/fibers", [](const Request&, ResponseWriter& w) {
    std::ostringstream out;
    fiber::dump(out);
    w.set_header("Content-Type", "text/plain; charset=utf-8");
    w.set_header("Cache-Control", "no-store");
    w.write(out.str());
  });
  r.handle("GET", "/", [](const Request&, ResponseWriter& w) {
    w.set_header("Content-Type", "text/plain; charset=utf-8");
    w.write("Hello, World!");
  });
  r.handle("POST", "/echo", [](const Request& req, ResponseWriter& w) {
    auto type = req.header("Content-Type");
    w.set_header("Content-Type", type ? *type : "application/octet-stream");
    w.write(req.body());
  });
  r.handle("GET", "/chunked", [](const Request&, ResponseWriter& w) {
    w.set_header("Content-Type", "text/plain; charset=utf-8");
    for (int i = 1; i <= 3; ++i) {
      w.write(absl::StrCat("chunk ", i, "\n"));
      if (!w.flush()) return;
    }
  });
  r.handle("GET", "/stats", stats);
  if (!options.static_dir.empty()) {
    char real[PATH_MAX];
    struct stat st;
    if (::realpath(options.static_dir.c_str(), real) == nullptr || ::stat(real, &st) != 0 ||
        !S_ISDIR(st.st_mode)) {
      throw std::invalid_argument(absl::StrCat(
          "static directory '", std::string(options.static_dir), "' is not a directory"));
    }
    r.handle_prefix("GET", kStaticPrefix, StaticFiles(real));
  }
  return r;
}

}  // namespace fiber::http
