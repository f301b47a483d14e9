#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>

#include "fiber/detail/sanitizer.h"
#include "fiber/fiber_local.h"
#include "fiber/internal/control_block.h"

#if FIBER_ASAN
#include <sanitizer/lsan_interface.h>
#endif

namespace fiber::detail {

thread_local constinit Fiber* t_current_fiber = nullptr;
void (*fiber_exit)(Fiber* self) = nullptr;

namespace {

char* align_down(char* p, size_t align) {
  return reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(p) & ~(uintptr_t{align} - 1));
}

[[noreturn]] void die_uncaught(const Fiber* f, const char* what) {
  std::fprintf(stderr, "fiber: uncaught exception in fiber %llu: %s\n",
               static_cast<unsigned long long>(f->id), what);
  std::fflush(stderr);
  std::abort();
}

void destroy_fls(Fiber* f) {
  // A destructor may itself use fiber-local storage; loop until nothing is left.
  while (auto* table = f->fls) {
    f->fls = nullptr;
    for (size_t i = table->size(); i-- > 0;) {
      auto [value, destroy] = (*table)[i];
      if (value != nullptr) destroy(value);
    }
    delete table;
  }
}

void fiber_main(Context* self) {
  auto* f = static_cast<Fiber*>(self);
  try {
    f->body->run();
  } catch (const std::exception& e) {
    die_uncaught(f, e.what());
  } catch (...) {
    die_uncaught(f, "an exception not derived from std::exception");
  }
  if (f->body_on_heap) {
    delete f->body;
  } else {
    f->body->~FiberBody();
  }
  f->body = nullptr;
  destroy_fls(f);
  fiber_exit(f);
  __builtin_unreachable();
}

// --- stack overflow reporting ---------------------------------------------

struct sigaction g_previous_segv;

// Formats `v` in decimal into `buf` (async-signal-safe); returns the length.
size_t format_u64(char* buf, unsigned long long v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return n;
}

void write_all(const char* s, size_t n) {
  while (n > 0) {
    // A raw syscall: write() may be the libc hook's (hook/), which must never
    // run in a signal handler.
    auto w = static_cast<ssize_t>(::syscall(SYS_write, STDERR_FILENO, s, n));
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void on_segv(int sig, siginfo_t* info, void* ucontext) {
  Fiber* f = t_current_fiber;
  auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (f != nullptr) {
    auto guard = reinterpret_cast<uintptr_t>(f->stack.base);
    if (addr >= guard && addr < guard + page_size()) {
      char msg[160];
      size_t n = 0;
      auto put = [&](const char* s) {
        size_t len = std::strlen(s);
        std::memcpy(msg + n, s, len);
        n += len;
      };
      put("fiber stack overflow: fiber ");
      n += format_u64(msg + n, f->id);
      put(" used all of its ");
      n += format_u64(msg + n, f->stack.usable());
      put("-byte stack (raise SpawnOptions::stack_size)\n");
      write_all(msg, n);
      std::abort();
    }
  }
  // Not ours: hand the fault to whoever handled it before us.
  if (g_previous_segv.sa_flags & SA_SIGINFO) {
    g_previous_segv.sa_sigaction(sig, info, ucontext);
    return;
  }
  if (g_previous_segv.sa_handler != SIG_DFL && g_previous_segv.sa_handler != SIG_IGN) {
    g_previous_segv.sa_handler(sig);
    return;
  }
  // Default action: reinstall it and return, so the faulting access repeats.
  signal(SIGSEGV, SIG_DFL);
}

}  // namespace

Fiber* create_fiber(StackPool& pool, size_t stack_size, FiberBody* body, bool body_on_heap) {
  Stack s = pool.acquire(stack_size);
  char* sp = align_down(s.top() - sizeof(Fiber), 64);
  Fiber* f = ::new (sp) Fiber();
  f->stack = s;
  f->body_on_heap = body_on_heap;
  f->site_file = body->site.file;
  f->site_line = body->site.line;
  if (body_on_heap) {
    f->body = body;
  } else {
    if (body->size() > s.usable() / 4) {
      f->~Fiber();
      pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
      throw std::length_error("fiber: the spawned callable (" + std::to_string(body->size()) +
                              " bytes) does not fit a quarter of its " +
                              std::to_string(s.usable()) + "-byte stack");
    }
    sp = align_down(sp - body->size(), body->align());
    try {
      f->body = body->move_to(sp);
    } catch (...) {
      f->~Fiber();
      pool.release(s, reinterpret_cast<uintptr_t>(s.top()));
      throw;
    }
  }
  make_context(f, s.bottom(), align_down(sp, 64), &fiber_main);
  return f;
}

void free_fiber(StackPool& pool, Fiber* f) {
  if (f->body != nullptr && f->body_on_heap) {
    // An abandoned fiber (its body never returned): the callable may be in the
    // middle of a call, so it is neither destroyed nor freed. Leaked by design,
    // like the objects on the stack; LeakSanitizer is told so.
#if FIBER_ASAN
    __lsan_ignore_object(f->body);
#endif
  }
  destroy_context(f);
  Stack s = f->stack;
  uintptr_t low_water = f->low_water;
  f->~Fiber();
  pool.release(s, low_water);
}

void install_overflow_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa = {};
    sa.sa_sigaction = &on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
  });
}

SignalStack::SignalStack() {
  size_ = 64 * 1024;
  void* mem = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;  // without it an overflow is still a crash, just unexplained
  stack_t ss = {};
  ss.ss_sp = mem;
  ss.ss_size = size_;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(mem, size_);
    return;
  }
  mem_ = mem;
}

SignalStack::~SignalStack() {
  if (mem_ == nullptr) return;
  stack_t ss = {};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(mem_, size_);
}

// --- fiber-local storage ---------------------------------------------------

namespace {
std::atomic<size_t> g_next_fls_key{0};

Fiber* fls_fiber() {
  Fiber* f = t_current_fiber;
  if (f == nullptr) throw std::logic_error("fiber::FiberLocal: get() called outside a fiber");
  return f;
}
}  // namespace

size_t fls_new_key() { return g_next_fls_key.fetch_add(1, std::memory_order_relaxed); }

void* fls_get(size_t key) {
  Fiber* f = fls_fiber();
  if (f->fls == nullptr || key >= f->fls->size()) return nullptr;
  return (*f->fls)[key].first;
}

void fls_set(size_t key, void* value, void (*destroy)(void*)) {
  Fiber* f = fls_fiber();
  if (f->fls == nullptr) f->fls = new std::vector<std::pair<void*, void (*)(void*)>>();
  if (key >= f->fls->size()) f->fls->resize(key + 1, {nullptr, nullptr});
  (*f->fls)[key] = {value, destroy};
}

}  // namespace fiber::detail
