// FdTable: what the hooks know of each fd, found by number without a lock.
//
// Entries come in chunks of 1024, allocated on first use and never freed, so
// a lookup is two loads and an entry never moves. Each entry's fields are
// atomics or guarded by its lock; nothing here is core-local, since any
// thread may use any fd.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "fiber/detail/park.h"

namespace fiber::hook {

// The bits of FdEntry::state.
inline constexpr uint32_t kKnown =
    1u << 0;  // kind, kUserNonblock found (fstat, F_GETFL) or set at creation
inline constexpr uint32_t kKindMask = 3u << 1;
inline constexpr uint32_t kKindOther =
    0u << 1;  // pipes, ttys, eventfds, epoll fds: waited for by readiness
inline constexpr uint32_t kKindSocket = 1u << 1;  // sockets: recv/send can take MSG_DONTWAIT
inline constexpr uint32_t kKindFile =
    2u << 1;  // regular files and block devices: io_uring or the pool
inline constexpr uint32_t kKindNoWait =
    3u << 1;  // anything else (directories): the real call as is
              // Made by a hooked call (socket, accept, pipe, eventfd, dup): the hooks may
              // set O_NONBLOCK on its open file kernel-side when a fiber blocks on it.
inline constexpr uint32_t kManaged = 1u << 3;
inline constexpr uint32_t kFlipped =
    1u << 4;  // the hooks set O_NONBLOCK kernel-side; the user did not
inline constexpr uint32_t kUserNonblock = 1u << 5;  // the user's O_NONBLOCK: EAGAIN, never a park

struct Handle;  // hooks.cc: a driver handle and its users

struct FdEntry {
  std::atomic<uint32_t> state{0};
  // Bumped by every close (and reuse) of the number: a wait that sees it move
  // returns EBADF, so a reused number never gets the old operation.
  std::atomic<uint32_t> gen{0};
  // The open file a hooked call made (st_dev, st_ino), for kManaged: before
  // it changes the file, the hook checks that the fd still holds it (the fd
  // may have been closed where no hook saw it, e.g. inside libc, and its
  // number reused by a file the hooks did not make).
  std::atomic<uint64_t> dev{0};
  std::atomic<uint64_t> ino{0};
  // SO_RCVTIMEO, SO_SNDTIMEO in ns (0: none).
  std::atomic<int64_t> rcv_timeout_ns{0};
  std::atomic<int64_t> snd_timeout_ns{0};
  detail::SpinLock lock;
  Handle* handle ABSL_GUARDED_BY(lock) = nullptr;

  // take_handle() takes the handle away (nullptr when there is none) and
  // bumps the generation: the waits on it see the fd closed. Thread-safe.
  Handle* take_handle() {
    lock.lock();
    Handle* h = handle;
    handle = nullptr;
    gen.fetch_add(1, std::memory_order_acq_rel);
    lock.unlock();
    return h;
  }
};

class FdTable {
 public:
  static constexpr size_t kChunk = 1024;
  static constexpr size_t kChunks = 1024;  // fds up to 2^20

  // find() is the entry of `fd`, or nullptr when it has none yet.
  FdEntry* find(int fd) const {
    if (fd < 0 || static_cast<size_t>(fd) >= kChunk * kChunks) return nullptr;
    FdEntry* chunk = chunks_[static_cast<size_t>(fd) / kChunk].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : &chunk[static_cast<size_t>(fd) % kChunk];
  }

  // get() is the entry of `fd`, made on first use; nullptr for a number out
  // of range.
  FdEntry* get(int fd) {
    if (FdEntry* e = find(fd)) return e;
    if (fd < 0 || static_cast<size_t>(fd) >= kChunk * kChunks) return nullptr;
    auto& slot = chunks_[static_cast<size_t>(fd) / kChunk];
    FdEntry* fresh = new FdEntry[kChunk];
    FdEntry* expected = nullptr;
    if (!slot.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel)) {
      delete[] fresh;  // another thread won
      fresh = expected;
    }
    return &fresh[static_cast<size_t>(fd) % kChunk];
  }

  // for_each() calls f(entry) for every entry made so far.
  template <class F>
  void for_each(F&& f) {
    for (auto& slot : chunks_) {
      FdEntry* chunk = slot.load(std::memory_order_acquire);
      if (chunk == nullptr) continue;
      for (size_t i = 0; i < kChunk; ++i) f(chunk[i]);
    }
  }

 private:
  std::atomic<FdEntry*> chunks_[kChunks] = {};
};

}  // namespace fiber::hook
