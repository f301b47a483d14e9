// The epoll driver. For now it only waits and wakes: the scheduler's sleep is
// epoll_pwait2 with the next timer's deadline (nanosecond precision), and the
// doorbell is a non-blocking eventfd registered for readability.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "sched/poller.h"

namespace fiber::detail {
namespace {

constexpr uint64_t kDoorbellTag = 1;

class EpollPoller final : public Poller {
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

  void poll(int64_t timeout_ns) override {
    struct epoll_event events[64];
    int n;
    if (timeout_ns < 0) {
      n = epoll_pwait2(epfd_, events, 64, nullptr, nullptr);
    } else {
      struct timespec ts;
      ts.tv_sec = timeout_ns / 1000000000;
      ts.tv_nsec = timeout_ns % 1000000000;
      n = epoll_pwait2(epfd_, events, 64, &ts, nullptr);
    }
    if (n < 0 && errno == ENOSYS) {  // kernel before 5.11: millisecond timeouts
      int ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999999) / 1000000);
      n = epoll_wait(epfd_, events, 64, ms);
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kDoorbellTag) {
        eventfd_t value;
        eventfd_read(doorbell_, &value);  // EAGAIN if another read drained it: fine
      }
    }
  }

  void wake() override { eventfd_write(doorbell_, 1); }

 private:
  int epfd_ = -1;
  int doorbell_ = -1;
};

}  // namespace

std::unique_ptr<Poller> make_epoll_poller() { return std::make_unique<EpollPoller>(); }

}  // namespace fiber::detail
