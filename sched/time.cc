// TimerCore (sched/timer_core.h) and the channel timers of fiber/time.h.
#include "fiber/time.h"

#include <stdexcept>
#include <string>

#include "fiber/internal/resource_counts.h"
#include "fiber/runtime.h"
#include "sched/internal/scheduler.h"
#include "timer_core.h"

namespace fiber {
namespace detail {
namespace {

// ArmedTimers lists the nodes armed in this scheduler thread's heap, each holding
// a reference; the thread releases the ones left when it ends. Core-local.
struct ArmedTimers {
  TimerCore* head = nullptr;
  size_t count = 0;

  void add(TimerCore* t) {
    ++count;
    t->reg_prev = nullptr;
    t->reg_next = head;
    if (head != nullptr) head->reg_prev = t;
    head = t;
  }
  void remove(TimerCore* t) {
    --count;
    if (t->reg_prev != nullptr) {
      t->reg_prev->reg_next = t->reg_next;
    } else {
      head = t->reg_next;
    }
    if (t->reg_next != nullptr) t->reg_next->reg_prev = t->reg_prev;
    t->reg_prev = t->reg_next = nullptr;
  }
  ~ArmedTimers() {
    // The scheduler loop has returned: its heap is never looked at again.
    while (TimerCore* t = head) {
      remove(t);
      t->unref();
    }
  }
};

thread_local ArmedTimers t_armed;

Scheduler* owner_or_throw(const char* api) {
  if (t_scheduler == nullptr) {
    throw std::logic_error(std::string(api) + ": not on a scheduler thread of fiber::run");
  }
  return t_scheduler;
}

}  // namespace

size_t armed_timer_cores() { return t_armed.count; }

TimerCore::TimerCore(const char* api) : owner_(owner_or_throw(api)) {
  fire = &TimerCore::on_fire;
  count_resource(resource_counts().timer_nodes, 1);
}

TimerCore::~TimerCore() { count_resource(resource_counts().timer_nodes, -1); }

void TimerCore::arm_local(int64_t deadline_ns_in) {
  if (armed()) {
    owner_->cancel_timer(this);
  } else {
    ref();  // the heap's reference
    t_armed.add(this);
  }
  deadline_ns = deadline_ns_in;
  armed_gen_ = gen_;
  owner_->add_timer(this);
}

void TimerCore::on_fire(Timer* t) {
  auto* c = static_cast<TimerCore*>(t);
  const int64_t now = now_ns();
  c->mu_.lock();
  const bool deliver = c->active_ && c->armed_gen_ == c->gen_;
  bool rearmed = false;
  if (deliver) {
    c->deliver_locked(now);
    if (c->period_ns_ > 0) {
      int64_t next = c->deadline_ns + c->period_ns_;
      if (next <= now) next = now + c->period_ns_;  // drop missed ticks
      c->deadline_ns = next;
      c->owner_->add_timer(c);
      rearmed = true;
    } else {
      c->active_ = false;
    }
  }
  c->mu_.unlock();
  if (deliver) c->deliver_unlocked();
  if (!rearmed) {
    t_armed.remove(c);
    c->unref();
  }
}

bool TimerCore::stop() {
  mu_.lock();
  const bool was = active_;
  active_ = false;
  ++gen_;
  drain_locked();
  const bool disarm = t_scheduler == owner_ && armed();  // the heap is core-local
  if (disarm) owner_->cancel_timer(this);
  mu_.unlock();
  if (disarm) {
    t_armed.remove(this);
    unref();  // the caller holds another reference
  }
  return was;
}

bool TimerCore::reset(int64_t delay_ns, int64_t period_ns) {
  const int64_t deadline = now_ns() + (delay_ns > 0 ? delay_ns : 0);
  mu_.lock();
  const bool was = active_;
  active_ = true;
  ++gen_;
  period_ns_ = period_ns;
  drain_locked();
  if (t_scheduler == owner_) {
    arm_local(deadline);
    mu_.unlock();
    return was;
  }
  const uint64_t gen = gen_;
  mu_.unlock();
  // Another core: arm on the owner. Until that fiber runs, the old arming (if any)
  // is stale and delivers nothing.
  ref();
  fiber::go_on(owner_->index(), [this, deadline, gen] {
    mu_.lock();
    if (gen_ == gen && active_) arm_local(deadline);
    mu_.unlock();
    unref();
  });
  return was;
}

// ChanTimer sends the firing time into a channel of capacity 1.
class ChanTimer final : public TimerCore {
 public:
  ChanTimer(const char* api, Chan<TimePoint> ch) : TimerCore(api), ch_(std::move(ch)) {}

 private:
  void deliver_locked(int64_t now) override {
    (void)ch_.try_send(TimePoint(std::chrono::nanoseconds(now)));  // full: a dropped tick
  }
  void drain_locked() override { (void)ch_.try_recv(); }

  Chan<TimePoint> ch_;
};

Chan<TimePoint> after_ns(int64_t ns) {
  Chan<TimePoint> ch = *Chan<TimePoint>::make(1);
  auto* t = new ChanTimer("fiber::after", ch);
  t->reset(ns, 0);
  t->unref();  // the heap keeps it until it fires
  return ch;
}

}  // namespace detail

Timer::Timer(int64_t ns, int64_t period_ns) : ch_(*Chan<TimePoint>::make(1)) {
  core_ = new detail::ChanTimer("fiber::Timer", ch_);
  core_->reset(ns, period_ns);
}

Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    if (core_ != nullptr) {
      core_->stop();
      core_->unref();
    }
    core_ = std::exchange(o.core_, nullptr);
    ch_ = std::move(o.ch_);
  }
  return *this;
}

Timer::~Timer() {
  if (core_ != nullptr) {
    core_->stop();
    core_->unref();
  }
}

bool Timer::stop() { return core_ != nullptr && core_->stop(); }

bool Timer::reset_ns(int64_t ns, int64_t period_ns) {
  return core_ != nullptr && core_->reset(ns, period_ns);
}

}  // namespace fiber
