// echo: a TCP echo server. One listener per core on the same port
// (SO_REUSEPORT), a fiber per connection. Serves until SIGINT or SIGTERM, then
// stops accepting, gives open connections --grace to finish, cancels the rest
// and exits 0.
//
//   echo --addr=127.0.0.1:9000 --cores=2 --driver=auto --grace=5s
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/time.h"
#include "cli/usage.h"
#include "fiber/fiber.h"
#include "fiber/net.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:9000", "address to listen on (host:port)");
ABSL_FLAG(int, cores, 0, "schedulers (cores) to run; 0: every CPU the process may use");
ABSL_FLAG(std::string, driver, "auto", "io_uring, epoll or auto");
ABSL_FLAG(absl::Duration, grace, absl::Seconds(5), "how long open connections may finish");

namespace {

void set_usage() {
  fiber::cli::set_usage(
      "a TCP echo server: one listener per core, a fiber per connection, until SIGINT or SIGTERM.\n"
      "\n"
      "  echo --addr=127.0.0.1:9000 --cores=2 --driver=auto --grace=5s",
      __FILE__);
}

// Core is one core's share of the server; only that core touches it.
struct Core {
  fiber::TcpListener listener;
  std::set<fiber::TcpStream*> connections;
};

// Live connections of the whole server, for the shutdown grace period.
struct Live {
  fiber::Mutex mu;
  fiber::CondVar cv;
  int count = 0;
};

void serve_connection(fiber::TcpStream conn, Core& core, Live& live) {
  core.connections.insert(&conn);
  char buf[4096];
  for (;;) {
    auto n = conn.read(buf);
    if (!n || *n == 0) break;  // error value or end of stream
    if (!conn.write_all({buf, *n})) break;
  }
  core.connections.erase(&conn);
  conn.close();
  std::lock_guard<fiber::Mutex> g(live.mu);
  if (--live.count == 0) live.cv.notify_all();
}

void accept_loop(Core& core, Live& live) {
  for (;;) {
    auto conn = core.listener.accept();
    if (!conn) {
      if (conn.error() == std::errc::operation_canceled) return;  // shutting down
      if (conn.error() == std::errc::too_many_files_open ||
          conn.error() == std::errc::too_many_files_open_in_system) {
        fiber::sleep_for(std::chrono::milliseconds(10));  // back off, keep serving
      }
      continue;
    }
    {
      std::lock_guard<fiber::Mutex> g(live.mu);
      ++live.count;
    }
    fiber::go([c = std::move(*conn), &core, &live]() mutable {
      serve_connection(std::move(c), core, live);
    });
  }
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
    std::fprintf(stderr, "echo: bad --driver '%s' (want io_uring, epoll or auto)\n",
                 driver.c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_cores) < 0) {
    std::fprintf(stderr, "echo: --cores must be >= 0\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_cores) > 0) options.schedulers = absl::GetFlag(FLAGS_cores);
  auto addr = fiber::Address::parse(absl::GetFlag(FLAGS_addr));
  if (!addr) {
    std::fprintf(stderr, "echo: bad --addr '%s' (want host:port, e.g. 127.0.0.1:9000)\n",
                 absl::GetFlag(FLAGS_addr).c_str());
    return 2;
  }
  // Signals are taken by sigwait() on a blocking-pool thread; every thread the
  // runtime starts inherits this mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  // A shell without job control starts background jobs with SIGINT ignored, and
  // an ignored signal is discarded even while blocked: sigwait() would never see
  // it. Restore the default first.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    return fiber::run(
        [&] {
          const unsigned n = fiber::scheduler_count();
          std::vector<Core> cores(n);
          Live live;
          // A plain bind first: fails if another process has the port (listeners
          // sharing it through SO_REUSEPORT would not), and fixes port 0.
          fiber::Address at;
          {
            auto probe = fiber::TcpListener::bind(*addr);
            if (!probe) {
              std::fprintf(stderr, "echo: cannot listen on %s: %s\n", addr->to_string().c_str(),
                           probe.error().message().c_str());
              return 1;
            }
            at = *probe->local_address();
          }
          fiber::ListenOptions shared;
          shared.reuse_port = true;
          for (unsigned i = 0; i < n; ++i) {
            auto bound = fiber::spawn_on(i, [&, i] {
                           auto ln = fiber::TcpListener::bind(at, shared);
                           if (!ln) return ln.error();
                           cores[i].listener = std::move(*ln);
                           return std::error_code();
                         }).join();
            if (bound) {
              std::fprintf(stderr, "echo: cannot listen on %s: %s\n", at.to_string().c_str(),
                           bound.message().c_str());
              return 1;
            }
          }
          fiber::WaitGroup accepting;
          for (unsigned i = 0; i < n; ++i) {
            accepting.add(1);
            fiber::go_on(i, [&, i] {
              accept_loop(cores[i], live);
              accepting.done();
            });
          }
          std::printf("echo: listening on %s with %u cores (%s)\n", at.to_string().c_str(), n,
                      fiber::driver_info().reason.c_str());
          std::fflush(stdout);

          int sig = fiber::spawn_blocking([&] {
            int s = 0;
            sigwait(&stop_signals, &s);
            return s;
          });
          std::printf("echo: %s: no longer accepting\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
          for (unsigned i = 0; i < n; ++i) {
            fiber::spawn_on(i, [&, i] { cores[i].listener.cancel(); }).join();
          }
          accepting.wait();
          for (unsigned i = 0; i < n; ++i) {
            fiber::spawn_on(i, [&, i] { cores[i].listener.close(); }).join();
          }
          std::unique_lock<fiber::Mutex> lk(live.mu);
          auto grace = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_grace));
          if (!live.cv.wait_for(lk, grace, [&] { return live.count == 0; })) {
            std::printf("echo: closing %d connections after the grace period\n", live.count);
            lk.unlock();
            for (unsigned i = 0; i < n; ++i) {
              fiber::spawn_on(i, [&, i] {
                for (fiber::TcpStream* c : cores[i].connections) c->cancel();
              }).join();
            }
            lk.lock();
            live.cv.wait(lk, [&] { return live.count == 0; });
          }
          std::printf("echo: stopped\n");
          return 0;
        },
        options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo: %s\n", e.what());
    return 1;
  }
}
