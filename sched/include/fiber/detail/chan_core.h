// The machinery behind Chan<T> (fiber/chan.h) and select (fiber/select.h):
// type-erased, written once in sched/chan.cc. Not an API: only those two
// headers include it.
//
// Threading: a ChanCore's queues, ring and closed flag are guarded by its
// lock_ (a SpinLock); refs_ is atomic. A SelectState is claimed by exactly one
// waker (the CAS on `claimed`), which alone may call ready().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"

namespace fiber::detail {

// ElemOps moves and destroys a channel's elements without knowing their type, so
// that the channel machinery (chan.cc) is written once, not per T.
struct ElemOps {
  size_t size;
  size_t align;
  void (*move_construct)(void* dst, void* src);  // dst: raw storage; src: a live T
  void (*destroy)(void* p);
};

template <class T>
inline constexpr ElemOps kElemOps = {
    sizeof(T), alignof(T),
    [](void* dst, void* src) { ::new (dst) T(std::move(*static_cast<T*>(src))); },
    [](void* p) { static_cast<T*>(p)->~T(); }};

struct ChanWaiter;

// SelectState is one parked operation (a send, a recv or a whole select). Its
// waiters may sit on several channels at once; whoever first flips `claimed`
// (a channel peer, close() or the select's timer) owns the wake-up and is the only
// one to call ready(). Lives on the parked fiber's stack.
struct SelectState {
  Fiber* fiber = nullptr;
  std::atomic<bool> claimed{false};
  ChanWaiter* fired = nullptr;  // set by the claimer before ready(); nullptr: timer
  // solo: a plain send or recv, one waiter on one channel and no timer. Only a
  // peer holding that channel's lock can pop it, so it needs no CAS to claim.
  bool solo = false;
};

// ChanWaiter is one case of a parked operation queued on one channel (Go's sudog).
struct ChanWaiter {
  SelectState* sel = nullptr;
  ChanWaiter* prev = nullptr;
  ChanWaiter* next = nullptr;
  bool linked = false;
  bool ok = false;       // set by the claimer: true if a value moved, false if closed
  void* elem = nullptr;  // send: the T to move from; recv: raw storage for a T
  int index = 0;         // the case's index in its select
};

// WaiterQueue is an intrusive FIFO of ChanWaiters. Guarded by the channel's lock.
class WaiterQueue : public IntrusiveList<ChanWaiter> {
 public:
  // dequeue_live() pops waiters until it claims one whose operation nobody else
  // claimed yet (a select may have fired on another channel); nullptr if none.
  ChanWaiter* dequeue_live();
};

// ChanStatus is the outcome of one channel operation.
enum class ChanStatus : uint8_t { kOk, kClosed, kWouldBlock };

// ChanCore is the shared state of a channel, type-erased (see chan.cc).
class ChanCore {
 public:
  // create() returns a channel with one reference, or nullptr when the capacity is
  // negative or the buffer would exceed kMaxBufferBytes.
  static ChanCore* create(int64_t capacity, const ElemOps* ops);
  static constexpr size_t kMaxBufferBytes = size_t{1} << 30;

  void ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy();
  }

  ChanStatus try_send(void* src);
  ChanStatus try_recv(void* dst);
  ChanStatus send(void* src);  // parks; kOk or kClosed. Fiber-only.
  ChanStatus recv(void* dst);  // parks; kOk (dst constructed) or kClosed. Fiber-only.
  bool close();                // false if it was already closed
  size_t len();
  size_t cap() const { return cap_; }

  // Used by select (chan.cc): all with lock_ held.
  SpinLock lock_;
  ChanStatus send_locked(void* src, Fiber** wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  ChanStatus recv_locked(void* dst, Fiber** wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_);
  WaiterQueue sendq_ ABSL_GUARDED_BY(lock_);
  WaiterQueue recvq_ ABSL_GUARDED_BY(lock_);

 private:
  ChanCore(size_t cap, const ElemOps* ops, unsigned char* buf) : cap_(cap), ops_(ops), buf_(buf) {}
  // destroy() runs once the last reference is gone, so nobody else can hold
  // lock_ and it reads the ring without it: no analysis.
  void destroy() ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void* slot(size_t i) { return buf_ + i * ops_->size; }

  const size_t cap_;
  const ElemOps* const ops_;
  unsigned char* const buf_
      ABSL_PT_GUARDED_BY(lock_);  // ring of cap_ elements, from head_ for count_
  size_t head_ ABSL_GUARDED_BY(lock_) = 0;
  size_t count_ ABSL_GUARDED_BY(lock_) = 0;
  bool closed_ ABSL_GUARDED_BY(lock_) = false;
  std::atomic<int64_t> refs_{1};
};

}  // namespace fiber::detail
