#include "sched/testing/random_sched.h"

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"
#include "fiber/runtime.h"
#include "sched/internal/thread_mutex.h"

namespace fiber::detail {

thread_local constinit SchedRandom* t_sched_random = nullptr;

namespace {

std::atomic<uint64_t> g_yields{0};
ThreadMutex g_mu;
bool g_overridden ABSL_GUARDED_BY(g_mu) = false;
std::optional<uint64_t> g_seed ABSL_GUARDED_BY(g_mu);
std::optional<uint64_t> g_printed ABSL_GUARDED_BY(g_mu);

std::optional<uint64_t> seed_from_env() {
  const char* env = std::getenv("FIBER_SCHED_RANDOM");
  if (env == nullptr || *env == '\0') return std::nullopt;
  std::string_view v(env);
  uint64_t seed = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), seed);
  if (ec != std::errc() || end != v.data() + v.size()) {
    throw std::invalid_argument("fiber: FIBER_SCHED_RANDOM is '" + std::string(v) +
                                "'; expected a seed (a number)");
  }
  return seed;
}

}  // namespace

SchedRandom::SchedRandom(uint64_t seed, unsigned scheduler_index)
    : state_(seed * 0xD1B54A32D192ED03ull + scheduler_index + 1) {}

uint64_t SchedRandom::next() {  // splitmix64
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::optional<uint64_t> sched_random_seed() {
  {
    ThreadLock g(g_mu);
    if (g_overridden) return g_seed;
  }
  static const std::optional<uint64_t> from_env = seed_from_env();
  return from_env;
}

void set_sched_random_seed(std::optional<uint64_t> seed) {
  ThreadLock g(g_mu);
  g_overridden = true;
  g_seed = seed;
}

void reset_sched_random_seed() {
  ThreadLock g(g_mu);
  g_overridden = false;
  g_seed.reset();
}

uint64_t sched_random_yields() { return g_yields.load(std::memory_order_relaxed); }

SchedRandomScope::SchedRandomScope(unsigned scheduler_index) {
  std::optional<uint64_t> seed = sched_random_seed();
  if (!seed) return;
  {
    ThreadLock g(g_mu);
    if (g_printed != seed) {  // once per seed: the value to replay the run with
      std::fprintf(stderr, "fiber: FIBER_SCHED_RANDOM=%llu\n",
                   static_cast<unsigned long long>(*seed));
      g_printed = seed;
    }
  }
  random_.emplace(*seed, scheduler_index);
  t_sched_random = &*random_;
}

SchedRandomScope::~SchedRandomScope() {
  if (random_) t_sched_random = nullptr;
}

void sync_point_slow() {
  if (t_current_fiber == nullptr) return;
  if (t_sched_random->below(SchedRandom::kYieldOneIn) != 0) return;
  g_yields.fetch_add(1, std::memory_order_relaxed);
  fiber::yield();
}

}  // namespace fiber::detail
