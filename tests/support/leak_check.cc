// The per-test leak check: see leak_check.h. A gtest event listener, registered
// by a static initialiser when this object is linked (fiber_add_test does so).
#include "tests/support/leak_check.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "fiber/detail/sanitizer.h"
#include "fiber/internal/resource_counts.h"

namespace fiber::testing {
namespace {

int64_t count_entries(const char* dir) {
  int64_t n = 0;
  if (DIR* d = opendir(dir)) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
  }
  return n;
}

// count_fds() counts open descriptors, less those onto the process's own
// loaded objects: the stall reports' symbolizer (Abseil's) keeps the object
// files it has read open, a cache for the next report, not a leak.
}  // namespace

int64_t count_open_fds() {
  std::set<std::string> objects;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash != std::string::npos) objects.insert(line.substr(slash));
  }
  maps.close();
  int64_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char target[4096];
      std::string link = std::string("/proc/self/fd/") + e->d_name;
      ssize_t len = readlink(link.c_str(), target, sizeof target - 1);
      if (len > 0 && objects.count(std::string(target, static_cast<size_t>(len))) > 0) continue;
      ++n;
    }
    closedir(d);
  }
  return n - 1;  // less the one opendir() holds
}

namespace {

ResourceSnapshot g_baseline;

class LeakListener final : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override { g_baseline = take_resource_snapshot(); }

  // Listeners hear OnTestEnd in reverse order, so this runs before the printer
  // reports the test, and a failure added here fails it.
  void OnTestEnd(const ::testing::TestInfo&) override {
    std::string leaks = settled_snapshot(g_baseline).leaks_since(g_baseline);
    if (!leaks.empty()) ADD_FAILURE() << "leak check: " << leaks;
  }
};

[[maybe_unused]] const bool g_registered = [] {
#if FIBER_TSAN
  // TSan starts its background thread with the process's first pthread_create;
  // one thread made and joined here puts it in every baseline.
  std::thread([] {}).join();
#endif
  ::testing::UnitTest::GetInstance()->listeners().Append(new LeakListener);
  return true;
}();

}  // namespace

std::string ResourceSnapshot::leaks_since(const ResourceSnapshot& before) const {
  std::string out;
  auto check = [&](const char* name, int64_t was, int64_t now) {
    if (was == now) return;
    if (!out.empty()) out += ", ";
    out += std::string(name) + " " + std::to_string(was) + " -> " + std::to_string(now);
  };
  check("fiber stacks mapped", before.stacks_mapped, stacks_mapped);
  check("socket/file handles", before.io_handles, io_handles);
  check("timer nodes", before.timer_nodes, timer_nodes);
  check("fibers abandoned at stop", before.fibers_abandoned, fibers_abandoned);
  check("I/O ops abandoned at stop", before.io_ops_abandoned, io_ops_abandoned);
  check("timers abandoned at stop", before.timers_abandoned, timers_abandoned);
  check("threads", before.threads, threads);
  check("open fds", before.fds, fds);
  return out;
}

ResourceSnapshot take_resource_snapshot() {
  const detail::ResourceCounts& c = detail::resource_counts();
  ResourceSnapshot s;
  s.stacks_mapped = c.stacks_mapped.load(std::memory_order_relaxed);
  s.io_handles = c.io_handles.load(std::memory_order_relaxed);
  s.timer_nodes = c.timer_nodes.load(std::memory_order_relaxed);
  s.fibers_abandoned = c.fibers_abandoned.load(std::memory_order_relaxed);
  s.io_ops_abandoned = c.io_ops_abandoned.load(std::memory_order_relaxed);
  s.timers_abandoned = c.timers_abandoned.load(std::memory_order_relaxed);
  s.threads = count_entries("/proc/self/task");
  s.fds = count_open_fds();
  return s;
}

ResourceSnapshot settled_snapshot(const ResourceSnapshot& before) {
  ResourceSnapshot now = take_resource_snapshot();
  // Waits only for the kernel to finish tearing down exited threads; the
  // verdict does not depend on how long that takes within the bound.
  for (int i = 0; i < 100 && !now.leaks_since(before).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    now = take_resource_snapshot();
  }
  return now;
}

void accept_current_resources() { g_baseline = take_resource_snapshot(); }

}  // namespace fiber::testing
