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
#include "sched/internal/scheduler.h"
#include "sched/internal/timer.h"

namespace fiber::detail {
namespace {

constexpr uint64_t kDoorbellTag = 1;

bool waits_for_input(const IoRequest& r) {
  switch (r.kind) {
    case IoKind::kRecv:
    case IoKind::kRead:
    case IoKind::kRecvMsg:
    case IoKind::kAccept:
      return true;
    case IoKind::kPoll:
      return (r.flags & POLLIN) != 0;
    default:
      return false;
  }
}

// try_now() makes the request as a non-blocking syscall: >= 0 or -errno.
int32_t try_now(const IoRequest& r) {
  ssize_t n = -1;
  switch (r.kind) {
    case IoKind::kRecv:
      n = ::recv(r.fd, r.buf, r.len, r.flags | MSG_DONTWAIT);
      break;
    case IoKind::kSend:
      n = ::send(r.fd, r.buf, r.len, r.flags | MSG_DONTWAIT | MSG_NOSIGNAL);
      break;
    case IoKind::kRead:
      n = ::read(r.fd, r.buf, r.len);
      break;
    case IoKind::kWrite:
      n = ::write(r.fd, r.buf, r.len);
      break;
    case IoKind::kAccept:
      n = ::accept4(r.fd, r.addr, r.addrlen, SOCK_CLOEXEC | SOCK_NONBLOCK);
      break;
    case IoKind::kConnect:
      n = ::connect(r.fd, r.addr, static_cast<socklen_t>(r.len));
      break;
    case IoKind::kRecvMsg:
      n = ::recvmsg(r.fd, r.msg, r.flags | MSG_DONTWAIT);
      break;
    case IoKind::kSendMsg:
      n = ::sendmsg(r.fd, r.msg, r.flags | MSG_DONTWAIT | MSG_NOSIGNAL);
      break;
    case IoKind::kPoll: {
      struct pollfd p = {r.fd, static_cast<short>(r.flags), 0};
      n = ::poll(&p, 1, 0);
      if (n == 0) return -EAGAIN;
      if (n > 0) n = p.revents;
      break;
    }
    // File kinds block; they run on the pool (see EpollPoller::execute).
    case IoKind::kReadAt:
      n = ::pread(r.fd, r.buf, r.len, static_cast<off_t>(r.offset));
      break;
    case IoKind::kWriteAt:
      n = ::pwrite(r.fd, r.buf, r.len, static_cast<off_t>(r.offset));
      break;
    case IoKind::kFsync:
      n = ::fsync(r.fd);
      break;
    case IoKind::kOpenAt:
      n = ::openat(AT_FDCWD, r.path, r.flags, r.mode);
      break;
  }
  return n < 0 ? -errno : static_cast<int32_t>(n);
}

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

  bool has_pending() const override { return parked_ > 0; }

  int socket_flags() const override { return SOCK_NONBLOCK; }

  int32_t execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns) override {
    if (is_file_kind(req.kind)) return execute_on_pool(h, req);
    if (!h.registered) {
      struct epoll_event ev = {};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.ptr = &h;
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, h.fd, &ev) != 0) return -errno;
      h.registered = true;
    }
    const bool input = waits_for_input(req);
    // One number for the whole operation, across its readiness waits.
    const uint64_t seq = h.started.load(std::memory_order_relaxed);
    bool connecting = false;
    for (;;) {
      (input ? h.read_ready : h.write_ready) = false;
      int32_t r;
      if (connecting) {
        // A wake-up is not a completion: until the socket is writable (or
        // failed) the connection is still in progress, and SO_ERROR is 0.
        struct pollfd p = {h.fd, POLLOUT, 0};
        if (::poll(&p, 1, 0) == 0) {
          r = -EAGAIN;
        } else {
          int err = 0;
          socklen_t len = sizeof err;
          r = getsockopt(h.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ? -errno : -err;
        }
      } else {
        r = try_now(req);
      }
      if (req.kind == IoKind::kConnect && r == -EINPROGRESS) {
        connecting = true;
        r = -EAGAIN;
      }
      if (r != -EAGAIN) return r;
      if (input ? h.read_ready : h.write_ready) continue;  // an edge came meanwhile
      if (deadline_ns > 0 && now_ns() >= deadline_ns) return -ETIMEDOUT;
      int32_t waited = wait_ready(h, input, deadline_ns, seq);
      if (waited < 0) return waited;
    }
  }

  void cancel(IoHandle& h, uint64_t upto) override {
    for (IoOp* op = h.ops; op != nullptr; op = op->next) {
      if (op->seq > upto) continue;
      op->cancelled = true;
      wake_op(op);
    }
  }

  bool wake_spuriously(IoHandle& h) override {
    bool woke = false;
    for (IoOp* op = h.ops; op != nullptr; op = op->next) {
      if (!op->parked) continue;
      woke = true;
      wake_op(op);  // wait_ready() returns 0 and execute() tries the syscall again
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
      for (IoOp* op = h->ops; op != nullptr; op = op->next) {
        if (!op->parked) continue;
        if (op->input ? in : out) {
          (op->input ? woke_in : woke_out) = true;
          wake_op(op);
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
  // execute_on_pool() runs a file request on the spawn_blocking() pool. The op
  // is linked while it runs, so close() waits for it: the fd cannot be closed
  // (and its number reused) under the pool thread.
  int32_t execute_on_pool(IoHandle& h, const IoRequest& req) {
    IoOp op;
    op.fiber = current_fiber("fiber: I/O");
    op.seq = h.started.load(std::memory_order_relaxed);
    link_op(h, &op);
    int32_t r = 0;
    run_blocking([&]() noexcept { r = try_now(req); });
    unlink_op(h, &op);
    return r;
  }

  // wait_ready() parks until `h` is ready for input (or output), the deadline
  // passes (-ETIMEDOUT) or the op is cancelled (-ECANCELED). Whoever clears
  // IoOp::parked (an event, the timer, a cancel) wakes the fiber, so it wakes
  // exactly once.
  int32_t wait_ready(IoHandle& h, bool input, int64_t deadline_ns, uint64_t seq) {
    IoOp op;
    op.fiber = current_fiber("fiber: I/O");
    op.seq = seq;
    op.input = input;
    op.parked = true;
    struct DeadlineTimer : Timer {
      EpollPoller* poller;
      IoOp* op;
    } timer;
    link_op(h, &op);
    if (deadline_ns > 0) {
      timer.deadline_ns = deadline_ns;
      timer.poller = this;
      timer.op = &op;
      timer.fire = [](Timer* t) {
        auto* dt = static_cast<DeadlineTimer*>(t);
        if (!dt->op->parked) return;  // woken already
        dt->op->timed_out = true;
        dt->poller->wake_op(dt->op);
      };
      t_scheduler->add_timer(&timer);
    }
    ++parked_;
    park();
    if (deadline_ns > 0) t_scheduler->cancel_timer(&timer);
    unlink_op(h, &op);
    if (op.cancelled) return -ECANCELED;
    if (op.timed_out) return -ETIMEDOUT;
    return 0;
  }

  // wake_op() readies the fiber of a parked op, once.
  void wake_op(IoOp* op) {
    if (!op->parked) return;
    op->parked = false;
    --parked_;
    ready(op->fiber);
  }

  size_t parked_ = 0;  // ops parked for readiness
  // Written by this thread only, read by add_stats() from any thread.
  std::atomic<uint64_t> interrupted_{0};
  int epfd_ = -1;
  bool no_pwait2_ = false;  // epoll_pwait2 failed with ENOSYS once
  int doorbell_ = -1;
};

}  // namespace

std::unique_ptr<Poller> make_epoll_poller() { return std::make_unique<EpollPoller>(); }

}  // namespace fiber::detail
