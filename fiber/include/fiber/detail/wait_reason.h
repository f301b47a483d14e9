// WaitReason says what a parked fiber waits for. Each park site stores one in
// the fiber's control block (with a detail: an fd, a deadline) for the
// runtime's reports: fiber::dump(), the deadlock report and the leak report.
// Not an API: the reports print it.
#pragma once

#include <cstdint>

namespace fiber::detail {

enum class WaitReason : uint8_t {
  kUnknown,    // parked by a site that does not say why
  kChanSend,   // Chan::send
  kChanRecv,   // Chan::recv
  kSelect,     // select() (with a deadline when it has a timeout case)
  kMutex,      // Mutex::lock
  kCondVar,    // CondVar::wait (with a deadline for wait_until/wait_for)
  kWaitGroup,  // WaitGroup::wait
  kJoin,       // JoinHandle::join
  kSleep,      // sleep_for / sleep_until: the deadline is when it wakes
  kIo,         // an I/O operation on an fd, with its deadline (0: none)
  kIoClose,    // close() of an fd, waiting for its operations to return
  kBlocking,   // spawn_blocking: the call runs on the blocking pool
  kDump,       // fiber::dump(): waiting for the other cores' parts
};

// to_string() is the reason as the reports print it.
constexpr const char* to_string(WaitReason r) {
  switch (r) {
    case WaitReason::kUnknown:
      return "parked";
    case WaitReason::kChanSend:
      return "chan send";
    case WaitReason::kChanRecv:
      return "chan receive";
    case WaitReason::kSelect:
      return "select";
    case WaitReason::kMutex:
      return "mutex";
    case WaitReason::kCondVar:
      return "condvar";
    case WaitReason::kWaitGroup:
      return "wait group";
    case WaitReason::kJoin:
      return "join";
    case WaitReason::kSleep:
      return "sleep";
    case WaitReason::kIo:
      return "I/O";
    case WaitReason::kIoClose:
      return "close";
    case WaitReason::kBlocking:
      return "spawn_blocking";
    case WaitReason::kDump:
      return "dump";
  }
  return "parked";
}

}  // namespace fiber::detail
