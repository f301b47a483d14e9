// FaultPoller: see fault_poller.h for what it injects. How each fault stays
// something the kernel could really do:
// - errors (EAGAIN, EINTR, ENOBUFS, ECONNRESET) come instead of the operation,
//   never after it: an operation that reached the kernel keeps its result, so
//   no byte is lost or invented;
// - a short transfer is a smaller request, so the kernel really moves fewer bytes;
// - a delay holds a fiber whose operation is complete, and the poll() of a later
//   loop turn releases it (every turn while one is held: has_pending() is true);
// - a spurious wake-up is a doorbell rung for nothing, or (epoll) a readiness
//   waiter woken to look again; io_uring never wakes an op before its completion.
#include "driver/testing/fault_poller.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"
#include "io_poller.h"
#include "op_table.h"
#include "sched/internal/scheduler.h"

namespace fiber::detail {
namespace {

constexpr const char* kNames[kFaultKinds] = {"short",    "eagain", "eintr",  "delay", "reorder",
                                             "spurious", "reset",  "nobufs", "busy"};

std::atomic<uint64_t> g_injected[kFaultKinds];
std::atomic<uint64_t> g_uring_pollers{0};
std::atomic<uint64_t> g_epoll_pollers{0};

void count(FaultKind k) {
  g_injected[static_cast<size_t>(k)].fetch_add(1, std::memory_order_relaxed);
}

// The plan given by set_fault_plan(), and the last plan printed.
std::mutex g_plan_mu;
bool g_plan_overridden ABSL_GUARDED_BY(g_plan_mu) = false;
std::optional<FaultPlan> g_plan ABSL_GUARDED_BY(g_plan_mu);
std::string g_printed ABSL_GUARDED_BY(g_plan_mu);
std::vector<uint64_t> g_made ABSL_GUARDED_BY(g_plan_mu);  // fault pollers made per scheduler index

std::optional<FaultPlan> plan_from_env() {
  const char* env = std::getenv("FIBER_FAULTS");
  if (env == nullptr || *env == '\0') return std::nullopt;
  return FaultPlan::parse(env);
}

bool is_stream_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

// reset_stream() breaks the connection of the stream socket `fd` for real, so
// that -ECONNRESET is what the peer and every later operation agree on.
// Returns false (nothing done) if `fd` is not a connected stream socket.
bool reset_stream(int fd) {
  if (!is_stream_socket(fd)) return false;
  sockaddr_storage peer;
  socklen_t len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return false;
  int domain = 0;
  len = sizeof domain;
  getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
  if (domain == AF_INET || domain == AF_INET6) {
    // connect(AF_UNSPEC) disconnects a TCP socket with an RST (tcp_disconnect).
    sockaddr unspec = {};
    unspec.sa_family = AF_UNSPEC;
    (void)::connect(fd, &unspec, sizeof unspec);
  } else {
    (void)::shutdown(fd, SHUT_RDWR);
  }
  return true;
}

class FaultPoller final : public IoPoller {
 public:
  FaultPoller(std::unique_ptr<Poller> real, DriverKind kind, const FaultPlan& plan, unsigned index,
              uint64_t nth)
      : owned_(std::move(real)),
        real_(static_cast<IoPoller*>(owned_.get())),
        epoll_(kind == DriverKind::kEpoll),
        plan_(plan),
        state_(plan.seed * 0x9E3779B97F4A7C15ull + (nth << 20) + index + 1) {}

  int socket_flags() const override { return real_->socket_flags(); }
  void forget(IoHandle& h) override {
    streak_.erase(&h);
    real_->forget(h);
  }
  // The ops in flight are the real poller's, and so is stopping them.
  void cancel(IoHandle& h, uint64_t upto) override { real_->cancel(h, upto); }
  void wake() override { real_->wake(); }
  bool has_pending() const override { return !held_.empty() || real_->has_pending(); }
  bool events_visible() const override { return real_->events_visible(); }
  bool events_ready() const override { return !held_.empty() || real_->events_ready(); }

  int32_t execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns) override {
    const OpTraits& traits = op_traits(req.kind);
    if (req.kind == IoKind::kOpenAt) return real_->execute(h, req, deadline_ns);
    const bool may = streak(&h) < plan_.max_consecutive;
    if (may) {
      if (int32_t r = instead_of_running(traits, req); r < 0) {
        set_streak(&h, streak(&h) + 1);
        return r;
      }
    }
    IoRequest run = req;
    msghdr msg;
    iovec iov[64];
    bool faulted = may && shrink(traits, req, &run, &msg, iov);
    int32_t r = real_->execute(h, run, deadline_ns);
    if (run.msg == &msg) {  // hand back what the kernel wrote into the copy
      req.msg->msg_flags = msg.msg_flags;
      req.msg->msg_namelen = msg.msg_namelen;
      req.msg->msg_controllen = msg.msg_controllen;
    }
    faulted |= after_completion(h, may);
    // A clean pass ends the streak.
    set_streak(&h, faulted ? streak(&h) + 1 : 0);
    return r;
  }

  int32_t wait(IoHandle& h, int events, int64_t deadline_ns) override {
    // A readiness wait is part of the operation that got -EAGAIN: a clean one
    // does not end the streak, or that operation could be faulted forever.
    const bool may = streak(&h) < plan_.max_consecutive;
    if (may && roll(FaultKind::kEintr)) {  // the wait ends early, as on a signal
      count(FaultKind::kEintr);
      set_streak(&h, streak(&h) + 1);
      return -EINTR;
    }
    int32_t r = -EAGAIN;
    if (epoll_) {
      // An injected -EAGAIN did not come from the fd's state: the fd may be
      // ready with its edge already reported, and edge-triggered epoll gives no
      // other. Look at the level first, as a real -EAGAIN would have.
      IoRequest level{IoKind::kPoll, h.fd};
      level.flags = events;
      r = op_traits(IoKind::kPoll).try_now(level);
    }
    if (r == -EAGAIN) {
      if (epoll_) active_.push_back(&h);
      r = real_->wait(h, events, deadline_ns);
      if (epoll_) active_.erase(std::find(active_.begin(), active_.end(), &h));
    }
    if (after_completion(h, may)) set_streak(&h, streak(&h) + 1);
    return r;
  }

  void poll(int64_t timeout_ns) override {
    // Held wake-ups are due on a later turn; never sleep while one is held.
    if (release_held(/*all=*/timeout_ns != 0) || !held_.empty()) timeout_ns = 0;
    if (poll_streak_ < plan_.max_consecutive) {
      if (timeout_ns != 0 && roll(FaultKind::kEintr)) {  // the wait ends early, as on a signal
        count(FaultKind::kEintr);
        ++poll_streak_;
        return;
      }
      if (roll(FaultKind::kBusy) && real_->poll_refused()) {
        count(FaultKind::kBusy);
        ++poll_streak_;
        return;
      }
    }
    poll_streak_ = 0;
    real_->poll(timeout_ns);
    if (roll(FaultKind::kSpurious)) {
      count(FaultKind::kSpurious);
      if (!epoll_ || active_.empty() || !real_->wake_spuriously(*active_[below(active_.size())])) {
        real_->wake();  // the next poll() returns at once, with nothing to do
      }
    }
  }

 private:
  void abort(IoOp& op) override { (void)op; }  // unreachable: cancel() is the real poller's

  struct Held {
    Fiber* fiber;
    int turns;       // poll() calls left before it is released
    bool reorder;    // held until a later completion is delivered first
    bool overtaken;  // reorder: one was
  };

  // after_completion() may hold back the completion just delivered (a delay,
  // or a reorder behind a later one); it also marks the completions held for
  // reordering as overtaken by this one. Returns whether it held this one.
  bool after_completion(IoHandle& h, bool may) {
    for (Held& e : held_) {
      if (e.reorder && !e.overtaken) {
        e.overtaken = true;
        count(FaultKind::kReorder);
      }
    }
    if (may && roll(FaultKind::kDelay)) {
      count(FaultKind::kDelay);
      hold(h, /*reorder=*/false);
      return true;
    }
    if (may && roll(FaultKind::kReorder)) {
      hold(h, /*reorder=*/true);
      return true;
    }
    return false;
  }

  // instead_of_running() returns the error an operation gets without reaching
  // the kernel, or 0 to run it.
  int32_t instead_of_running(const OpTraits& traits, const IoRequest& req) {
    if (traits.retry_eintr && roll(FaultKind::kEintr)) {
      count(FaultKind::kEintr);
      return -EINTR;
    }
    // -EAGAIN is real for the transfers that wait for readiness.
    const bool transfer = traits.transfer != Transfer::kNone && !traits.file;
    if (transfer && roll(FaultKind::kEagain)) {
      count(FaultKind::kEagain);
      return -EAGAIN;
    }
    const bool send = traits.socket_stream && !traits.kernel_writes;
    if (send && roll(FaultKind::kNobufs)) {
      count(FaultKind::kNobufs);
      return -ENOBUFS;
    }
    if (traits.socket_stream && roll(FaultKind::kReset) && reset_stream(req.fd)) {
      count(FaultKind::kReset);
      return -ECONNRESET;
    }
    return 0;
  }

  // shrink() makes `run` a shorter version of the transfer `req` (a real short
  // read or write); false if it left `run` alone. A datagram is never shrunk:
  // that would cut it, not split it.
  bool shrink(const OpTraits& traits, const IoRequest& req, IoRequest* run, msghdr* msg,
              iovec* iov) {
    switch (traits.transfer) {
      case Transfer::kBuffer:
        if (req.len < 2 || !roll(FaultKind::kShort)) return false;
        run->len = 1 + below(req.len - 1);
        break;
      case Transfer::kMessage: {
        size_t total = 0;
        for (size_t i = 0; i < req.msg->msg_iovlen; ++i) total += req.msg->msg_iov[i].iov_len;
        if (total < 2 || req.msg->msg_iovlen > 64 || !roll(FaultKind::kShort)) return false;
        if (!is_stream_socket(req.fd)) return false;
        size_t left = 1 + below(total - 1);
        *msg = *req.msg;
        msg->msg_iov = iov;
        msg->msg_iovlen = 0;
        for (size_t i = 0; i < req.msg->msg_iovlen && left > 0; ++i) {
          iov[i] = req.msg->msg_iov[i];
          iov[i].iov_len = std::min(iov[i].iov_len, left);
          left -= iov[i].iov_len;
          ++msg->msg_iovlen;
        }
        run->msg = msg;
        break;
      }
      case Transfer::kNone:
      case Transfer::kAddress:
        return false;
    }
    count(FaultKind::kShort);
    return true;
  }

  // hold() parks the calling fiber, whose operation is complete, until a later
  // poll() releases it: after a few turns, or (`reorder`) once another
  // operation's completion has been delivered first (at most kReorderTurns). A placeholder op stays
  // linked on `h` meanwhile, so a close() waits for this fiber to be done with the handle; a cancel
  // finds nothing to cancel in it (the real op has completed: it raced and lost).
  static constexpr int kReorderTurns = 8;

  void hold(IoHandle& h, bool reorder) {
    IoOp placeholder;
    placeholder.fiber = current_fiber("fiber: I/O");
    placeholder.seq = h.started.load(std::memory_order_relaxed);
    placeholder.state = OpState::kUnstoppable;
    link_op(h, &placeholder);
    int turns = reorder ? kReorderTurns : 1 + static_cast<int>(below(3));
    held_.push_back(Held{placeholder.fiber, turns, reorder, false});
    park(WaitReason::kIo, 0, h.fd);
    unlink_op(h, &placeholder);
  }

  // release_held() readies the held fibers that are due (all of them if `all`),
  // possibly out of order. Returns whether it readied any.
  bool release_held(bool all) {
    if (held_.empty()) return false;
    due_.clear();
    size_t kept = 0;
    for (Held& e : held_) {
      if (all || --e.turns <= 0 || e.overtaken) {
        due_.push_back(e.fiber);
      } else {
        held_[kept++] = e;
      }
    }
    held_.resize(kept);
    if (due_.size() >= 2 && roll(FaultKind::kReorder)) {  // the newest first
      count(FaultKind::kReorder);
      std::reverse(due_.begin(), due_.end());
    }
    for (Fiber* f : due_) ready(f);
    return !due_.empty();
  }

  int streak(const IoHandle* h) const {
    auto it = streak_.find(h);
    return it == streak_.end() ? 0 : it->second;
  }
  void set_streak(const IoHandle* h, int n) {
    if (n == 0) {
      streak_.erase(h);
    } else {
      streak_[h] = n;
    }
  }

  uint64_t next() {  // splitmix64: reproducible from the seed, cheap
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  bool roll(FaultKind k) {
    double p = plan_[k];
    return p > 0 && static_cast<double>(next() >> 11) * 0x1.0p-53 < p;
  }

  std::unique_ptr<Poller> owned_;
  IoPoller* const real_;
  const bool epoll_;
  const FaultPlan plan_;
  uint64_t state_;
  std::vector<Held> held_;
  std::vector<Fiber*> due_;
  std::vector<IoHandle*> active_;                    // epoll: handles with an op in execute() now
  std::unordered_map<const IoHandle*, int> streak_;  // faults in a row per handle
  int poll_streak_ = 0;                              // faulted poll() calls in a row
};

}  // namespace

const char* fault_kind_name(FaultKind kind) { return kNames[static_cast<size_t>(kind)]; }

FaultPlan FaultPlan::parse(std::string_view text) {
  FaultPlan plan;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    const std::string bad = "fiber: FIBER_FAULTS: bad item '" + std::string(item) + "'";
    const char* end = value.data() + value.size();
    if (key == "seed" || key == "max") {
      uint64_t n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), end, n);
      if (value.empty() || ec != std::errc() || ptr != end) throw std::invalid_argument(bad);
      if (key == "seed") {
        plan.seed = n;
      } else {
        if (n < 1 || n > 100) throw std::invalid_argument(bad + " (max is 1 to 100)");
        plan.max_consecutive = static_cast<int>(n);
      }
      continue;
    }
    size_t k = 0;
    while (k < kFaultKinds && key != kNames[k]) ++k;
    if (k == kFaultKinds) throw std::invalid_argument(bad + " (unknown key)");
    // strtod needs a terminated string; the value is short.
    std::string v(value);
    char* stop = nullptr;
    double p = std::strtod(v.c_str(), &stop);
    if (v.empty() || *stop != '\0' || !(p >= 0 && p <= 1)) {
      throw std::invalid_argument(bad + " (a probability from 0 to 1)");
    }
    plan.p[k] = p;
  }
  return plan;
}

std::string FaultPlan::to_string() const {
  std::string out = "seed=" + std::to_string(seed);
  for (size_t k = 0; k < kFaultKinds; ++k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ",%s=%g", kNames[k], p[k]);
    out += buf;
  }
  return out + ",max=" + std::to_string(max_consecutive);
}

std::optional<FaultPlan> active_fault_plan() {
  {
    std::lock_guard<std::mutex> g(g_plan_mu);
    if (g_plan_overridden) return g_plan;
  }
  static const std::optional<FaultPlan> from_env = plan_from_env();
  return from_env;
}

void set_fault_plan(std::optional<FaultPlan> plan) {
  std::lock_guard<std::mutex> g(g_plan_mu);
  g_plan_overridden = plan.has_value();
  g_plan = std::move(plan);
}

FaultCounts fault_counts() {
  FaultCounts c;
  for (size_t k = 0; k < kFaultKinds; ++k)
    c.injected[k] = g_injected[k].load(std::memory_order_relaxed);
  c.uring_pollers = g_uring_pollers.load(std::memory_order_relaxed);
  c.epoll_pollers = g_epoll_pollers.load(std::memory_order_relaxed);
  return c;
}

void reset_fault_counts() {
  for (auto& c : g_injected) c.store(0, std::memory_order_relaxed);
  g_uring_pollers.store(0, std::memory_order_relaxed);
  g_epoll_pollers.store(0, std::memory_order_relaxed);
}

std::unique_ptr<Poller> make_fault_poller(std::unique_ptr<Poller> real, DriverKind kind,
                                          const FaultPlan& plan) {
  {
    std::lock_guard<std::mutex> g(g_plan_mu);
    std::string text = plan.to_string();
    if (text != g_printed) {  // once per plan: the line to replay the run with
      std::fprintf(stderr, "fiber: FIBER_FAULTS %s\n", text.c_str());
      g_printed = std::move(text);
    }
  }
  (kind == DriverKind::kIoUring ? g_uring_pollers : g_epoll_pollers)
      .fetch_add(1, std::memory_order_relaxed);
  unsigned index = t_scheduler != nullptr ? t_scheduler->index() : 0;
  // Scheduler i of the n-th runtime of the process draws from (seed, i, n): a
  // binary that runs many short tests does not replay one short sequence in
  // each (a kind could then never fire), and a rerun replays them all.
  uint64_t nth;
  {
    std::lock_guard<std::mutex> g(g_plan_mu);
    if (g_made.size() <= index) g_made.resize(index + 1);
    nth = g_made[index]++;
  }
  return std::make_unique<FaultPoller>(std::move(real), kind, plan, index, nth);
}

}  // namespace fiber::detail
