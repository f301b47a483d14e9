// The reports of sched/internal/debug.h: fiber::dump(), the SIGQUIT dump, the
// deadlock report and the leak report at exit.
#include "fiber/debug.h"

#include <dirent.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>
#include <unwind.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include "fiber/detail/park.h"
#include "fiber/internal/control_block.h"
#include "fiber/runtime.h"
#include "runtime_impl.h"
#include "sched/internal/debug.h"
#include "sched/internal/scheduler.h"

namespace fiber::detail {
namespace {

// How long a report waits for a core to answer before calling it stalled.
constexpr auto kAnswerWait = std::chrono::seconds(1);
// Fibers listed with their stacks per core; the others are counted by site.
constexpr size_t kMaxListed = 1000;
constexpr int kMaxFrames = 48;
// Free stack a fiber needs below its stack pointer for its stack to be
// unwound on it (the unwinder's frames, with room to spare).
constexpr uintptr_t kUnwindRoom = 32 * 1024;

void write_all(const std::string& text) { write_stderr(text); }

std::string duration(int64_t ns) {
  if (ns < 0) ns = 0;
  char buf[32];
  if (ns < 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%" PRId64 " ms", ns / 1'000'000);
  } else if (ns < int64_t{120} * 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ns) / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRId64 " min", ns / 60'000'000'000);
  }
  return buf;
}

std::string site(const Fiber* f) {
  if (f->site_file == nullptr || f->site_file[0] == 0) return "fiber::run (main)";
  return std::string(f->site_file) + ":" + std::to_string(f->site_line);
}

// state() is the bracketed state of a fiber that is not running.
std::string state(const Fiber* f, int64_t now) {
  if (f->state != FiberState::kParked) return "runnable";
  std::string s = to_string(f->wait_reason);
  if (f->wait_reason == WaitReason::kIo || f->wait_reason == WaitReason::kIoClose) {
    s += " on fd " + std::to_string(f->wait_fd);
  }
  if (f->wait_until_ns > 0) {
    s += (f->wait_reason == WaitReason::kSleep ? ", wakes in " : ", deadline in ") +
         duration(f->wait_until_ns - now);
  } else if (f->wait_reason == WaitReason::kIo) {
    s += ", no deadline";
  }
  return s + ", for " + duration(now - f->wait_since_ns);
}

struct Collector {
  void** pcs;
  int max;
  int depth;
  int skip;
};

_Unwind_Reason_Code collect(struct _Unwind_Context* ctx, void* arg) {
  auto* c = static_cast<Collector*>(arg);
  void* pc = reinterpret_cast<void*>(_Unwind_GetIP(ctx));
  if (pc == nullptr) return _URC_END_OF_STACK;
  if (c->skip > 0) {
    --c->skip;
    return _URC_NO_REASON;
  }
  c->pcs[c->depth++] = pc;
  return c->depth == c->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

// own_stack() unwinds the calling thread's stack, without this function's
// frame and the `skip` above it.
[[gnu::noinline]] int own_stack(void** pcs, int max, int skip) {
  Collector c{pcs, max, 0, skip + 1};
  _Unwind_Backtrace(&collect, &c);
  return c.depth;
}

// Runtime threads that cannot hold a handle: the kernel's io_uring workers
// (iou-wrk-*, iou-sqp-*) show up as threads of the process.
// A thread that ended meanwhile holds nothing either.
bool kernel_worker(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/comm");
  if (!in) return access(("/proc/self/task/" + std::to_string(tid)).c_str(), F_OK) != 0;
  std::string comm;
  std::getline(in, comm);
  return comm.rfind("iou-", 0) == 0;
}

// foreign_thread() is true when the process has a thread other than `known`
// (or its threads cannot be listed): it might hold a channel, a CondVar or a
// WaitGroup and wake a fiber.
bool foreign_thread(const std::vector<pid_t>& known) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return true;
  bool foreign = false;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    pid_t tid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
    if (std::find(known.begin(), known.end(), tid) != known.end()) continue;
    if (kernel_worker(tid)) continue;
    foreign = true;
    break;
  }
  closedir(dir);
  return foreign;
}

// collect_parts() asks every core of `rt` for its part of a `kind` report and
// returns the parts; a core that did not answer within kAnswerWait has none.
std::vector<std::optional<DumpPart>> collect_parts(Runtime& rt, DumpKind kind) {
  const unsigned n = rt.size();
  auto req = std::make_shared<DumpRequest>(kind, n);
  Scheduler* self = t_runtime == &rt ? t_scheduler : nullptr;
  for (unsigned i = 0; i < n; ++i) {
    if (&rt.scheduler(i) != self) rt.scheduler(i).request_dump(req);
  }
  if (self != nullptr) answer_dump(*self, *req);  // this core: here and now
  const int64_t deadline =
      now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(kAnswerWait).count();
  if (self != nullptr && t_current_fiber != nullptr) {
    // A fiber: park until the last core answers or the deadline passes.
    struct WaitTimer : Timer {
      DumpRequest* req;
    } timer;
    req->mu.lock();
    if (req->remaining > 0) {
      req->waiter = t_current_fiber;
      req->mu.unlock();
      timer.deadline_ns = deadline;
      timer.req = req.get();
      timer.fire = [](Timer* t) {
        DumpRequest* r = static_cast<WaitTimer*>(t)->req;
        r->mu.lock();
        Fiber* w = std::exchange(r->waiter, nullptr);
        r->mu.unlock();
        if (w != nullptr) ready(w);
      };
      self->add_timer(&timer);
      self->park(WaitReason::kDump, deadline);
      self->cancel_timer(&timer);  // no-op if it fired
    } else {
      req->mu.unlock();
    }
  } else {
    // A thread (or a scheduler's own loop): block it, for a bounded time.
    ThreadLock lk(req->mu);
    req->cv.wait_for(lk.native(), kAnswerWait,
                     [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(req->mu) { return req->remaining == 0; });
  }
  std::vector<std::optional<DumpPart>> out(n);
  ThreadLock lk(req->mu);
  for (unsigned i = 0; i < n; ++i) {
    // A core that answered never touches its part again.
    if (req->done[i]) out[i] = std::move(req->parts[i]);
  }
  return out;
}

std::string dump_text(Runtime& rt) {
  std::vector<std::optional<DumpPart>> parts = collect_parts(rt, DumpKind::kFull);
  std::string text;
  for (unsigned i = 0; i < parts.size(); ++i) {
    if (parts[i]) {
      text += parts[i]->text;
    } else {
      text += "(core " + std::to_string(i) + " is stalled: its fibers cannot be listed)\n\n";
    }
  }
  return text;
}

// --- SIGQUIT ---------------------------------------------------------------

// The handler's state: static, so that a signal racing a runtime's end never
// touches freed memory.
sem_t g_sigquit_sem;
std::atomic<int> g_sigquit_pending{0};
std::atomic<bool> g_sigquit_active{false};

void on_sigquit(int) {
  const int saved_errno = errno;
  if (g_sigquit_active.load(std::memory_order_acquire)) {
    g_sigquit_pending.fetch_add(1, std::memory_order_acq_rel);
    sem_post(&g_sigquit_sem);  // async-signal-safe
  }
  errno = saved_errno;
}

}  // namespace

class SigquitThread {
 public:
  explicit SigquitThread(Runtime& rt) : rt_(rt) {
    static std::once_flag once;
    std::call_once(once, [] { sem_init(&g_sigquit_sem, 0, 0); });
    g_sigquit_pending.store(0, std::memory_order_relaxed);
    thread_ = std::thread([this] { main(); });
    g_sigquit_active.store(true, std::memory_order_release);
    struct sigaction sa = {};
    sa.sa_handler = &on_sigquit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, &previous_);
  }
  ~SigquitThread() {
    sigaction(SIGQUIT, &previous_, nullptr);
    g_sigquit_active.store(false, std::memory_order_release);
    stop_.store(true, std::memory_order_release);
    sem_post(&g_sigquit_sem);
    thread_.join();
    // Posts of signals that came meanwhile: not for the next runtime.
    while (sem_trywait(&g_sigquit_sem) == 0) {
    }
  }
  pid_t tid() const { return tid_.load(std::memory_order_acquire); }

 private:
  void main() {
    pthread_setname_np(pthread_self(), "fiber-sigquit");
    tid_.store(static_cast<pid_t>(gettid()), std::memory_order_release);
    for (;;) {
      while (sem_wait(&g_sigquit_sem) != 0 && errno == EINTR) {
      }
      // A signal that came before stop() is answered first.
      if (g_sigquit_pending.exchange(0, std::memory_order_acq_rel) > 0) {
        write_all("SIGQUIT: fiber dump\n\n" + dump_text(rt_));
      }
      if (stop_.load(std::memory_order_acquire)) return;
    }
  }

  Runtime& rt_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<pid_t> tid_{0};
  struct sigaction previous_ = {};
};

DebugState::DebugState() = default;
DebugState::~DebugState() = default;

namespace {
// One runtime at a time gets SIGQUIT.
std::atomic<bool> g_sigquit_taken{false};
}  // namespace

void start_debug(Runtime& rt) {
  if (rt.options().sigquit_dump && !g_sigquit_taken.exchange(true)) {
    try {
      rt.debug().sigquit = std::make_unique<SigquitThread>(rt);
    } catch (const std::system_error& e) {
      g_sigquit_taken.store(false);
      std::fprintf(stderr, "fiber: no SIGQUIT dump (%s)\n", e.what());
    }
  }
}

void stop_debug(Runtime& rt) {
  if (rt.debug().sigquit == nullptr) return;
  rt.debug().sigquit.reset();
  g_sigquit_taken.store(false);
}

// --- one core's part ---------------------------------------------------------

void answer_dump(Scheduler& s, DumpRequest& req) {
  const unsigned i = s.index();
  s.describe(req.kind, req.parts[i]);
  Fiber* w = nullptr;
  {
    ThreadLock g(req.mu);
    req.done[i] = true;
    if (--req.remaining == 0) w = std::exchange(req.waiter, nullptr);
    req.cv.notify_all();
  }
  if (w != nullptr) ready(w);
}

void Scheduler::describe(DumpKind kind, DumpPart& out) {
  std::vector<Fiber*> fibers;
  fibers.reserve(live_count_);
  for (Fiber* f = live_head_; f != nullptr; f = f->live_next) fibers.push_back(f);
  std::sort(fibers.begin(), fibers.end(), [](Fiber* a, Fiber* b) { return a->id < b->id; });
  const int64_t now = now_ns();
  Fiber* const me = t_current_fiber;
  std::map<std::string, uint64_t> unlisted;
  size_t listed = 0;
  for (Fiber* f : fibers) {
    if (f->state == FiberState::kParked) {
      ++out.parked;
    } else if (f != me) {
      ++out.runnable;
    }
    if (kind == DumpKind::kLeaks) {
      if (f->state == FiberState::kParked) {
        ++out.sites[site(f) + " (" + to_string(f->wait_reason) + ")"];
      }
      continue;
    }
    const std::string st = f == me ? "running" : state(f, now);
    if (listed == kMaxListed) {
      ++unlisted[site(f) + " [" + (f == me ? st : std::string(to_string(f->wait_reason))) + "]"];
      continue;
    }
    ++listed;
    out.text += "fiber " + std::to_string(f->id) + " on core " + std::to_string(index_) + " [" +
                st + "], spawned at " + site(f) + "\n";
    void* pcs[kMaxFrames];
    int n = 0;
    if (f == me) {
      n = own_stack(pcs, kMaxFrames, 0);
    } else if (f->entry_ != nullptr) {
      out.text += "    (not started yet)\n";
    } else if (reinterpret_cast<uintptr_t>(f->fctx) <
               reinterpret_cast<uintptr_t>(f->stack.bottom()) + kUnwindRoom) {
      out.text += "    (too close to the end of its stack to unwind)\n";
    } else {
      Context* from = me != nullptr ? static_cast<Context*>(me) : &main_ctx_;
      n = unwind_suspended(from, f, pcs, kMaxFrames);
    }
    append_frames(out.text, pcs, n, /*first_is_pc=*/false);
    out.text += "\n";
  }
  for (const auto& [where, count] : unlisted) {
    out.text += "(" + std::to_string(count) + " more on core " + std::to_string(index_) +
                " spawned at " + where + ")\n";
  }
  if (!unlisted.empty()) out.text += "\n";
}

// --- the reports -----------------------------------------------------------

void check_deadlock(Runtime& rt) {
  DebugState& d = rt.debug();
  if (d.main_returned.load(std::memory_order_seq_cst) || d.reported.load()) return;
  const unsigned n = rt.size();
  std::vector<uint64_t> epochs(n);
  uint64_t alive = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (!rt.scheduler(i).quiet(&epochs[i])) return;
    alive += rt.scheduler(i).alive();
  }
  // No fiber at all: the runtime is starting (main is on its way).
  if (alive == 0) return;
  // The pool and the threads before the inboxes: a blocking call that ends
  // posts its fiber to an inbox under the pool's lock before the pool counts
  // it done, and a thread posts before it exits. Looked at in the other order,
  // a post made in between would be seen by neither check.
  std::vector<pid_t> known;
  if (!rt.pool().idle(&known)) return;  // a blocking call may still end
  for (unsigned i = 0; i < n; ++i) known.push_back(rt.scheduler(i).tid());
  known.push_back(rt.monitor().tid());
  known.push_back(d.caller_tid);
  if (d.sigquit != nullptr) known.push_back(d.sigquit->tid());
  if (foreign_thread(known)) return;  // it may hold a handle and send or close
  // Every core sleeps with no timer and no I/O of its own. A core's inbox
  // holds what another core or a thread posted before it slept: a wake-up.
  for (unsigned i = 0; i < n; ++i) {
    if (!rt.scheduler(i).inbox_empty()) return;
  }
  // Nobody left to wake a core, if none woke meanwhile: a core that did went
  // through its loop (its epoch moved).
  for (unsigned i = 0; i < n; ++i) {
    uint64_t epoch = 0;
    if (!rt.scheduler(i).quiet(&epoch) || epoch != epochs[i]) return;
  }
  if (d.main_returned.load(std::memory_order_seq_cst) || d.reported.exchange(true)) return;
  write_all("fatal: all fibers are asleep - deadlock!\n\n" + dump_text(rt));
  _exit(2);
}

void leak_report(Runtime& rt) {
  std::vector<std::optional<DumpPart>> parts = collect_parts(rt, DumpKind::kLeaks);
  std::map<std::string, uint64_t> sites;
  uint64_t parked = 0;
  std::string stalled;
  for (unsigned i = 0; i < parts.size(); ++i) {
    if (!parts[i]) {
      stalled += "  (core " + std::to_string(i) + " is stalled: its fibers cannot be listed)\n";
      continue;
    }
    parked += parts[i]->parked;
    for (const auto& [where, count] : parts[i]->sites) sites[where] += count;
  }
  if (parked == 0 && stalled.empty()) return;
  std::vector<std::pair<uint64_t, std::string>> by_count;
  for (const auto& [where, count] : sites) by_count.emplace_back(count, where);
  std::stable_sort(by_count.begin(), by_count.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string text = "fiber: leak report: " + std::to_string(parked) +
                     " fibers still parked when main returned, by spawn site:\n";
  for (const auto& [count, where] : by_count) {
    text += "  " + std::to_string(count) + " at " + where + "\n";
  }
  write_all(text + stalled);
}

void report_relock(const void* first_pc, const void* again_pc) {
  const Fiber* f = t_current_fiber;
  std::string text = "fiber: fiber " + std::to_string(f->id) + " (spawned at " + site(f) +
                     ") locks a fiber::Mutex it already holds: it waits for another fiber to "
                     "unlock it, a deadlock if none does\n  locked first at:\n";
  void* first[1] = {const_cast<void*>(first_pc)};
  append_frames(text, first, 1, /*first_is_pc=*/false);
  text += "  locked again at:\n";
  void* again[1] = {const_cast<void*>(again_pc)};
  append_frames(text, again, 1, /*first_is_pc=*/false);
  text += "  stack:\n";
  void* pcs[kMaxFrames];
  int n = own_stack(pcs, kMaxFrames, 2);  // from Mutex::lock's caller on
  append_frames(text, pcs, n, /*first_is_pc=*/false);
  write_all(text);
}

}  // namespace fiber::detail

namespace fiber {

void dump(std::ostream& out) {
  detail::current_fiber("fiber::dump");
  out << detail::dump_text(*detail::t_runtime);
}

}  // namespace fiber
