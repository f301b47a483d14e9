// Context: the shared state behind a context handle, its cancellation and its
// deadline timer.
//
// A child holds its parent (so an ancestor's cancellation reaches it even if the
// intermediate handles are gone); a parent knows its children by weak pointer,
// pruned as they die. cancel() sets err under the lock exactly once, then, with
// the lock released: closes done (waking every fiber parked on it, on any core),
// cancels the children and runs the hooks.
#include "fiber/cancellation.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"
#include "fiber/runtime.h"
#include "timer_core.h"

namespace fiber {
namespace detail {
namespace {

enum HookPhase : uint8_t {
  kIdle,        // never registered (background) or ran at registration
  kRegistered,  // in the context's list; cancel() moves it to kRunning, stop() to kStopped
  kRunning,     // the canceller is running it; the canceller moves it to kDone
  kDone,        // it ran
  kStopped,     // stop() took it off the list before it ran
};

}  // namespace

class ContextState {
 public:
  ContextState(std::shared_ptr<ContextState> parent, int64_t deadline_ns)
      : done(*Chan<Done>::make(0)), deadline_ns(deadline_ns), parent_(std::move(parent)) {}
  ~ContextState() {
    if (timer != nullptr) {
      timer->stop();
      timer->unref();
    }
  }

  // cancel() ends the context with `why` (and cause() `cause`, {}: `why`).
  void cancel(std::error_code why, std::error_code cause = {});
  std::error_code err() {
    mu.lock();
    std::error_code e = err_;
    mu.unlock();
    return e;
  }
  std::error_code cause() {
    mu.lock();
    std::error_code e = cause_;
    mu.unlock();
    return e;
  }
  // adopt() registers a child; false (and the child is not kept) if this context
  // already ended, with the reason in *why and the cause in *cause.
  bool adopt(const std::shared_ptr<ContextState>& child, std::error_code* why,
             std::error_code* cause);

  const Chan<Done> done;
  const int64_t deadline_ns;   // now_ns() clock; -1: none
  TimerCore* timer = nullptr;  // set before the state is shared; then immutable

  // link_hook() registers `h`; false if the context already ended.
  bool link_hook(CancelHook* h) {
    mu.lock();
    if (err_) {
      mu.unlock();
      return false;
    }
    h->prev_ = nullptr;
    h->next_ = hooks_;
    if (hooks_ != nullptr) hooks_->prev_ = h;
    hooks_ = h;
    h->phase_.store(kRegistered, std::memory_order_relaxed);
    mu.unlock();
    return true;
  }
  // unlink_hook() takes a registered `h` off the list.
  void unlink_hook(CancelHook* h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (h->prev_ != nullptr) {
      h->prev_->next_ = h->next_;
    } else {
      hooks_ = h->next_;
    }
    if (h->next_ != nullptr) h->next_->prev_ = h->prev_;
    h->prev_ = h->next_ = nullptr;
  }

  SpinLock mu;

 private:
  std::shared_ptr<ContextState> parent_;
  CancelHook* hooks_ ABSL_GUARDED_BY(mu) = nullptr;
  std::error_code err_ ABSL_GUARDED_BY(mu);    // written once
  std::error_code cause_ ABSL_GUARDED_BY(mu);  // written with err_
  std::vector<std::weak_ptr<ContextState>> children_ ABSL_GUARDED_BY(mu);
  size_t prune_at_ ABSL_GUARDED_BY(mu) = 16;
};

namespace {

// DeadlineTimer ends its context with timed_out.
class DeadlineTimer final : public TimerCore {
 public:
  explicit DeadlineTimer(std::weak_ptr<ContextState> ctx)
      : TimerCore("fiber::with_deadline"), ctx_(std::move(ctx)) {}

 private:
  void deliver_unlocked() override {
    if (std::shared_ptr<ContextState> s = ctx_.lock()) {
      s->cancel(ContextError::kDeadlineExceeded);
    }
  }
  std::weak_ptr<ContextState> ctx_;
};

}  // namespace

bool ContextState::adopt(const std::shared_ptr<ContextState>& child, std::error_code* why,
                         std::error_code* cause) {
  mu.lock();
  if (err_) {
    *why = err_;
    *cause = cause_;
    mu.unlock();
    return false;
  }
  if (children_.size() >= prune_at_) {  // amortised: each prune at least halves the work
    std::erase_if(children_, [](const std::weak_ptr<ContextState>& w) { return w.expired(); });
    prune_at_ = std::max<size_t>(16, 2 * children_.size());
  }
  children_.push_back(child);
  mu.unlock();
  return true;
}

void ContextState::cancel(std::error_code why, std::error_code cause) {
  if (!cause) cause = why;
  const std::thread::id me = std::this_thread::get_id();
  const uint64_t my_fiber = current_id();
  mu.lock();
  if (err_) {
    mu.unlock();
    return;
  }
  err_ = why;
  cause_ = cause;
  std::vector<std::weak_ptr<ContextState>> children = std::move(children_);
  children_.clear();
  CancelHook* run = hooks_;
  hooks_ = nullptr;
  for (CancelHook* h = run; h != nullptr; h = h->next_) {
    h->phase_.store(kRunning, std::memory_order_relaxed);
    h->runner_ = me;
    h->runner_fiber_ = my_fiber;
  }
  mu.unlock();

  (void)done.close();
  for (auto& w : children) {
    if (std::shared_ptr<ContextState> c = w.lock()) c->cancel(why, cause);
  }
  while (CancelHook* h = run) {
    run = h->next_;  // read before kDone: then h may be gone
    h->f_();
    h->phase_.store(kDone, std::memory_order_release);  // pairs with stop()'s acquire
  }
  if (timer != nullptr) timer->stop();  // from the owner core, frees the heap slot now
}

WithCancel derive_context(const ::fiber::Context& parent, int64_t deadline_ns) {
  const std::shared_ptr<ContextState>& p = parent.state_;
  int64_t dl = deadline_ns;
  const bool parent_earlier =
      p != nullptr && p->deadline_ns >= 0 && (dl < 0 || p->deadline_ns <= dl);
  if (parent_earlier) dl = p->deadline_ns;
  auto s = std::make_shared<ContextState>(p, dl);
  // Our own timer only when our deadline is earlier than the parent's: otherwise
  // the parent's timer ends us with the same error.
  bool expired = false;
  if (dl >= 0 && !parent_earlier) {
    const int64_t left = dl - now_ns();
    if (left <= 0) {
      expired = true;
    } else {
      s->timer = new DeadlineTimer(s);  // throws off a scheduler thread
      s->timer->reset(left, 0);
    }
  }
  std::error_code why, cause;
  if (p != nullptr && !p->adopt(s, &why, &cause)) {
    s->cancel(why, cause);
  } else if (expired) {
    s->cancel(ContextError::kDeadlineExceeded);
  }
  WithCancel r{Context(s), CancelFunc(s)};
  r.ctx.values_ = parent.values_;
  return r;
}

}  // namespace detail

Chan<Done> Context::done() const { return state_ ? state_->done : Chan<Done>(); }

std::error_code Context::err() const { return state_ ? state_->err() : std::error_code(); }

std::optional<TimePoint> Context::deadline() const {
  if (!state_ || state_->deadline_ns < 0) return std::nullopt;
  return TimePoint(std::chrono::nanoseconds(state_->deadline_ns));
}

std::error_code Context::cause() const { return state_ ? state_->cause() : std::error_code(); }

void CancelFunc::operator()() const {
  if (state_) state_->cancel(ContextError::kCanceled);
}

void CancelCauseFunc::operator()(std::error_code cause) const {
  if (state_) state_->cancel(ContextError::kCanceled, cause);
}

WithCancelCause with_cancel_cause(const Context& parent) {
  WithCancel c = detail::derive_context(parent, -1);
  return WithCancelCause{c.ctx, CancelCauseFunc(c.ctx.state_)};
}

CancelHook::CancelHook(const Context& ctx, absl::AnyInvocable<void()> f)
    : state_(ctx.state_), f_(std::move(f)) {
  if (!state_ || !f_) return;
  if (state_->link_hook(this)) return;
  // Already ended: run now, on this thread.
  phase_.store(detail::kRunning, std::memory_order_relaxed);
  f_();
  phase_.store(detail::kDone, std::memory_order_release);
}

bool CancelHook::stop() {
  if (!state_) return false;
  state_->mu.lock();
  const uint8_t phase = phase_.load(std::memory_order_relaxed);
  if (phase == detail::kRegistered) {
    state_->unlink_hook(this);
    phase_.store(detail::kStopped, std::memory_order_relaxed);
    state_->mu.unlock();
    return true;
  }
  const bool self = runner_ == std::this_thread::get_id() && runner_fiber_ == current_id();
  state_->mu.unlock();
  if (phase == detail::kRunning && !self) {
    // The callback runs on another thread (or, against the rules, parked in
    // another fiber of this one): wait for it to return.
    while (phase_.load(std::memory_order_acquire) != detail::kDone) {
      if (current_id() != 0) {
        fiber::yield();
      } else {
        std::this_thread::yield();
      }
    }
  }
  return false;
}

}  // namespace fiber
