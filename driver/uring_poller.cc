// The io_uring driver. The scheduler's sleep is io_uring_enter(GETEVENTS) with
// the next timer's deadline as its timeout; the doorbell is an eventfd whose read
// is always in flight on the ring. Operations are prepared as SQEs when a fiber
// asks and submitted together at the scheduler's next loop turn.
#include <fcntl.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <system_error>

#include "fiber/detail/park.h"
#include "fiber/runtime.h"
#include "io_poller.h"
#include "kernel_writes.h"
#include "op_table.h"
#include "sched/internal/scheduler.h"

namespace fiber::detail {
namespace {

constexpr unsigned kRingEntries = kDefaultUringSqEntries;
constexpr uint64_t kDoorbellTag = 1;
constexpr uint64_t kIgnoreTag = 0;  // cancels: nobody waits on them

class UringPoller final : public IoPoller {
 public:
  explicit UringPoller(const Options& options) {
    const unsigned sq = options.uring_sq_entries != 0 ? options.uring_sq_entries : kRingEntries;
    struct io_uring_params params = {};
    // SINGLE_ISSUER: only this thread submits. DEFER_TASKRUN: completion work
    // runs when we ask for events, not as interrupts of whatever runs now.
    // TASKRUN_FLAG: the kernel raises IORING_SQ_TASKRUN in the shared ring when
    // completion work waits, so the idle spin sees it without a syscall.
    params.flags =
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    // CQSIZE: Options::uring_cq_entries (run() checked it is at least sq).
    const unsigned cq_flags = options.uring_cq_entries != 0 ? IORING_SETUP_CQSIZE : 0;
    params.flags |= cq_flags;
    params.cq_entries = options.uring_cq_entries;
    int ret = io_uring_queue_init_params(sq, &ring_, &params);
    // DEFER_TASKRUN (6.1) implies POLL_FIRST and SOCK_NONEMPTY (5.19, 6.0).
    deferred_ = ret == 0;
    if (ret == -EINVAL) {
      params = {};
      params.flags = cq_flags;
      params.cq_entries = options.uring_cq_entries;
      ret = io_uring_queue_init_params(sq, &ring_, &params);
    }
    if (ret < 0) throw std::system_error(-ret, std::generic_category(), "fiber: io_uring setup");
    // A blocking eventfd: the ring parks the read until the counter is non-zero.
    doorbell_ = eventfd(0, EFD_CLOEXEC);
    if (doorbell_ < 0) {
      int err = errno;
      io_uring_queue_exit(&ring_);
      throw std::system_error(err, std::generic_category(), "fiber: eventfd");
    }
  }

  ~UringPoller() override {
    io_uring_queue_exit(&ring_);
    close(doorbell_);
  }

  bool has_pending() const override { return in_flight() > 0 || io_uring_sq_ready(&ring_) > 0; }

  // With DEFER_TASKRUN a completion is either in the CQ ring already or waits
  // as task work, which IORING_SQ_TASKRUN shows; without it the kernel posts
  // completions to the ring itself.
  bool events_visible() const override { return true; }
  bool events_ready() const override {
    return io_uring_cq_ready(&ring_) > 0 ||
           (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0;
  }

  int socket_flags() const override { return 0; }

  int32_t execute(IoHandle& h, const IoRequest& req, int64_t deadline_ns) override {
    const OpTraits& traits = op_traits(req.kind);
    if (traits.prepare == nullptr) return traits.try_now(req);
    if (deadline_ns > 0 && now_ns() >= deadline_ns) return -ETIMEDOUT;
    IoOp op;
    op.fiber = current_fiber("fiber: I/O");
    op.seq = h.started.load(std::memory_order_relaxed);
    reserve(1);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    traits.prepare(sqe, req);
    io_uring_sqe_set_data(sqe, &op);
    const bool stream_recv = req.kind == IoKind::kRecv;
    // A recv after one that drained the socket will most likely wait: arm the
    // poll at once instead of first trying a recv that would fail (request /
    // response protocols read right after answering).
    if (stream_recv && deferred_ && h.input_drained) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    park_op(h, op, deadline_ns);                 // until the op's own CQE: see dispatch()
    mark_kernel_writes(traits, req, op.result);  // valgrind: memcheck can't see writes via the ring
    if (stream_recv) {
      h.input_drained = op.result > 0 && (op.cqe_flags & IORING_CQE_F_SOCK_NONEMPTY) == 0;
    }
    return op_result(op);
  }

  int32_t wait(IoHandle& h, int events, int64_t deadline_ns) override {
    IoRequest poll{IoKind::kPoll, h.fd};
    poll.flags = events;
    return execute(h, poll, deadline_ns);
  }

  void poll(int64_t timeout_ns) override {
    if (!doorbell_armed_) arm_doorbell();
    int ret;
    if (timeout_ns == 0) {
      ret = io_uring_submit_and_get_events(&ring_);
    } else if (timeout_ns < 0) {
      ret = io_uring_submit_and_wait(&ring_, 1);
    } else {
      struct __kernel_timespec ts;
      ts.tv_sec = timeout_ns / 1000000000;
      ts.tv_nsec = timeout_ns % 1000000000;
      struct io_uring_cqe* cqe = nullptr;
      // -ETIME (deadline) and -EINTR (signal) both just mean "look again".
      ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    if (ret == -EINTR) bump(interrupted_);
    reap();
  }

  bool poll_refused() override {
    reap();
    return true;
  }

  void wake() override {
    // Writes can only fail on counter overflow, which a pending wake-up makes moot.
    eventfd_write(doorbell_, 1);
  }

  void add_stats(SchedulerStats& stats) const override {
    stats.cq_overflows = cq_overflows_.load(std::memory_order_relaxed);
    stats.waits_interrupted = interrupted_.load(std::memory_order_relaxed);
    // The kernel writes this counter in the shared ring; a relaxed read is enough.
    stats.cq_dropped = __atomic_load_n(ring_.cq.koverflow, __ATOMIC_RELAXED);
  }

 private:
  void dispatch(const io_uring_cqe* cqe) {
    if (cqe->user_data == kIgnoreTag) return;
    if (cqe->user_data == kDoorbellTag) {
      doorbell_armed_ = false;
      return;
    }
    auto* op = reinterpret_cast<IoOp*>(cqe->user_data);
    op->cqe_flags = cqe->flags;
    complete(*op, cqe->res);
  }

  // abort() asks the kernel to cancel `op`, which has no CQE yet: the op is
  // still in flight, so its address cannot name a newer op.
  void abort(IoOp& op) override {
    reserve(1);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_cancel64(sqe, reinterpret_cast<uint64_t>(&op), 0);
    io_uring_sqe_set_data64(sqe, kIgnoreTag);
  }

  // reserve() makes room for `n` SQEs, submitting what is queued (and reaping
  // completions if the kernel pushes back) until there is. Never gives up: a
  // cancel must not fail for want of an entry.
  void reserve(unsigned n) {
    while (io_uring_sq_space_left(&ring_) < n) {
      int ret = io_uring_submit(&ring_);
      if (ret < 0 && ret != -EINTR) {  // -EBUSY/-EAGAIN: completions first
        io_uring_get_events(&ring_);
        reap();
      }
    }
  }

  // reap() dispatches every completion in the CQ ring.
  void reap() {
    // The backlog itself is flushed by the next io_uring_enter(GETEVENTS), which
    // every poll() makes: here we only count that it happened.
    if (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW) bump(cq_overflows_);
    unsigned head;
    unsigned seen = 0;
    struct io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      dispatch(cqe);
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
  }

  void arm_doorbell() {
    reserve(1);
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_read(sqe, doorbell_, &doorbell_value_, sizeof doorbell_value_, 0);
    io_uring_sqe_set_data64(sqe, kDoorbellTag);
    doorbell_armed_ = true;
  }

  struct io_uring ring_;
  int doorbell_ = -1;
  bool doorbell_armed_ = false;
  // The ring runs completion work only when asked (DEFER_TASKRUN), and the
  // kernel knows IORING_RECVSEND_POLL_FIRST and IORING_CQE_F_SOCK_NONEMPTY.
  bool deferred_ = false;
  uint64_t doorbell_value_ = 0;  // written by the kernel when the read completes
  // Written by this thread only (bump()), read by add_stats() from any thread.
  static void bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> cq_overflows_{0};
  std::atomic<uint64_t> interrupted_{0};
};

}  // namespace

std::unique_ptr<Poller> make_uring_poller(const Options& options) {
  return std::make_unique<UringPoller>(options);
}

}  // namespace fiber::detail
