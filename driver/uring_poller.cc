// The io_uring driver. For now it only waits and wakes: the scheduler's sleep is
// io_uring_enter(GETEVENTS) with the next timer's deadline as its timeout, and
// the doorbell is an eventfd whose read is always in flight on the ring.
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "sched/poller.h"

namespace fiber::detail {
namespace {

constexpr unsigned kRingEntries = 256;
constexpr uint64_t kDoorbellTag = 1;

class UringPoller final : public Poller {
 public:
  UringPoller() {
    struct io_uring_params params = {};
    // SINGLE_ISSUER: only this thread submits. DEFER_TASKRUN: completion work
    // runs when we ask for events, not as interrupts of whatever runs now.
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int ret = io_uring_queue_init_params(kRingEntries, &ring_, &params);
    if (ret == -EINVAL) {
      params = {};
      ret = io_uring_queue_init_params(kRingEntries, &ring_, &params);
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

  void poll(int64_t timeout_ns) override {
    if (!doorbell_armed_) arm_doorbell();
    if (timeout_ns == 0) {
      io_uring_submit_and_get_events(&ring_);
    } else if (timeout_ns < 0) {
      io_uring_submit_and_wait(&ring_, 1);
    } else {
      struct __kernel_timespec ts;
      ts.tv_sec = timeout_ns / 1000000000;
      ts.tv_nsec = timeout_ns % 1000000000;
      struct io_uring_cqe* cqe = nullptr;
      // -ETIME (deadline) and -EINTR (signal) both just mean "look again".
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    unsigned head;
    unsigned seen = 0;
    struct io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (cqe->user_data == kDoorbellTag) doorbell_armed_ = false;
      ++seen;
    }
    io_uring_cq_advance(&ring_, seen);
  }

  void wake() override {
    // Writes can only fail on counter overflow, which a pending wake-up makes moot.
    eventfd_write(doorbell_, 1);
  }

 private:
  void arm_doorbell() {
    struct io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) return;  // retried at the next poll()
    }
    io_uring_prep_read(sqe, doorbell_, &doorbell_value_, sizeof doorbell_value_, 0);
    io_uring_sqe_set_data64(sqe, kDoorbellTag);
    doorbell_armed_ = true;
  }

  struct io_uring ring_;
  int doorbell_ = -1;
  bool doorbell_armed_ = false;
  uint64_t doorbell_value_ = 0;  // written by the kernel when the read completes
};

}  // namespace

std::unique_ptr<Poller> make_uring_poller() { return std::make_unique<UringPoller>(); }

}  // namespace fiber::detail
