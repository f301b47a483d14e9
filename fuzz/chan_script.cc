// fuzz/chan_script: scripts of channel, select, timer and context operations,
// run by the real runtime (Chan, select, Context, sleep, yield, go) on one
// scheduler with the epoll driver and the virtual clock of sched/testing/test_hooks.h.
// See README.md.
//
// The input is decoded, before the run, into a few channels (capacity 0-3),
// two contexts (a cancellable root and a child with a timeout) and up to six
// fiber scripts. Every sent value is unique (fiber and step), so the checks can
// follow each value:
//  1. received values were sent successfully, each is received at most once,
//     and none is lost: at the end, sent = received + what the buffers hold;
//  2. after close() returned, no send succeeds; after a receive reported the
//     channel closed (closed and drained), no receive gets a value;
//  3. len() never exceeds cap();
//  4. no fiber is woken twice (checked inside the scheduler by the test hooks);
//  5. the deadlock hook runs only when every live fiber is parked in a channel
//     or context operation (not running, yielding or sleeping); it then closes
//     every channel and cancels the root context, after which every script
//     must run to its end: a second deadlock is a failure, and a run that never
//     ends is a libFuzzer timeout;
//  6. the run is deterministic: the same input run twice gives the same trace.
#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "fiber/cancellation.h"
#include "fiber/chan.h"
#include "fiber/fiber.h"
#include "fiber/select.h"
#include "fiber/wait_group.h"
#include "sched/testing/test_hooks.h"

namespace {

using std::chrono::milliseconds;

[[noreturn]] void fail(const char* what, uint64_t a = 0, uint64_t b = 0) {
  std::fprintf(stderr, "chan_script oracle failed: %s (%llu, %llu)\n", what,
               static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
  std::abort();
}

enum OpKind : uint8_t {
  kSend,         // ch[a].send(v)
  kSendCtx,      // ch[a].send(ctx[d&1], v)
  kRecv,         // ch[a].recv()
  kRecvCtx,      // ch[a].recv(ctx[d&1])
  kTrySend,      // ch[a].try_send(v)
  kTryRecv,      // ch[a].try_recv()
  kClose,        // ch[a].close()
  kSelectRR,     // select(recv a, recv b)
  kSelectRSD,    // select(recv a, send b, default)
  kSelectSRT,    // select(send a, recv b, timeout d ms)
  kSelectRDone,  // select(recv a, ctx[d&1].done())
  kSleep,        // sleep_for(d ms)
  kSleepCtx,     // sleep_for(ctx[d&1], d ms)
  kYield,        // yield()
  kCancel,       // cancel ctx[d&1]
  kSpawn,        // start script a (once)
  kLen,          // len() <= cap()
  kOpKinds,
};

constexpr const char* kOpNames[] = {
    "send",      "send_ctx",  "recv",       "recv_ctx",   "try_send",     "try_recv",
    "close",     "select_rr", "select_rsd", "select_srt", "select_rdone", "sleep",
    "sleep_ctx", "yield",     "cancel",     "spawn",      "len"};
static_assert(sizeof kOpNames / sizeof kOpNames[0] == kOpKinds);

struct Op {
  uint8_t kind, a, b, d;
};

struct Script {
  std::vector<Op> ops;
  bool at_start = false;
};

struct Plan {
  std::vector<int> caps;
  std::vector<Script> scripts;
  int timeout_ms = 0;
  uint64_t seed = 1;
};

Plan decode(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  Plan plan;
  plan.caps.resize(fdp.ConsumeIntegralInRange<int>(1, 4));
  for (int& c : plan.caps) c = fdp.ConsumeIntegralInRange<int>(0, 3);
  plan.scripts.resize(fdp.ConsumeIntegralInRange<int>(1, 6));
  for (size_t i = 0; i < plan.scripts.size(); ++i) {
    plan.scripts[i].at_start = i == 0 || fdp.ConsumeBool();
  }
  plan.timeout_ms = fdp.ConsumeIntegralInRange<int>(0, 100);
  plan.seed = fdp.ConsumeIntegral<uint32_t>() | 1;  // 0 would mean "not seeded"
  const int nch = static_cast<int>(plan.caps.size());
  const int nsc = static_cast<int>(plan.scripts.size());
  while (fdp.remaining_bytes() >= 2) {
    // With one script the choice consumes no byte: every turn must consume the
    // op's own bytes, kept or not, or a full script would loop for ever.
    Script& s = plan.scripts[fdp.ConsumeIntegralInRange<int>(0, nsc - 1)];
    Op op;
    op.kind = fdp.ConsumeIntegralInRange<uint8_t>(0, kOpKinds - 1);
    op.a = fdp.ConsumeIntegralInRange<uint8_t>(0, 255);
    op.b = static_cast<uint8_t>(fdp.ConsumeIntegralInRange<int>(0, nch - 1));
    op.d = fdp.ConsumeIntegralInRange<uint8_t>(0, 31);
    op.a = static_cast<uint8_t>(op.kind == kSpawn ? op.a % nsc : op.a % nch);
    if (s.ops.size() < 48) s.ops.push_back(op);
  }
  return plan;
}

enum class FiberMark { kNotStarted, kRunning, kParkedInOp, kSleeping, kYielding, kDone };

struct ChanInfo {
  bool closed = false;        // close() returned success
  bool seen_drained = false;  // a receive reported closed and drained
};

// Run is one execution of a plan; it lives on the main fiber's stack.
struct Run {
  const Plan& plan;
  std::vector<fiber::Chan<uint64_t>> chans;
  std::vector<ChanInfo> info;
  fiber::Context ctx[2];
  fiber::CancelFunc cancel[2];
  std::vector<FiberMark> marks;
  fiber::WaitGroup wg;
  bool main_waiting = false;
  bool ending = false;
  std::set<uint64_t> sent, received;
  std::vector<uint64_t> trace;

  explicit Run(const Plan& p) : plan(p), marks(p.scripts.size(), FiberMark::kNotStarted) {}

  void note(uint64_t x) { trace.push_back(x); }

  void start(int i) {
    if (marks[i] != FiberMark::kNotStarted) return;
    marks[i] = FiberMark::kRunning;
    wg.add(1);
    fiber::go([this, i] {
      run_script(i);
      marks[i] = FiberMark::kDone;
      wg.done();
    });
  }

  void sent_ok(int ch, uint64_t v, bool closed_before) {
    if (closed_before) fail("a send succeeded on a closed channel", ch, v);
    if (!sent.insert(v).second) fail("a value sent twice", v);
  }

  // got() records a received value; `drained` is whether, when the receive
  // began, another receive had already found the channel closed and drained
  // (a value handed to a receiver parked before then may arrive later).
  void got(int ch, uint64_t v, bool drained) {
    if (drained) fail("a value received after close and drain", ch, v);
    if (!received.insert(v).second) fail("a value received twice", ch, v);
  }

  void got_closed(int ch) {
    if (!info[ch].closed) fail("a receive reported closed on an open channel", ch);
    info[ch].seen_drained = true;
  }

  void check_len(int ch) {
    if (chans[ch].len() > chans[ch].cap()) fail("len() > cap()", ch, chans[ch].len());
  }

  // parked() marks the fiber as inside an operation that may park, for the
  // deadlock check; the mark goes back to running when it returns.
  struct Parked {
    Run& r;
    int i;
    Parked(Run& run, int fib, FiberMark m) : r(run), i(fib) { r.marks[i] = m; }
    ~Parked() { r.marks[i] = FiberMark::kRunning; }
  };

  void run_script(int i) {
    const Script& s = plan.scripts[i];
    for (size_t step = 0; step < s.ops.size(); ++step) {
      const Op& op = s.ops[step];
      const int a = op.a, b = op.b;
      const uint64_t v = (uint64_t{static_cast<uint32_t>(i)} << 32) | (step + 1);
      const fiber::Context& c = ctx[op.d & 1];
      const bool da = op.kind != kSpawn && info[a].seen_drained;
      const bool db = info[b].seen_drained;
      note(v);
      switch (op.kind) {
        case kSend: {
          bool closed = info[a].closed;
          std::error_code e;
          {
            Parked p(*this, i, FiberMark::kParkedInOp);
            e = chans[a].send(v);
          }
          if (!e) sent_ok(a, v, closed);
          note(e.value());
          break;
        }
        case kSendCtx: {
          bool closed = info[a].closed;
          std::error_code e;
          {
            Parked p(*this, i, FiberMark::kParkedInOp);
            e = chans[a].send(c, v);
          }
          if (!e) sent_ok(a, v, closed);
          note(e.value());
          break;
        }
        case kRecv: {
          std::optional<uint64_t> got_v;
          {
            Parked p(*this, i, FiberMark::kParkedInOp);
            got_v = chans[a].recv();
          }
          if (got_v) {
            got(a, *got_v, da);
            note(*got_v);
          } else {
            got_closed(a);
            note(0);
          }
          break;
        }
        case kRecvCtx: {
          fiber::RecvResult<uint64_t> r;
          {
            Parked p(*this, i, FiberMark::kParkedInOp);
            r = chans[a].recv(c);
          }
          if (r) {
            got(a, *r, da);
            note(*r);
          } else {
            if (r.closed()) got_closed(a);
            note(r.error.value());
          }
          break;
        }
        case kTrySend: {
          bool closed = info[a].closed;
          std::error_code e = chans[a].try_send(v);
          if (!e) sent_ok(a, v, closed);
          note(e.value());
          break;
        }
        case kTryRecv: {
          fiber::RecvResult<uint64_t> r = chans[a].try_recv();
          if (r) {
            got(a, *r, da);
            note(*r);
          } else {
            if (r.closed()) got_closed(a);
            note(r.error.value());
          }
          break;
        }
        case kClose: {
          std::error_code e = chans[a].close();
          if (!e) {
            if (info[a].closed) fail("close() succeeded twice", a);
            info[a].closed = true;
          } else if (!info[a].closed) {
            fail("close() failed on an open channel", a);
          }
          note(e.value());
          break;
        }
        case kSelectRR: {
          int which;
          {
            Parked p(*this, i, FiberMark::kParkedInOp);
            which = fiber::select(fiber::on_recv(chans[a],
                                                 [&](std::optional<uint64_t> x) {
                                                   x ? got(a, *x, da) : got_closed(a);
                                                 }),
                                  fiber::on_recv(chans[b], [&](std::optional<uint64_t> x) {
                                    x ? got(b, *x, db) : got_closed(b);
                                  }));
          }
          note(static_cast<uint64_t>(which));
          break;
        }
        case kSelectRSD: {
          bool closed = info[b].closed;
          int which = fiber::select(
              fiber::on_recv(
                  chans[a], [&](std::optional<uint64_t> x) { x ? got(a, *x, da) : got_closed(a); }),
              fiber::on_send(chans[b], v,
                             [&](std::error_code e) {
                               if (!e) sent_ok(b, v, closed);
                             }),
              fiber::on_default());
          note(static_cast<uint64_t>(which));
          break;
        }
        case kSelectSRT: {
          bool closed = info[a].closed;
          int which;
          {
            Parked p(*this, i, FiberMark::kSleeping);  // a timer is armed: no deadlock
            which = fiber::select(fiber::on_send(chans[a], v,
                                                 [&](std::error_code e) {
                                                   if (!e) sent_ok(a, v, closed);
                                                 }),
                                  fiber::on_recv(chans[b],
                                                 [&](std::optional<uint64_t> x) {
                                                   x ? got(b, *x, db) : got_closed(b);
                                                 }),
                                  fiber::on_timeout(milliseconds(op.d)));
          }
          note(static_cast<uint64_t>(which));
          break;
        }
        case kSelectRDone: {
          int which;
          {
            Parked p(*this, i, FiberMark::kParkedInOp);
            which = fiber::select(fiber::on_recv(chans[a],
                                                 [&](std::optional<uint64_t> x) {
                                                   x ? got(a, *x, da) : got_closed(a);
                                                 }),
                                  fiber::on_recv(c.done()));
          }
          if (which == 1 && !c.err()) fail("a context's done() fired while it is live");
          note(static_cast<uint64_t>(which));
          break;
        }
        case kSleep: {
          int64_t before = fiber::detail::now_ns();
          {
            Parked p(*this, i, FiberMark::kSleeping);
            fiber::sleep_for(milliseconds(op.d));
          }
          if (fiber::detail::now_ns() - before < op.d * 1000000ll) fail("woke before the deadline");
          break;
        }
        case kSleepCtx: {
          std::error_code e;
          {
            Parked p(*this, i, FiberMark::kSleeping);  // a timer is armed: no deadlock
            e = fiber::sleep_for(c, milliseconds(op.d));
          }
          note(e.value());
          break;
        }
        case kYield: {
          Parked p(*this, i, FiberMark::kYielding);
          fiber::yield();
          break;
        }
        case kCancel:
          cancel[op.d & 1]();
          if (!ctx[op.d & 1].err()) fail("a cancelled context has no error");
          break;
        case kSpawn:
          start(a);
          break;
        case kLen:
          check_len(a);
          break;
      }
      if (op.kind != kSpawn) check_len(a);
      note(static_cast<uint64_t>(fiber::detail::now_ns()));
    }
  }

  // on_deadlock() is the scheduler's deadlock hook (test_hooks.h).
  void on_deadlock() {
    if (!main_waiting) fail("deadlock reported while main runs");
    for (size_t i = 0; i < marks.size(); ++i) {
      FiberMark m = marks[i];
      if (m == FiberMark::kRunning || m == FiberMark::kYielding || m == FiberMark::kSleeping) {
        fail("deadlock reported while a fiber is not parked in an operation", i,
             static_cast<uint64_t>(m));
      }
    }
    if (ending) fail("deadlock after every channel was closed and the root context cancelled");
    ending = true;
    note(0xdead);
    // End the run: every parked operation returns (closed or cancelled).
    for (size_t i = 0; i < chans.size(); ++i) {
      if (!info[i].closed) {
        if (chans[i].close()) fail("close() failed on an open channel", i);
        info[i].closed = true;
      }
    }
    cancel[0]();
  }

  void finish() {
    // Whatever was sent and not received is still buffered: drain it.
    for (size_t i = 0; i < chans.size(); ++i) {
      while (auto r = chans[i].try_recv()) got(static_cast<int>(i), *r, info[i].seen_drained);
      check_len(static_cast<int>(i));
    }
    if (received != sent) {
      for (uint64_t v : received) {
        if (!sent.count(v)) fail("received a value never sent successfully", v);
      }
      for (uint64_t v : sent) {
        if (!received.count(v)) fail("a value sent successfully was lost", v);
      }
    }
  }
};

Run* g_run = nullptr;

std::vector<uint64_t> execute(const Plan& plan) {
  std::vector<uint64_t> trace;
  fiber::detail::test::set_virtual_clock(true, 1'000'000'000);
  fiber::detail::test::set_rand_seed(plan.seed);
  fiber::detail::test::set_deadlock_hook([](void*) { g_run->on_deadlock(); }, nullptr);
  fiber::Options opt;
  opt.schedulers = 1;
  opt.driver = fiber::DriverKind::kEpoll;
  opt.pinning = fiber::Pinning::kUnpinned;
  opt.blocking_threads = 1;
  opt.idle_spin = std::chrono::nanoseconds(0);
  fiber::run(
      [&] {
        Run run(plan);
        for (int cap : plan.caps) run.chans.push_back(*fiber::Chan<uint64_t>::make(cap));
        run.info.resize(plan.caps.size());
        auto root = fiber::with_cancel(fiber::background());
        auto child = fiber::with_timeout(root.ctx, milliseconds(plan.timeout_ms));
        run.ctx[0] = root.ctx;
        run.cancel[0] = root.cancel;
        run.ctx[1] = child.ctx;
        run.cancel[1] = child.cancel;
        g_run = &run;
        for (size_t i = 0; i < plan.scripts.size(); ++i) {
          if (plan.scripts[i].at_start) run.start(static_cast<int>(i));
        }
        run.main_waiting = true;
        run.wg.wait();
        run.main_waiting = false;
        run.finish();
        g_run = nullptr;
        trace = std::move(run.trace);
      },
      opt);
  fiber::detail::test::set_deadlock_hook(nullptr, nullptr);
  fiber::detail::test::set_rand_seed(0);
  fiber::detail::test::set_virtual_clock(false);
  return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Plan plan = decode(data, size);
  std::vector<uint64_t> first = execute(plan);
  std::vector<uint64_t> second = execute(plan);
  if (first != second) fail("two runs of one input differ", first.size(), second.size());
  if (std::getenv("CHAN_SCRIPT_VERBOSE") != nullptr) {  // to check what a seed does
    std::fprintf(stderr, "channels:");
    for (int c : plan.caps) std::fprintf(stderr, " cap %d", c);
    std::fprintf(stderr, "; timeout %d ms; seed %llu\n", plan.timeout_ms,
                 static_cast<unsigned long long>(plan.seed));
    for (size_t i = 0; i < plan.scripts.size(); ++i) {
      std::fprintf(stderr, "fiber %zu%s:", i, plan.scripts[i].at_start ? " (at start)" : "");
      for (const Op& op : plan.scripts[i].ops) {
        std::fprintf(stderr, " %s(%d,%d,%d)", kOpNames[op.kind], op.a, op.b, op.d);
      }
      std::fprintf(stderr, "\n");
    }
    std::fprintf(stderr, "trace:");
    for (uint64_t x : first) std::fprintf(stderr, " %llx", static_cast<unsigned long long>(x));
    std::fprintf(stderr, "\n");
  }
  return 0;
}
