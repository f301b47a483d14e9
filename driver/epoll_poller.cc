// The epoll driver. The scheduler's sleep is epoll_pwait2 with the next timer's
// deadline (nanosecond precision); the doorbell is a non-blocking eventfd. An
// operation is tried as a non-blocking syscall; on EAGAIN its fiber parks until
// the fd, registered edge-triggered once, is reported ready.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <system_error>

#include "fiber/blocking.h"
#include "fiber/detail/park.h"
#include "fiber/runtime.h"
#include "io_poller.h"
#include "op_table.h"
#include "sched/internal/scheduler.h"

namespace fiber::detail {
namespace {

constexpr uint64_t kDoorbellTag = 1;

class EpollPoller final : public IoPoller {
 public:
  EpollPoller() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::system_error(errno, std::generic_category(), "fiber: epoll_create1");
    doorbell_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (doorbell_ < 0) {
      int err = errno;
      close(epfd_);
      throw std::system_error(err, std::generic_category(), "fiber: eventfd");
    }
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = kDoorbellTag;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, doorbell_, &ev) != 0) {
      int err = errno;
      close(doorbell_);
      close(epfd_);
      throw std::system_error(err, std::generic_category(), "fiber: epoll_ctl(eventfd)");
    }
  }

  ~EpollPoller() override {
    close(doorbell_);
    close(epfd_);
  }

  bool has_pending() const override { return in_flight() > 0; }

  int socket_flags() const override { return SOCK_NONBLOCK; }

  int32_t execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns) override {
    (void)deadline_ns;  // a non-blocking attempt ends at once
    const OpTraits& traits = op_traits(req.kind);
    if (traits.file) return execute_on_pool(h, traits, req);
    if (int32_t err = enroll(h)) return err;
    // An edge that comes from now on is news to the wait that may follow.
    if (int events = readiness(traits, req))
      ((events & POLLIN) ? h.read_ready : h.write_ready) = false;
    return traits.try_now(req);
  }

  int32_t wait(IoHandle& h, int events, int64_t deadline_ns) override {
    const bool input = (events & POLLIN) != 0;
    bool& edge = input ? h.read_ready : h.write_ready;
    if (edge) {  // it came after the attempt: look again at once
      edge = false;
      return events;
    }
    if (deadline_ns > 0 && now_ns() >= deadline_ns) return -ETIMEDOUT;
    if (int32_t err = enroll(h)) return err;
    IoOp op;
    op.fiber = current_fiber("fiber: I/O");
    op.seq = h.started.load(std::memory_order_relaxed);
    op.input = input;
    park_op(h, op, deadline_ns);  // until an edge, a cancel or the deadline
    const int32_t r = op_result(op);
    return r < 0 ? r : events;
  }

  bool wake_spuriously(IoHandle& h) override {
    bool woke = false;
    for (IoOp* op = h.ops.front(); op != nullptr; op = op->next) {
      if (op->state != OpState::kInFlight) continue;
      woke = true;
      complete(*op, 0);  // wait() returns and io_execute() tries the syscall again
    }
    return woke;
  }

  void forget(IoHandle& h) override {
    if (h.registered) epoll_ctl(epfd_, EPOLL_CTL_DEL, h.fd, nullptr);
    h.registered = false;
  }

  void poll(int64_t timeout_ns) override {
    struct epoll_event events[64];
    int n = -1;
    errno = ENOSYS;
    if (!no_pwait2_ && timeout_ns < 0) {
      n = epoll_pwait2(epfd_, events, 64, nullptr, nullptr);
    } else if (!no_pwait2_) {
      struct timespec ts;
      ts.tv_sec = timeout_ns / 1000000000;
      ts.tv_nsec = timeout_ns % 1000000000;
      n = epoll_pwait2(epfd_, events, 64, &ts, nullptr);
    }
    // Kernel before 5.11 (or valgrind 3.19): millisecond timeouts, and no
    // epoll_pwait2 tried again.
    if (n < 0 && errno == ENOSYS) {
      no_pwait2_ = true;
      int ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999999) / 1000000);
      n = epoll_wait(epfd_, events, 64, ms);
    }
    if (n < 0 && errno == EINTR) {
      interrupted_.store(interrupted_.load(std::memory_order_relaxed) + 1,
                         std::memory_order_relaxed);
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kDoorbellTag) {
        eventfd_t value;
        eventfd_read(doorbell_, &value);  // EAGAIN if another read drained it: fine
        continue;
      }
      auto* h = static_cast<IoHandle*>(events[i].data.ptr);
      uint32_t ev = events[i].events;
      bool in = (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
      bool out = (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
      bool woke_in = false, woke_out = false;
      // Every waiter of a ready direction retries: with edge-triggered readiness
      // there may be no further edge for one left parked.
      for (IoOp* op = h->ops.front(); op != nullptr; op = op->next) {
        if (op->state != OpState::kInFlight) continue;
        if (op->input ? in : out) {
          (op->input ? woke_in : woke_out) = true;
          complete(*op, 0);
        }
      }
      if (in && !woke_in) h->read_ready = true;
      if (out && !woke_out) h->write_ready = true;
    }
  }

  void wake() override { eventfd_write(doorbell_, 1); }

  void add_stats(SchedulerStats& stats) const override {
    stats.waits_interrupted = interrupted_.load(std::memory_order_relaxed);
  }

 private:
  // enroll() registers `h` in the epoll set, once, edge-triggered for both
  // directions: 0 or -errno.
  int32_t enroll(IoHandle& h) {
    if (h.registered) return 0;
    struct epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &h;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, h.fd, &ev) != 0) return -errno;
    h.registered = true;
    return 0;
  }

  // execute_on_pool() runs a file request on the spawn_blocking() pool. The op
  // is linked while it runs, so close() waits for it: the fd cannot be closed
  // (and its number reused) under the pool thread.
  int32_t execute_on_pool(IoHandle& h, const OpTraits& traits, const IoRequest& req) {
    IoOp op;
    op.fiber = current_fiber("fiber: I/O");
    op.seq = h.started.load(std::memory_order_relaxed);
    op.state = OpState::kUnstoppable;
    link_op(h, &op);
    int32_t r = 0;
    run_blocking([&]() noexcept { r = traits.try_now(req); });
    unlink_op(h, &op);
    return r;
  }

  // abort() completes a readiness wait at once: nothing is in the kernel.
  void abort(IoOp& op) override { complete(op, -ECANCELED); }

  // Written by this thread only, read by add_stats() from any thread.
  std::atomic<uint64_t> interrupted_{0};
  int epfd_ = -1;
  bool no_pwait2_ = false;  // epoll_pwait2 failed with ENOSYS once
  int doorbell_ = -1;
};

}  // namespace

std::unique_ptr<Poller> make_epoll_poller() { return std::make_unique<EpollPoller>(); }

}  // namespace fiber::detail
