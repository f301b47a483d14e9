// echo_load: load for an echo server. Opens C connections, each sending S-byte
// messages and waiting for each echo, for T seconds; prints messages/s and
// latency percentiles. Runs on this runtime with one scheduler pinned to --cpu,
// a fiber per connection, so the client costs little per message.
//
//   echo_load --addr=127.0.0.1:9000 --connections=100 --size=64 --duration=10s --cpu=1
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/time.h"
#include "cli/usage.h"
#include "fiber/fiber.h"
#include "fiber/net.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:9000", "echo server address (host:port)");
ABSL_FLAG(int, connections, 100, "concurrent connections");
ABSL_FLAG(int, size, 64, "bytes per message");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long to send");
ABSL_FLAG(int, cpu, -1, "CPU to pin the client to (-1: any)");
ABSL_FLAG(std::string, driver, "auto", "io_uring, epoll or auto");

namespace {

void set_usage() {
  fiber::cli::set_usage(
      "load for an echo server: prints messages/s and latency percentiles.\n"
      "\n"
      "  echo_load --addr=127.0.0.1:9000 --connections=100 --size=64 --duration=10s --cpu=1",
      __FILE__);
}

// Histogram of latencies in 100 ns steps up to 100 ms; single-threaded.
class Histogram {
 public:
  static constexpr int64_t kStepNs = 100;
  Histogram() : counts_(1000000 + 1) {}
  void add(int64_t ns) {
    size_t i = static_cast<size_t>(std::clamp<int64_t>(ns / kStepNs, 0, 1000000));
    ++counts_[i];
    ++total_;
  }
  uint64_t total() const { return total_; }
  double percentile_us(double p) const {
    uint64_t rank = static_cast<uint64_t>(p * static_cast<double>(total_));
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > rank) return static_cast<double>(i * kStepNs) / 1000.0;
    }
    return static_cast<double>(counts_.size() * kStepNs) / 1000.0;
  }

 private:
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  set_usage();
  absl::ParseCommandLine(argc, argv);
  const int connections = absl::GetFlag(FLAGS_connections);
  const int size = absl::GetFlag(FLAGS_size);
  if (connections <= 0 || size <= 0) {
    std::fprintf(stderr, "echo_load: --connections and --size must be positive\n");
    return 2;
  }
  auto addr = fiber::Address::parse(absl::GetFlag(FLAGS_addr));
  if (!addr) {
    std::fprintf(stderr, "echo_load: bad --addr\n");
    return 2;
  }
  if (int cpu = absl::GetFlag(FLAGS_cpu); cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::perror("echo_load: sched_setaffinity");
      return 2;
    }
  }
  fiber::Options options;
  options.schedulers = 1;
  const std::string driver = absl::GetFlag(FLAGS_driver);
  if (auto kind = fiber::parse_driver(driver)) {
    options.driver = *kind;
  } else {
    std::fprintf(stderr, "echo_load: bad --driver '%s' (want io_uring, epoll or auto)\n",
                 driver.c_str());
    return 2;
  }
  const auto duration = absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_duration));

  return fiber::run(
      [&] {
        Histogram latency;
        int errors = 0;
        bool stop = false;
        fiber::WaitGroup done;
        auto start = std::chrono::steady_clock::now();
        for (int c = 0; c < connections; ++c) {
          done.add(1);
          fiber::go([&, c] {
            auto conn = fiber::TcpStream::connect(*addr, std::chrono::seconds(5));
            if (!conn) {
              ++errors;
              done.done();
              return;
            }
            (void)conn->set_nodelay(true);
            std::string out(static_cast<size_t>(size), 'x');
            std::string in(static_cast<size_t>(size), '\0');
            // Each message differs (connection and message numbers up front), and
            // the echo must match it byte for byte.
            for (uint64_t seq = 0; !stop; ++seq) {
              std::snprintf(out.data(), out.size(), "%d:%llu:", c,
                            static_cast<unsigned long long>(seq));
              auto t0 = std::chrono::steady_clock::now();
              if (!conn->write_all(out) || !conn->read_exact(in) || in != out) {
                ++errors;
                break;
              }
              latency.add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now() - t0)
                              .count());
            }
            done.done();
          });
        }
        fiber::sleep_for(duration);
        stop = true;
        done.wait();
        double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf(
            "connections=%d size=%d seconds=%.2f messages=%llu msgs_per_s=%.0f p50_us=%.1f "
            "p99_us=%.1f p999_us=%.1f errors=%d\n",
            connections, size, secs, static_cast<unsigned long long>(latency.total()),
            static_cast<double>(latency.total()) / secs, latency.percentile_us(0.50),
            latency.percentile_us(0.99), latency.percentile_us(0.999), errors);
        return errors == 0 ? 0 : 1;
      },
      options);
}
