// What the Relacy models of tests/model share: the Relacy include (with the
// workarounds Debian's relacy-dev needs under libstdc++ 12), the runtime's
// SpinLock transcribed onto Relacy atomics, the park()/ready() pair as the
// scheduler provides it across cores, and the main() every model runs.
//
// A model transcribes one protocol of the runtime, with the same memory orders
// and the same locks, onto Relacy's instrumented types: rl::atomic for the
// runtime's std::atomic, rl::var for every plain field that a lock guards (so
// that an access outside the lock is reported as a data race), rl::mutex for
// std::mutex. Compiled with -DBUGGY, a model carries one deliberate mistake
// that Relacy must find (see README.md).
//
// Threading: every model thread stands for one scheduler thread (one core) and
// the fiber running on it; a fiber never changes thread, so that is exact.
#pragma once

// Every standard header must come before <relacy/relacy.hpp>, which defines
// `new`, `delete`, `assert` and the `memory_order_*` names as macros.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

// Not <relacy/relacy_std.hpp>: it redeclares std::atomic and friends and does not
// compile against libstdc++ 12. The models use rl:: types directly.
#include <relacy/relacy.hpp>

namespace model {

// Relacy's macros turn `memory_order_acquire` into `mo_acquire, $` (the order and
// the call site), so the models write the runtime's orders without `std::` and
// these names make the expansion resolve.
using rl::mo_acq_rel;
using rl::mo_acquire;
using rl::mo_relaxed;
using rl::mo_release;
using rl::mo_seq_cst;

// SpinLock mirrors fiber::detail::SpinLock (fiber/detail/park.h): the same
// exchange(acquire) / store(release) pair. The spin yields to Relacy's
// scheduler, as __builtin_ia32_pause() lets the other core run.
class SpinLock {
 public:
  SpinLock() : locked_(false) {}

  void lock() {
    for (;;) {
      if (!locked_.exchange(true, memory_order_acquire)) return;
      while (locked_.load(memory_order_relaxed)) rl::yield(1, $);
    }
  }
  void unlock() { locked_.store(false, memory_order_release); }

 private:
  rl::atomic<bool> locked_;
};

// Fiber is a fiber that parks on one core and is readied from another.
//
// In the runtime, ready() of a fiber owned by another scheduler pushes it to that
// scheduler's inbox under inbox_mu_ (Scheduler::post), and the fiber runs again
// only after its scheduler drained the inbox under the same mutex: the waker's
// writes before ready() happen before the fiber's reads after park(). The inbox
// and the doorbell are checked by park_doorbell.cc and inbox.cc; here they are a
// mutex-guarded count, which gives that same happens-before edge and nothing
// more.
//
// ready() asserts the fiber was not readied already (the park protocol: exactly
// one ready() per park()); a lost ready() leaves the fiber blocked, which Relacy
// reports as a deadlock once every thread is blocked.
class Fiber {
 public:
  Fiber() : wakes_(0) {}

  // ready() is detail::ready() for a fiber of another core. Thread-safe.
  void ready() {
    mu_.lock($);
    RL_ASSERT(wakes_($) == 0);  // woken twice for one park()
    wakes_($) = 1;
    cv_.notify_one($);
    mu_.unlock($);
  }
  // park() is detail::park(): returns once ready() was called. Fiber-only.
  void park() {
    mu_.lock($);
    while (wakes_($) == 0) cv_.wait(mu_, $);
    wakes_($) = 0;
    mu_.unlock($);
  }
  // idle() is true if no ready() is pending (checked at the end of a model).
  bool idle() {
    mu_.lock($);
    bool idle = wakes_($) == 0;
    mu_.unlock($);
    return idle;
  }

 private:
  rl::mutex mu_;
  rl::condition_variable cv_;
  rl::var<int> wakes_;  // guarded by mu_
};

// IntrusiveList mirrors detail::IntrusiveList (fiber/detail/park.h): a FIFO of
// nodes that carry their own links (`prev`, `next`, `linked`, here rl::var so
// that an access outside the owner's lock is a data race). Guarded by its
// owner's lock.
template <class Node>
class IntrusiveList {
 public:
  IntrusiveList() : head_(nullptr), tail_(nullptr) {}

  Node* front() { return head_($); }

  void push_back(Node* n) {
    Node* tail = tail_($);
    n->next($) = nullptr;
    n->prev($) = tail;
    if (tail != nullptr) {
      tail->next($) = n;
    } else {
      head_($) = n;
    }
    tail_($) = n;
    n->linked($) = true;
  }

  Node* pop_front() {
    Node* n = head_($);
    if (n != nullptr) remove(n);
    return n;
  }

  // remove() unlinks `n`; a node not linked is left alone.
  void remove(Node* n) {
    if (!n->linked($)) return;
    Node* prev = n->prev($);
    Node* next = n->next($);
    if (prev != nullptr) {
      prev->next($) = next;
    } else {
      head_($) = next;
    }
    if (next != nullptr) {
      next->prev($) = prev;
    } else {
      tail_($) = prev;
    }
    n->prev($) = nullptr;
    n->next($) = nullptr;
    n->linked($) = false;
  }

 private:
  rl::var<Node*> head_;
  rl::var<Node*> tail_;
};

// Waiter mirrors detail::Waiter: a parked fiber's entry in a Mutex, CondVar or
// WaitGroup list, on that fiber's stack.
struct Waiter {
  explicit Waiter(Fiber* f) : fiber(f), prev(nullptr), next(nullptr), linked(false) {}
  Fiber* const fiber;
  rl::var<Waiter*> prev;
  rl::var<Waiter*> next;
  rl::var<bool> linked;
};

using WaitList = IntrusiveList<Waiter>;

// Doorbell is a poller's eventfd (Poller::wake(), driver/uring_poller.cc and
// driver/epoll_poller.cc): wake() adds one to the counter; poll() with no timer waits until it is
// non-zero and reads it back to zero (the kernel's lock is the mutex).
class Doorbell {
 public:
  Doorbell() : count_(0) {}

  // wake() is Poller::wake(). Thread-safe.
  void wake() {
    mu_.lock($);
    count_($) += 1;
    cv_.notify_one($);
    mu_.unlock($);
  }
  // poll() is Poller::poll(-1): returns after a wake(), earlier or later. Core-local.
  void poll() {
    mu_.lock($);
    while (count_($) == 0) cv_.wait(mu_, $);
    count_($) = 0;
    mu_.unlock($);
  }

 private:
  rl::mutex mu_;
  rl::condition_variable cv_;
  rl::var<int> count_;  // guarded by mu_
};

// Search says how a model is explored.
struct Search {
  rl::scheduler_type_e type;
  uint64_t iterations;     // random search: how many random schedules
  unsigned context_bound;  // context-bound search: preemptions per execution

  // full() tries every interleaving (and every value a relaxed load may read).
  static Search full() { return {rl::fair_full_search_scheduler_type, 0, 0}; }
  // bounded() tries every interleaving with at most `k` preemptions.
  static Search bounded(unsigned k) { return {rl::fair_context_bound_scheduler_type, 0, k}; }
  // random() tries `n` random interleavings.
  static Search random(uint64_t n) { return {rl::random_scheduler_type, n, 0}; }
};

// Runner explores a model in one or more configurations and turns the outcome
// into the process's exit code: 0 when Relacy found nothing, 1 when it reported
// a failure (printed with the failing iteration), 2 on a usage error.
//
// Flags: --expect-failure inverts that: 0 only if some configuration failed with
// `mutant_fails`, the failure the model's -DBUGGY mistake must cause, so that a
// mutant is checked for the right reason; --history prints the failing execution
// step by step; --iterations N overrides the random searches' count.
class Runner {
 public:
  Runner(int argc, char** argv, const char* name, rl::test_result_e mutant_fails)
      : name_(name), mutant_fails_(mutant_fails), null_(nullptr) {
    for (int i = 1; i < argc; ++i) {
      if (std::strcmp(argv[i], "--expect-failure") == 0) {
        expect_failure_ = true;
      } else if (std::strcmp(argv[i], "--history") == 0) {
        history_ = true;
      } else if (std::strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
        iterations_ = std::strtoull(argv[++i], nullptr, 10);
      } else {
        std::fprintf(stderr, "usage: %s [--expect-failure] [--history] [--iterations N]\n",
                     argv[0]);
        usage_error_ = true;
      }
    }
  }

  // check() explores `Model` with `search`; `what` names the configuration.
  // After a failure the remaining checks are skipped.
  template <class Model>
  void check(const char* what, Search search) {
    if (usage_error_ || failed_) return;
    rl::test_params p;
    p.search_type = search.type;
    p.iteration_count = iterations_ != 0 ? iterations_ : search.iterations;
    p.context_bound = search.context_bound;
    // On a failure Relacy replays the failing execution and prints it here.
    p.output_stream = history_ ? &std::cout : &null_;
    p.progress_stream = &null_;
    std::printf("model %s%s [%s]: %s ...\n", name_, kMutant, what, describe(search, p).c_str());
    std::fflush(stdout);
    const bool ok = rl::simulate<Model>(p);
    const unsigned long long n = p.stop_iteration;
    if (ok) {
      std::printf("model %s%s [%s]: PASS (%llu executions)\n", name_, kMutant, what, n);
    } else {
      failed_ = true;
      result_ = p.test_result;
      std::printf("model %s%s [%s]: FAIL: %s at iteration %llu\n", name_, kMutant, what,
                  rl::test_result_str(result_), n);
    }
    std::fflush(stdout);
  }

  // finish() returns the exit code.
  int finish() {
    if (usage_error_) return 2;
    if (!expect_failure_) return failed_ ? 1 : 0;
    if (failed_ && result_ == mutant_fails_) {
      std::printf("model %s%s: failed as it must (%s)\n", name_, kMutant,
                  rl::test_result_str(mutant_fails_));
      return 0;
    }
    std::printf("model %s%s: ERROR: expected Relacy to report %s, got %s\n", name_, kMutant,
                rl::test_result_str(mutant_fails_),
                failed_ ? rl::test_result_str(result_) : "no failure");
    return 1;
  }

 private:
#ifdef BUGGY
  static constexpr const char* kMutant = " (BUGGY)";
#else
  static constexpr const char* kMutant = "";
#endif

  static std::string describe(const Search& s, const rl::test_params& p) {
    switch (s.type) {
      case rl::fair_full_search_scheduler_type:
        return "full search";
      case rl::fair_context_bound_scheduler_type:
        return "every schedule with <= " + std::to_string(p.context_bound) + " preemptions";
      default:
        return std::to_string(p.iteration_count) + " random schedules";
    }
  }

  const char* name_;
  rl::test_result_e mutant_fails_;
  std::ostream null_;  // swallows Relacy's progress lines
  bool expect_failure_ = false;
  bool history_ = false;
  bool usage_error_ = false;
  uint64_t iterations_ = 0;
  bool failed_ = false;
  rl::test_result_e result_ = rl::test_result_success;
};

}  // namespace model
