// http_server: the HTTP/1.1 demo. One SO_REUSEPORT listener per core, a fiber
// per connection. Serves until SIGINT or SIGTERM, then stops accepting, closes
// idle connections, lets requests in progress finish for --grace and exits 0.
//
//   http_server --addr=127.0.0.1:8080 --cores=0 --driver=auto --static_dir=./www
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/time.h"
#include "cli/usage.h"
#include "demo_routes.h"
#include "fiber/fiber.h"
#include "fiber/http.h"
#include "fiber/net.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:8080", "address to listen on (host:port)");
ABSL_FLAG(int, cores, 0, "schedulers (cores) to run; 0: every CPU the process may use");
ABSL_FLAG(std::string, driver, "auto", "io_uring, epoll or auto");
ABSL_FLAG(absl::Duration, grace, absl::Seconds(5),
          "on SIGINT/SIGTERM, how long requests in progress may finish");
ABSL_FLAG(std::string, static_dir, "", "directory served under /static/ (empty: none)");
ABSL_FLAG(int64_t, max_header_bytes, 16 * 1024, "request line + headers limit (431)");
ABSL_FLAG(int64_t, max_uri_bytes, 8 * 1024, "request target limit (414)");
ABSL_FLAG(int64_t, max_body_bytes, 8 * 1024 * 1024, "request body limit (413)");
ABSL_FLAG(absl::Duration, header_timeout, absl::Seconds(10),
          "time for a request's headers to arrive; then the connection closes");
ABSL_FLAG(absl::Duration, body_timeout, absl::Seconds(30), "time for a request's body to arrive");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "an idle keep-alive connection closes after this");
ABSL_FLAG(absl::Duration, write_timeout, absl::Seconds(30), "time for each write to a client");
ABSL_FLAG(int64_t, max_connections, 10000, "connections beyond this are accepted and closed");
ABSL_FLAG(absl::Duration, idle_spin, absl::FromChrono(fiber::Options{}.idle_spin),
          "how long an idle scheduler polls before it sleeps (fiber::Options::idle_spin); 0: "
          "it sleeps at once");

namespace {

void set_usage() {
  fiber::cli::set_usage(
      "the HTTP/1.1 demo server: one listener per core, a fiber per connection, until SIGINT or "
      "SIGTERM.\n"
      "\n"
      "  http_server --addr=127.0.0.1:8080 --cores=0 --driver=auto --static_dir=./www",
      __FILE__);
}

int usage(const char* what) {
  std::fprintf(stderr, "http_server: %s\n", what);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  set_usage();
  absl::ParseCommandLine(argc, argv);
  fiber::Options options;
  const std::string driver = absl::GetFlag(FLAGS_driver);
  if (auto kind = fiber::parse_driver(driver)) {
    options.driver = *kind;
  } else {
    std::fprintf(stderr, "http_server: bad --driver '%s' (want io_uring, epoll or auto)\n",
                 driver.c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_cores) < 0) return usage("--cores must be >= 0");
  if (absl::GetFlag(FLAGS_cores) > 0) options.schedulers = absl::GetFlag(FLAGS_cores);
  if (absl::GetFlag(FLAGS_idle_spin) < absl::ZeroDuration()) return usage("negative --idle_spin");
  options.idle_spin = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_idle_spin));
  auto addr = fiber::Address::parse(absl::GetFlag(FLAGS_addr));
  if (!addr) return usage("bad --addr (want host:port, e.g. 127.0.0.1:8080)");

  fiber::http::ServerOptions so;
  if (absl::GetFlag(FLAGS_max_header_bytes) < 64 || absl::GetFlag(FLAGS_max_uri_bytes) < 1 ||
      absl::GetFlag(FLAGS_max_body_bytes) < 0 || absl::GetFlag(FLAGS_max_connections) < 1) {
    return usage("limits must be positive (--max_header_bytes at least 64)");
  }
  so.max_header_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_header_bytes));
  so.max_uri_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_uri_bytes));
  so.max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  so.max_connections = absl::GetFlag(FLAGS_max_connections);
  for (absl::Duration d : {absl::GetFlag(FLAGS_header_timeout), absl::GetFlag(FLAGS_body_timeout),
                           absl::GetFlag(FLAGS_idle_timeout), absl::GetFlag(FLAGS_write_timeout),
                           absl::GetFlag(FLAGS_grace)}) {
    if (d <= absl::ZeroDuration() && d != absl::ZeroDuration()) return usage("negative duration");
  }
  so.header_timeout = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_header_timeout));
  so.body_timeout = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_body_timeout));
  so.idle_timeout = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_idle_timeout));
  so.write_timeout = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_write_timeout));

  fiber::http::DemoOptions demo;
  demo.static_dir = absl::GetFlag(FLAGS_static_dir);

  // Signals are taken by sigwait() on a blocking-pool thread; every thread the
  // runtime starts inherits this mask. The default disposition first: a shell
  // starts background jobs with SIGINT ignored, and an ignored signal is
  // discarded before sigwait() could take it.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    return fiber::run(
        [&] {
          fiber::http::Server server(fiber::http::demo_router(demo), so);
          auto at = server.listen(*addr);
          if (!at) {
            std::fprintf(stderr, "http_server: cannot listen on %s: %s\n",
                         addr->to_string().c_str(), at.error().message().c_str());
            return 1;
          }
          server.start();
          std::printf("http_server: serving http://%s/ on %u cores (%s)\n", at->to_string().c_str(),
                      fiber::scheduler_count(), fiber::driver_info().reason.c_str());
          std::fflush(stdout);

          int sig = fiber::spawn_blocking([&] {
            int s = 0;
            sigwait(&stop_signals, &s);
            return s;
          });
          std::printf("http_server: %s: shutting down (%lld connections open)\n",
                      sig == SIGINT ? "SIGINT" : "SIGTERM",
                      static_cast<long long>(server.connections()));
          std::fflush(stdout);
          server.shutdown(absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_grace)));
          std::printf("http_server: stopped\n");
          return 0;
        },
        options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_server: %s\n", e.what());
    return 1;
  }
}
