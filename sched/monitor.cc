#include "sched/internal/monitor.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <unwind.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include "absl/debugging/symbolize.h"
#include "fiber/internal/control_block.h"
#include "fiber/runtime.h"
#include "runtime_impl.h"
#include "sched/internal/scheduler.h"

namespace fiber::detail {
namespace {

constexpr int64_t kTickNs = 1'000'000;       // while some scheduler is awake
constexpr int64_t kIdleTickNs = 10'000'000;  // while every scheduler sleeps
constexpr int64_t kProbeWaitNs = 100'000'000;
constexpr int64_t kDeadlockCheckNs = 100'000'000;
constexpr double kBurst = 10;
constexpr double kRefillPerNs = 1.0 / 6e9;  // one report per 6 s after the burst

// --- the probe signal ------------------------------------------------------

thread_local constinit StallProbe* t_probe = nullptr;
struct sigaction g_previous_urg;

struct UnwindState {
  StallProbe* probe;
  int skip;
};

_Unwind_Reason_Code collect_frame(struct _Unwind_Context* ctx, void* arg) {
  auto* st = static_cast<UnwindState*>(arg);
  if (st->skip > 0) {
    --st->skip;
    return _URC_NO_REASON;
  }
  void* pc = reinterpret_cast<void*>(_Unwind_GetIP(ctx));
  if (pc == nullptr) return _URC_END_OF_STACK;
  st->probe->pcs[st->probe->depth++] = pc;
  return st->probe->depth == StallProbe::kMaxFrames ? _URC_END_OF_STACK : _URC_NO_REASON;
}

void on_urg(int sig, siginfo_t* info, void* uctx) {
  StallProbe* probe = t_probe;
  int expected = StallProbe::kRequested;
  if (probe != nullptr && probe->state.compare_exchange_strong(expected, StallProbe::kBusy,
                                                               std::memory_order_acquire)) {
    const int saved_errno = errno;
    probe->depth = 0;
    // libgcc's unwinder reads .eh_frame, so frames without frame pointers
    // unwind too, and it steps over the signal frame into the fiber's stack.
    // Skipped: this handler and collect_frame's caller.
    UnwindState st{probe, 1};
    _Unwind_Backtrace(&collect_frame, &st);
    probe->state.store(StallProbe::kDone, std::memory_order_release);
    errno = saved_errno;
    return;
  }
  // Not ours: whoever handled SIGURG before us.
  if (g_previous_urg.sa_flags & SA_SIGINFO) {
    if (g_previous_urg.sa_sigaction != nullptr) g_previous_urg.sa_sigaction(sig, info, uctx);
  } else if (g_previous_urg.sa_handler != SIG_DFL && g_previous_urg.sa_handler != SIG_IGN) {
    g_previous_urg.sa_handler(sig);
  }
}

// --- reading a thread that may change under us -------------------------------

// read_memory() copies what is at `src` without faulting if it is gone: the
// fiber a stalled scheduler runs may exit, and its stack go, while we look.
bool read_memory(void* dst, const void* src, size_t n) {
  iovec local{dst, n};
  iovec remote{const_cast<void*>(src), n};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n);
}

// read_string() copies the NUL-terminated string at `src`, cut to `cap`.
bool read_string(char* dst, size_t cap, const char* src) {
  size_t n = 0;
  while (n + 1 < cap) {
    // One page at a time: the string may end just before an unmapped page.
    uintptr_t at = reinterpret_cast<uintptr_t>(src + n);
    size_t len = std::min<size_t>(cap - 1 - n, 4096 - at % 4096);
    if (!read_memory(dst + n, src + n, len)) return false;
    for (size_t i = 0; i < len; ++i) {
      if (dst[n + i] == 0) return true;
    }
    n += len;
  }
  dst[n] = 0;
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// thread_state() is the state letter of /proc/self/task/<tid>/stat: 'R'
// running, 'S'/'D' waiting in the kernel; 0 if unreadable.
char thread_state(pid_t tid) {
  std::string stat = read_file("/proc/self/task/" + std::to_string(tid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return 0;
  return stat[paren + 2];
}

const char* syscall_name(long nr) {
  struct Entry {
    long nr;
    const char* name;
  };
  static const Entry kNames[] = {
#define FIBER_SYSCALL(n) {SYS_##n, #n},
      FIBER_SYSCALL(read) FIBER_SYSCALL(write) FIBER_SYSCALL(readv) FIBER_SYSCALL(writev)
          FIBER_SYSCALL(pread64) FIBER_SYSCALL(pwrite64) FIBER_SYSCALL(openat) FIBER_SYSCALL(close)
              FIBER_SYSCALL(nanosleep) FIBER_SYSCALL(clock_nanosleep) FIBER_SYSCALL(ppoll)
                  FIBER_SYSCALL(pselect6) FIBER_SYSCALL(epoll_pwait) FIBER_SYSCALL(connect)
                      FIBER_SYSCALL(accept) FIBER_SYSCALL(accept4) FIBER_SYSCALL(sendto)
                          FIBER_SYSCALL(recvfrom) FIBER_SYSCALL(sendmsg) FIBER_SYSCALL(recvmsg)
                              FIBER_SYSCALL(futex) FIBER_SYSCALL(wait4) FIBER_SYSCALL(flock)
                                  FIBER_SYSCALL(fcntl) FIBER_SYSCALL(ioctl) FIBER_SYSCALL(fsync)
                                      FIBER_SYSCALL(fdatasync) FIBER_SYSCALL(io_uring_enter)
                                          FIBER_SYSCALL(epoll_wait)
#ifdef SYS_poll
                                              FIBER_SYSCALL(poll) FIBER_SYSCALL(select)
                                                  FIBER_SYSCALL(pause)
#endif
#undef FIBER_SYSCALL
  };
  for (const Entry& e : kNames) {
    if (e.nr == nr) return e.name;
  }
  return nullptr;
}

// Mappings of code, for telling return addresses from data on a stack.
struct CodeRange {
  uintptr_t lo, hi;
};

std::vector<CodeRange> code_ranges() {
  std::vector<CodeRange> out;
  std::istringstream maps(read_file("/proc/self/maps"));
  std::string line;
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %4s", &lo, &hi, perms) == 3 &&
        perms[2] == 'x') {
      out.push_back({lo, hi});
    }
  }
  return out;
}

bool in_code(const std::vector<CodeRange>& code, uintptr_t a) {
  return std::any_of(code.begin(), code.end(),
                     [a](const CodeRange& r) { return a >= r.lo && a < r.hi; });
}

// follows_call() is true if the code just before `ret` is a call instruction,
// as it is before every return address (x86-64: e8 rel32, or ff /2).
bool follows_call(uintptr_t ret) {
#if defined(__x86_64__)
  unsigned char code[7];
  if (!read_memory(code, reinterpret_cast<const void*>(ret - 7), sizeof code)) return false;
  if (code[2] == 0xe8) return true;  // call rel32
  for (int len = 2; len <= 7; ++len) {
    const unsigned char* insn = code + 7 - len;
    if (insn[0] == 0xff && ((insn[1] >> 3) & 7) == 2) return true;  // call r/m64
    if (len >= 3 && insn[0] >= 0x40 && insn[0] <= 0x4f && insn[1] == 0xff &&
        ((insn[2] >> 3) & 7) == 2) {
      return true;  // REX + call r/m64
    }
  }
  return false;
#else
  (void)ret;
  return true;
#endif
}

// scan_stack() gathers likely return addresses from a blocked thread's stack,
// from its stack pointer up: a scan, not an unwind, so it may show stale frames.
int scan_stack(uintptr_t sp, void** pcs, int max) {
  std::vector<CodeRange> code = code_ranges();
  int n = 0;
  constexpr size_t kChunk = 4096;
  uintptr_t words[kChunk / sizeof(uintptr_t)];
  for (uintptr_t at = sp & ~uintptr_t{7}; n < max && at < sp + 64 * 1024; at += kChunk) {
    size_t len = std::min<size_t>(kChunk, ((at / kChunk) + 1) * kChunk - at);
    if (!read_memory(words, reinterpret_cast<const void*>(at), len)) break;
    for (size_t i = 0; i < len / sizeof(uintptr_t) && n < max; ++i) {
      uintptr_t w = words[i];
      if (in_code(code, w) && follows_call(w)) pcs[n++] = reinterpret_cast<void*>(w);
    }
  }
  return n;
}

}  // namespace

void append_frames(std::string& out, void* const* pcs, int n, bool first_is_pc) {
  // One symbolizer at a time: the reports of several cores (a dump) symbolize
  // at once, and Abseil's symbolizer hands its cached state from thread to
  // thread with atomics inside a library built without TSan, which then sees
  // those hand-offs as races. The lock costs nothing off the report paths.
  static ThreadMutex symbolize_mu;
  ThreadLock lock(symbolize_mu);
  for (int i = 0; i < n; ++i) {
    // A return address points after its call: look up the call itself.
    uintptr_t pc = reinterpret_cast<uintptr_t>(pcs[i]);
    uintptr_t lookup = (i == 0 && first_is_pc) ? pc : pc - 1;
    char sym[512];
    const char* name = "?";
    if (absl::Symbolize(reinterpret_cast<void*>(lookup), sym, sizeof sym)) name = sym;
    char line[640];
    std::snprintf(line, sizeof line, "    #%-2d 0x%016" PRIxPTR " %s", i, pc, name);
    out += line;
    Dl_info dl;
    if (dladdr(reinterpret_cast<void*>(lookup), &dl) != 0 && dl.dli_fname != nullptr) {
      const char* base = std::strrchr(dl.dli_fname, '/');
      out += " (";
      out += base != nullptr ? base + 1 : dl.dli_fname;
      out += ")";
    }
    out += '\n';
  }
}

namespace {

// The monitor's clock is the real one, also under the tests' virtual clock.
int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t cpu_ns(clockid_t clock) {
  timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::string ms(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(ns) / 1e6);
  return buf;
}

}  // namespace

void install_stall_probe_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa = {};
    sa.sa_sigaction = &on_urg;
    // SA_RESTART: a probe that lands in a restartable system call does not
    // make it fail with EINTR. SA_ONSTACK: a fiber near the end of its stack
    // has no room for the unwinder.
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, &g_previous_urg);
  });
}

void set_thread_stall_probe(StallProbe* probe) { t_probe = probe; }

Monitor::Monitor(Runtime& runtime)
    : runtime_(runtime),
      threshold_ns_(runtime.options().stall_threshold.count()),
      slice_ns_(runtime.options().time_slice.count()) {}

Monitor::~Monitor() { stop(); }

void Monitor::start() {
  // Each watch starts now, at the scheduler's current activity: a core that
  // has not turned yet has not been stuck since the epoch.
  watches_.assign(runtime_.size(), Watch{});
  const int64_t now = mono_ns();
  for (unsigned i = 0; i < runtime_.size(); ++i) {
    watches_[i].activity = runtime_.scheduler(i).activity();
    watches_[i].since_ns = now;
    watches_[i].next_report_ns = threshold_ns_;
  }
  responsive_ = std::make_unique<std::atomic<bool>[]>(runtime_.size());
  for (unsigned i = 0; i < runtime_.size(); ++i) responsive_[i].store(true);
  thread_ = std::thread([this] { main(); });
}

void Monitor::stop() {
  if (!thread_.joinable()) return;
  {
    ThreadLock g(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Monitor::main() {
  pthread_setname_np(pthread_self(), "fiber-monitor");
  tid_.store(static_cast<pid_t>(gettid()), std::memory_order_release);
  // The probe signal is for scheduler threads only.
  sigset_t urg;
  sigemptyset(&urg);
  sigaddset(&urg, SIGURG);
  pthread_sigmask(SIG_BLOCK, &urg, nullptr);
  int64_t tick = kTickNs;
  int64_t next_deadlock_check = 0;
  for (;;) {
    {
      ThreadLock lk(mu_);
      if (cv_.wait_for(lk.native(), std::chrono::nanoseconds(tick),
                       [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; })) {
        break;
      }
    }
    const int64_t now = mono_ns();
    const int64_t hint = now_ns();  // the schedulers' clock, for park()'s stamps
    for (unsigned i = 0; i < watches_.size(); ++i) runtime_.scheduler(i).set_now_hint(hint);
    bool awake = false;
    for (unsigned i = 0; i < watches_.size(); ++i) awake |= check(i, watches_[i], now);
    // Back off while the runtime is idle, as Go's sysmon does.
    tick = awake ? kTickNs : std::min(tick * 2, kIdleTickNs);
    // Every core sleeps with nothing of its own to wake it: look again now
    // and then, as a thread that could have woken a fiber may have ended.
    if (!awake && now >= next_deadlock_check &&
        runtime_.debug().quiet.load(std::memory_order_seq_cst) == runtime_.size()) {
      next_deadlock_check = now + kDeadlockCheckNs;
      check_deadlock(runtime_);
    }
  }
  const int64_t now = mono_ns();
  for (unsigned i = 0; i < watches_.size(); ++i) {
    Watch& w = watches_[i];
    if (w.stalled) report_end(i, w, now - w.since_ns);
  }
}

bool Monitor::check(unsigned index, Watch& w, int64_t now) {
  Scheduler& s = runtime_.scheduler(index);
  const uint64_t activity = s.activity();
  const bool asleep = s.asleep();
  if (asleep || activity != w.activity) {
    if (w.stalled) report_end(index, w, now - w.since_ns);
    if (w.unresponsive) set_responsive(index, true);
    w = Watch{};
    w.activity = activity;
    w.since_ns = now;
    if (!asleep && threshold_ns_ > 0) w.cpu_since_ns = cpu_ns(s.cpu_clock());
    w.next_report_ns = threshold_ns_;
    if (!asleep) s.request_poll();
    return !asleep;
  }
  // The same fiber (or the loop) has run since `since_ns`, at least.
  const int64_t ran = now - w.since_ns;
  if (!w.unresponsive &&
      ran >= std::chrono::duration_cast<std::chrono::nanoseconds>(kUnresponsiveAfter).count()) {
    w.unresponsive = true;
    set_responsive(index, false);
  }
  if (slice_ns_ > 0 && ran >= slice_ns_ && !w.slice_asked) {
    w.slice_asked = true;
    s.request_yield();
  }
  s.request_poll();
  if (threshold_ns_ > 0 && ran >= w.next_report_ns && !w.stalled && thread_state(s.tid()) == 'R' &&
      cpu_ns(s.cpu_clock()) - w.cpu_since_ns < threshold_ns_) {
    // Running, yet it has had less than the threshold on a CPU: the kernel
    // gave the CPU to others meanwhile (a loaded machine), which is no fault
    // of the fiber's. A stall of a running thread is counted in CPU time.
  } else if (threshold_ns_ > 0 && ran >= w.next_report_ns) {
    const bool first = !w.stalled;
    w.stalled = true;
    w.next_report_ns *= 2;
    report(index, w, ran, first);
    s.record_stall(first, static_cast<uint64_t>(ran));
  } else if (w.stalled) {
    s.record_stall(false, static_cast<uint64_t>(ran));
  }
  return true;
}

bool Monitor::take_token(int64_t now) {
  if (tokens_at_ns_ == 0) tokens_at_ns_ = now;
  tokens_ = std::min(kBurst, tokens_ + static_cast<double>(now - tokens_at_ns_) * kRefillPerNs);
  tokens_at_ns_ = now;
  if (tokens_ < 1) {
    ++suppressed_;
    return false;
  }
  tokens_ -= 1;
  return true;
}

void Monitor::report(unsigned index, Watch& w, int64_t ran_ns, bool first) {
  Scheduler& s = runtime_.scheduler(index);
  const uint64_t before = s.activity();
  // Who runs: copied out of the fiber's control block, which lives on its
  // stack and may be gone; the activity check below says whether it still ran.
  Fiber* f = s.running();
  uint64_t id = 0;
  const char* file = nullptr;
  uint32_t line = 0;
  if (f != nullptr &&
      !(read_memory(&id, &f->id, sizeof id) && read_memory(&file, &f->site_file, sizeof file) &&
        read_memory(&line, &f->site_line, sizeof line))) {
    id = 0;
  }
  char site_buf[256] = "fiber::run's main";
  if (id != 0 && file != nullptr && line != 0) {
    char name[200];
    if (read_string(name, sizeof name, file)) {
      std::snprintf(site_buf, sizeof site_buf, "%s:%u", name, static_cast<unsigned>(line));
    }
  }
  // It moved on while we looked: the fiber read may be another one.
  if (s.activity() != before) id = 0;
  if (first) w.fiber_id = id;

  const int64_t now = mono_ns();
  if (!take_token(now)) return;
  std::string text;
  char head[512];
  const char* again = first ? "" : " continues";
  if (f != nullptr && id == 0) {
    std::snprintf(head, sizeof head,
                  "fiber: stall%s on scheduler %u: a fiber that has just stopped held the core "
                  "for %s without a switch\n",
                  again, index, ms(ran_ns).c_str());
  } else if (id != 0) {
    std::snprintf(head, sizeof head,
                  "fiber: stall%s on scheduler %u: fiber %" PRIu64
                  " (spawned at %s) has held the core for %s without a switch\n",
                  again, index, id, site_buf, ms(ran_ns).c_str());
  } else {
    std::snprintf(head, sizeof head,
                  "fiber: stall%s on scheduler %u: the scheduler loop (no fiber) has not turned "
                  "for %s\n",
                  again, index, ms(ran_ns).c_str());
  }
  text += head;
  if (suppressed_ > 0) {
    text += "  (" + std::to_string(suppressed_) + " stall reports were suppressed: rate limit)\n";
    suppressed_ = 0;
  }

  // The stack: unwound by the thread itself when it runs user code, scanned
  // from here when it waits in the kernel (a signal would cut that wait short
  // where SA_RESTART does not apply: sleeps, poll, socket timeouts).
  // The stack goes with the first report only; the later ones say it lasts.
  const pid_t tid = s.tid();
  const char state = first ? thread_state(tid) : 0;
  bool have_stack = false;
  if (state == 'R') {
    StallProbe& probe = s.probe();
    int idle = StallProbe::kIdle;
    if (probe.state.compare_exchange_strong(idle, StallProbe::kRequested,
                                            std::memory_order_release) &&
        syscall(SYS_tgkill, getpid(), tid, SIGURG) == 0) {
      const int64_t until = mono_ns() + kProbeWaitNs;
      while (probe.state.load(std::memory_order_acquire) != StallProbe::kDone &&
             mono_ns() < until) {
        usleep(100);
      }
      int requested = StallProbe::kRequested;
      if (!probe.state.compare_exchange_strong(requested, StallProbe::kIdle,
                                               std::memory_order_acquire)) {
        // The handler took it: wait for it to finish, it does not block.
        while (probe.state.load(std::memory_order_acquire) != StallProbe::kDone) usleep(100);
        text += "  stack of thread " + std::to_string(tid) + " (unwound in the thread):\n";
        append_frames(text, probe.pcs, probe.depth, /*first_is_pc=*/false);
        have_stack = true;
        probe.state.store(StallProbe::kIdle, std::memory_order_relaxed);
      }
    } else if (probe.state.load(std::memory_order_relaxed) == StallProbe::kRequested) {
      probe.state.store(StallProbe::kIdle, std::memory_order_relaxed);
    }
    if (!have_stack) text += "  (no stack: the thread did not answer the SIGURG probe)\n";
  } else if (state != 0) {
    std::istringstream sc(read_file("/proc/self/task/" + std::to_string(tid) + "/syscall"));
    long nr = -1;
    sc >> nr;
    std::string word;
    std::vector<std::string> words;
    while (sc >> word) words.push_back(word);
    if (nr >= 0 && words.size() >= 8) {
      uintptr_t sp = std::stoull(words[6], nullptr, 16);
      uintptr_t pc = std::stoull(words[7], nullptr, 16);
      const char* name = syscall_name(nr);
      text += "  thread " + std::to_string(tid) + " is blocked in the system call " +
              (name != nullptr ? std::string(name) : "#" + std::to_string(nr)) +
              ": a blocking call on a fiber holds the whole core (use fiber I/O or "
              "fiber::spawn_blocking)\n";
      void* pcs[StallProbe::kMaxFrames];
      pcs[0] = reinterpret_cast<void*>(pc);
      int n = 1 + scan_stack(sp, pcs + 1, StallProbe::kMaxFrames - 1);
      text += "  stack (scanned from the stack pointer, not unwound: may show stale frames):\n";
      append_frames(text, pcs, n, /*first_is_pc=*/true);
      have_stack = true;
    }
    if (!have_stack) text += "  (no stack: /proc/self/task/<tid>/syscall is unreadable)\n";
  } else if (first) {
    text += "  (no stack: cannot read /proc/self/task/" + std::to_string(tid) +
            "/stat: " + std::strerror(errno) + ")\n";
  }
  if (!again[0]) {
    text +=
        "  (a fiber holds its core until it makes a runtime call; call fiber::maybe_yield() in "
        "long loops; reported again while it lasts; Options::stall_threshold)\n";
  }
  emit(text);
}

void Monitor::report_end(unsigned index, const Watch& w, int64_t ran_ns) {
  runtime_.scheduler(index).record_stall(false, static_cast<uint64_t>(ran_ns));
  char line[256];
  if (w.fiber_id != 0) {
    std::snprintf(line, sizeof line,
                  "fiber: stall on scheduler %u ended: fiber %" PRIu64
                  " held the core for about %s\n",
                  index, w.fiber_id, ms(ran_ns).c_str());
  } else {
    std::snprintf(line, sizeof line, "fiber: stall on scheduler %u ended after about %s\n", index,
                  ms(ran_ns).c_str());
  }
  emit(line);
}

void Monitor::set_responsive(unsigned index, bool responsive) {
  {
    // The watches first: whoever sees the flag change sees what they did.
    ThreadLock g(watch_mu_);
    for (HealthWatch* w : health_watches_) w->notify(index, responsive);
  }
  responsive_[index].store(responsive, std::memory_order_release);
}

void Monitor::add_watch(HealthWatch* w) {
  ThreadLock g(watch_mu_);
  health_watches_.push_back(w);
}

void Monitor::remove_watch(HealthWatch* w) {
  ThreadLock g(watch_mu_);
  std::erase(health_watches_, w);
}

void Monitor::emit(const std::string& text) { write_stderr(text); }

void write_stderr(const std::string& text) {
  // One write, so that reports of two runtimes or a user's lines do not mix.
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(STDERR_FILENO, text.data() + off, text.size() - off);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace fiber::detail
