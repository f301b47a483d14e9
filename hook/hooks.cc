// The libc hooks: each call of real_calls.h, made in a fiber on an fd its
// user left blocking, parks the fiber on the runtime's driver instead of
// blocking the core. Everywhere else it is the real call (see README.md).
//
// How a blocking call becomes a park, by the fd's kind (fd_table.h):
// - an fd made by a hook (kManaged): O_NONBLOCK is set on it kernel-side the
//   first time a fiber would block on it (kFlipped); the call is tried, and on
//   EAGAIN the fiber waits for readiness and tries again. The user's own
//   O_NONBLOCK is kept apart (kUserNonblock), and F_GETFL reports it.
// - a socket the hooks did not make (made before the hooks were on, or
//   inherited): recv/send and friends take MSG_DONTWAIT, so its open file
//   (shared with whoever else holds it) is never changed.
// - any other fd the hooks did not make (a pipe or tty inherited): wait for
//   readiness first, then the real call.
// - regular files: io_uring's read/write/fsync, or the blocking pool under
//   epoll (readiness means nothing for a file).
//
// Waits use one driver handle per fd (Handle), owned by the core that first
// waited; a wait from another core runs on that one. close() bumps the
// entry's generation and fails the handle, so its waiters return EBADF and a
// reused number never receives an old operation.
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <vector>

#include "driver/internal/hook_api.h"
#include "fd_table.h"
#include "fiber/hook.h"
#include "real_calls.h"

#ifdef FIBER_HOOK_STATIC
#define FIBER_HOOK_NAME(name) __wrap_##name
#else
#define FIBER_HOOK_NAME(name) name
#endif

namespace fiber::hook {

#ifndef FIBER_HOOK_STATIC
void* real::resolve(const char* name) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) {
    static const char msg[] = "fiber hook: a libc call is missing (dlsym(RTLD_NEXT))\n";
    (void)!::syscall(SYS_write, 2, msg, sizeof msg - 1);
    abort();
  }
  return fn;
}
#endif

// Handle is the driver handle of one fd, shared by the fibers that wait on it.
// `users` counts the waits that hold it; close() waits for them to leave.
struct Handle {
  detail::IoHandle* io;
  std::atomic<int> users{0};
};

namespace {

using detail::HookRuntime;
using detail::IoKind;
using detail::IoRequest;

constinit std::atomic<const HookRuntime*> g_runtime{nullptr};
constinit std::atomic<bool> g_enabled{true};
constinit std::atomic<bool> g_forked{false};  // in a fork() child: off for good
constinit FdTable g_table;

// Reads FIBER_HOOK once, at load; registers the fork handler.
struct Init {
  Init() {
    const char* env = getenv("FIBER_HOOK");
    if (env != nullptr && strcmp(env, "0") == 0) g_enabled.store(false);
    pthread_atfork(nullptr, nullptr, [] { g_forked.store(true); });
  }
} g_init;

bool on() {
  return g_enabled.load(std::memory_order_relaxed) && !g_forked.load(std::memory_order_relaxed);
}

// active() is the runtime when the caller is a fiber and the hooks are on.
const HookRuntime* active() {
  const HookRuntime* rt = g_runtime.load(std::memory_order_acquire);
  if (rt == nullptr || !on() || !rt->on_fiber()) return nullptr;
  return rt;
}

int64_t timespec_ns(const timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// deadline_after() is the deadline `ns` from now on the runtime's clock (0: none).
int64_t deadline_after(const HookRuntime* rt, int64_t ns) { return ns > 0 ? rt->now_ns() + ns : 0; }

// run_blocking() runs f() on the blocking pool.
template <class F>
void run_blocking(const HookRuntime* rt, F&& f) {
  rt->run_blocking([](void* p) { (*static_cast<std::remove_reference_t<F>*>(p))(); }, &f);
}

// --- the fd table ---------------------------------------------------------

// classify() fills in what is known of `fd` (its kind, the user's
// O_NONBLOCK) on first use; the state.
uint32_t classify(FdEntry& e, int fd) {
  uint32_t st = e.state.load(std::memory_order_acquire);
  if (st & kKnown) return st;
  struct stat sb;
  if (fstat(fd, &sb) != 0) return st;  // not open: the real call says so
  int fl = real::fcntl(fd, F_GETFL);
  if (fl < 0) return st;
  uint32_t kind = kKindOther;
  if (S_ISSOCK(sb.st_mode)) {
    kind = kKindSocket;
  } else if (S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode)) {
    kind = kKindFile;
  } else if (S_ISDIR(sb.st_mode)) {
    kind = kKindNoWait;
  }
  uint32_t bits = kKnown | kind;
  if ((fl & O_NONBLOCK) && !(st & kFlipped)) bits |= kUserNonblock;
  return e.state.fetch_or(bits, std::memory_order_acq_rel) | bits;
}

// detach() takes `e`'s handle away: every wait on it returns (EBADF, as the
// generation moved), then the driver lets go of it.
void detach(FdEntry& e) {
  Handle* h = e.take_handle();
  if (h == nullptr) return;
  const HookRuntime* rt = g_runtime.load(std::memory_order_acquire);
  rt->fail(h->io);
  while (h->users.load(std::memory_order_acquire) > 0) {
    if (rt->on_fiber()) {
      rt->yield();
    } else {
      sched_yield();
    }
  }
  rt->release(h->io);
  delete h;
}

// forget() is what a close of `fd` does to its entry (nothing without one).
void forget(int fd) {
  FdEntry* e = g_table.find(fd);
  if (e == nullptr) return;
  // In a fork child the handles are the parent's runtime's: leave them.
  if (!g_forked.load(std::memory_order_relaxed)) detach(*e);
  e->state.store(0, std::memory_order_release);
  e->rcv_timeout_ns.store(0, std::memory_order_relaxed);
  e->snd_timeout_ns.store(0, std::memory_order_relaxed);
}

// made() records a new fd made by a hooked call: `bits` are its kind and the
// user's O_NONBLOCK.
void made(int fd, uint32_t bits) {
  if (fd < 0) return;
  forget(fd);  // an old fd of this number closed where no hook saw it
  if (!on()) return;
  FdEntry* e = g_table.get(fd);
  struct stat sb;
  if (e == nullptr || fstat(fd, &sb) != 0) return;
  e->dev.store(sb.st_dev, std::memory_order_relaxed);
  e->ino.store(sb.st_ino, std::memory_order_relaxed);
  e->state.store(kKnown | kManaged | bits, std::memory_order_release);
}

// copied() records `to` as a duplicate of `from` (same open file).
void copied(int from, int to) {
  if (to < 0) return;
  forget(to);
  FdEntry* src = g_table.find(from);
  if (src == nullptr || !on()) return;
  if (FdEntry* e = g_table.get(to)) {
    e->dev.store(src->dev.load(std::memory_order_relaxed), std::memory_order_relaxed);
    e->ino.store(src->ino.load(std::memory_order_relaxed), std::memory_order_relaxed);
    e->rcv_timeout_ns.store(src->rcv_timeout_ns.load(std::memory_order_relaxed));
    e->snd_timeout_ns.store(src->snd_timeout_ns.load(std::memory_order_relaxed));
    e->state.store(src->state.load(std::memory_order_acquire), std::memory_order_release);
  }
}

// flip() sets O_NONBLOCK kernel-side on a managed fd: true once set. False
// when the fd no longer holds the file a hooked call made (it was closed
// where no hook saw it and its number reused): the entry is then forgotten
// as a file the hooks did not make, whose open file they never change.
bool flip(FdEntry& e, int fd) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) return false;
  if (sb.st_dev != e.dev.load(std::memory_order_relaxed) ||
      sb.st_ino != e.ino.load(std::memory_order_relaxed)) {
    e.state.fetch_and(~(kManaged | kKnown | kUserNonblock), std::memory_order_acq_rel);
    return false;
  }
  int fl = real::fcntl(fd, F_GETFL);
  if (fl < 0) return false;
  if (!(fl & O_NONBLOCK) && real::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return false;
  e.state.fetch_or(kFlipped, std::memory_order_acq_rel);
  return true;
}

// wait_fd() parks until `fd` is ready for `events` (one of POLLIN, POLLOUT):
// 0, or -ETIMEDOUT after `deadline_ns`, -EBADF when the fd was closed
// (generation `gen` moved), another -errno when the driver cannot wait on it.
int wait_fd(const HookRuntime* rt, FdEntry& e, int fd, int events, int64_t deadline_ns,
            uint32_t gen) {
  e.lock.lock();
  if (e.gen.load(std::memory_order_relaxed) != gen) {
    e.lock.unlock();
    return -EBADF;
  }
  Handle* h = e.handle;
  if (h == nullptr) {
    h = new Handle{rt->handle_new(fd)};
    e.handle = h;
  }
  h->users.fetch_add(1, std::memory_order_relaxed);
  e.lock.unlock();
  int32_t r = rt->wait(h->io, events, deadline_ns);
  h->users.fetch_sub(1, std::memory_order_release);
  if (e.gen.load(std::memory_order_acquire) != gen) return -EBADF;
  if (r == -ECANCELED) return 0;  // not a close: look again
  return r < 0 ? r : 0;
}

// real_poll_one() waits with the real poll(), blocking the thread: where the
// driver cannot wait for an fd, and for fds the hooks made non-blocking that
// are used outside fibers. 0 ready, -ETIMEDOUT, -errno.
int real_poll_one(int fd, int events, int64_t timeout_ns) {
  struct pollfd p = {fd, static_cast<short>(events), 0};
  int ms = timeout_ns > 0 ? static_cast<int>((timeout_ns + 999999) / 1000000) : -1;
  int r = real::poll(&p, 1, ms);
  if (r == 0) return -ETIMEDOUT;
  return r < 0 ? -errno : 0;
}

// --- the blocking calls on one fd -----------------------------------------

// How a call may be tried without blocking.
enum class Try : uint8_t {
  kFlags,  // it takes MSG_DONTWAIT (recv, send and friends)
  kFd,     // only a non-blocking fd will do (read on a pipe, accept, connect)
};

// Op describes one hooked call on one fd: call(extra) runs the real call,
// adding `extra` (MSG_DONTWAIT or 0) to its flags where it takes some.
template <class Call>
ssize_t blocking_call(int fd, int events, Try how, Call call) {
  const HookRuntime* rt = active();
  if (rt == nullptr) {
    FdEntry* e = g_table.find(fd);
    uint32_t st = e == nullptr ? 0 : e->state.load(std::memory_order_acquire);
    if ((st & (kFlipped | kUserNonblock)) != kFlipped) return call(0);
    // Outside a fiber on an fd the hooks made non-blocking: block as libc would.
    const int64_t timeout = (events & POLLIN) ? e->rcv_timeout_ns.load() : e->snd_timeout_ns.load();
    for (;;) {
      ssize_t n = call(0);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return n;
      int r = real_poll_one(fd, events, timeout);
      if (r == -ETIMEDOUT) {
        errno = EAGAIN;
        return -1;
      }
      if (r < 0 && r != -EINTR) {
        errno = -r;
        return -1;
      }
    }
  }
  FdEntry* e = g_table.get(fd);
  if (e == nullptr) return call(0);
  const uint32_t gen = e->gen.load(std::memory_order_acquire);
  uint32_t st = classify(*e, fd);
  if (!(st & kKnown) || (st & kUserNonblock) || (st & kKindMask) == kKindNoWait) return call(0);
  const int64_t timeout = (events & POLLIN) ? e->rcv_timeout_ns.load() : e->snd_timeout_ns.load();
  const int64_t deadline = deadline_after(rt, timeout);
  int extra = 0;
  bool wait_first = false;
  if (st & kFlipped) {
    // Non-blocking kernel-side already: every attempt is.
  } else if (how == Try::kFlags && (st & kKindMask) == kKindSocket) {
    extra = MSG_DONTWAIT;
  } else if (!(st & kManaged) || !flip(*e, fd)) {
    wait_first = true;
  }
  for (;;) {
    if (!wait_first) {
      ssize_t n = call(extra);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return n;
    }
    int r = wait_fd(rt, *e, fd, events, deadline, gen);
    if (r == -ETIMEDOUT) {
      errno = EAGAIN;
      return -1;
    }
    if (r == -EBADF) {
      errno = EBADF;
      return -1;
    }
    if (r < 0) {  // the driver cannot wait on it: block the core, as libc
      r = real_poll_one(fd, events, deadline > 0 ? deadline - rt->now_ns() : 0);
      if (r == -ETIMEDOUT) {
        errno = EAGAIN;
        return -1;
      }
    }
    if (wait_first) return call(0);
  }
}

// file_kind() is true when `fd`, used in a fiber, is a regular file (or a
// block device): its calls go to io_uring or the pool.
bool file_kind(const HookRuntime* rt, int fd) {
  if (rt == nullptr) return false;
  FdEntry* e = g_table.get(fd);
  return e != nullptr && (classify(*e, fd) & kKindMask) == kKindFile;
}

// file_call() runs a call on a regular file: `req` on io_uring, else f() on
// the blocking pool (errno comes home with the result).
template <class F>
ssize_t file_call(const HookRuntime* rt, const IoRequest& req, F f) {
  if (rt->uring()) {
    int32_t r = rt->execute(&req);
    if (r < 0) {
      errno = -r;
      return -1;
    }
    return r;
  }
  ssize_t n = 0;
  int err = 0;
  run_blocking(rt, [&] {
    n = f();
    err = errno;
  });
  if (n < 0) errno = err;
  return n;
}

template <class F>
ssize_t pool_call(const HookRuntime* rt, F f) {
  ssize_t n = 0;
  int err = 0;
  run_blocking(rt, [&] {
    n = f();
    err = errno;
  });
  if (n < 0) errno = err;
  return n;
}

// One io_uring transfer moves at most this much (its result is an int32);
// a short read or write is the caller's to finish, as with any read().
constexpr size_t kMaxFileIo = size_t{1} << 30;

IoRequest file_request(IoKind kind, int fd, const void* buf, size_t n, uint64_t offset = 0) {
  IoRequest req{.kind = kind, .fd = fd};
  req.buf = const_cast<void*>(buf);
  req.len = n < kMaxFileIo ? n : kMaxFileIo;
  req.offset = offset;
  return req;
}

ssize_t do_read(int fd, void* buf, size_t n) {
  if (const HookRuntime* rt = active(); file_kind(rt, fd)) {
    return file_call(rt, file_request(IoKind::kRead, fd, buf, n),
                     [&] { return real::read(fd, buf, n); });
  }
  return blocking_call(fd, POLLIN, Try::kFlags, [&](int extra) -> ssize_t {
    if (extra == 0) return real::read(fd, buf, n);
    ssize_t r = real::recv(fd, buf, n, extra);
    return r < 0 && errno == ENOTSOCK ? real::read(fd, buf, n) : r;
  });
}

ssize_t do_write(int fd, const void* buf, size_t n) {
  if (const HookRuntime* rt = active(); file_kind(rt, fd)) {
    return file_call(rt, file_request(IoKind::kWrite, fd, buf, n),
                     [&] { return real::write(fd, buf, n); });
  }
  return blocking_call(fd, POLLOUT, Try::kFlags, [&](int extra) -> ssize_t {
    if (extra == 0) return real::write(fd, buf, n);
    ssize_t r = real::send(fd, buf, n, extra);
    return r < 0 && errno == ENOTSOCK ? real::write(fd, buf, n) : r;
  });
}

// do_vec() is readv (kRead) or writev. On a socket, blocking_call's extra
// flags (MSG_DONTWAIT) need recvmsg/sendmsg, which take the same iovecs.
template <bool kRead>
ssize_t do_vec(int fd, const iovec* iov, int cnt) {
  auto plain = [&] { return kRead ? real::readv(fd, iov, cnt) : real::writev(fd, iov, cnt); };
  if (const HookRuntime* rt = active(); file_kind(rt, fd)) return pool_call(rt, plain);
  return blocking_call(fd, kRead ? POLLIN : POLLOUT, Try::kFlags, [&](int extra) -> ssize_t {
    if (extra == 0) return plain();
    msghdr msg = {};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<size_t>(cnt);
    ssize_t r = kRead ? real::recvmsg(fd, &msg, extra) : real::sendmsg(fd, &msg, extra);
    return r < 0 && errno == ENOTSOCK ? plain() : r;
  });
}

ssize_t do_pread(int fd, void* buf, size_t n, off_t off) {
  if (const HookRuntime* rt = active(); file_kind(rt, fd) && off >= 0) {
    return file_call(rt, file_request(IoKind::kReadAt, fd, buf, n, static_cast<uint64_t>(off)),
                     [&] { return real::pread(fd, buf, n, off); });
  }
  return real::pread(fd, buf, n, off);  // pread on a pipe or socket is ESPIPE
}

ssize_t do_pwrite(int fd, const void* buf, size_t n, off_t off) {
  if (const HookRuntime* rt = active(); file_kind(rt, fd) && off >= 0) {
    return file_call(rt, file_request(IoKind::kWriteAt, fd, buf, n, static_cast<uint64_t>(off)),
                     [&] { return real::pwrite(fd, buf, n, off); });
  }
  return real::pwrite(fd, buf, n, off);
}

ssize_t do_recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* len) {
  if (flags & MSG_DONTWAIT) return real::recvfrom(fd, buf, n, flags, addr, len);
  return blocking_call(fd, POLLIN, Try::kFlags, [&](int extra) {
    return real::recvfrom(fd, buf, n, flags | extra, addr, len);
  });
}

ssize_t do_sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* addr,
                  socklen_t len) {
  if (flags & MSG_DONTWAIT) return real::sendto(fd, buf, n, flags, addr, len);
  return blocking_call(fd, POLLOUT, Try::kFlags, [&](int extra) {
    return real::sendto(fd, buf, n, flags | extra, addr, len);
  });
}

int do_accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  int r = static_cast<int>(blocking_call(
      fd, POLLIN, Try::kFd, [&](int) -> ssize_t { return real::accept4(fd, addr, len, flags); }));
  made(r, kKindSocket | ((flags & SOCK_NONBLOCK) ? kUserNonblock : 0u));
  return r;
}

int do_connect(int fd, const sockaddr* addr, socklen_t len) {
  const HookRuntime* rt = active();
  FdEntry* e = rt != nullptr ? g_table.get(fd) : nullptr;
  if (e == nullptr) return real::connect(fd, addr, len);
  const uint32_t gen = e->gen.load(std::memory_order_acquire);
  uint32_t st = classify(*e, fd);
  // A socket the hooks did not make keeps its open file as it is: the core
  // blocks (README.md).
  if ((st & kUserNonblock) || !(st & kManaged)) return real::connect(fd, addr, len);
  if (!(st & kFlipped) && !flip(*e, fd)) return real::connect(fd, addr, len);
  const int64_t deadline = deadline_after(rt, e->snd_timeout_ns.load());
  int r = real::connect(fd, addr, len);
  // Unix sockets say EAGAIN while the listener's backlog is full: try again.
  while (r != 0 && errno == EAGAIN) {
    int w = wait_fd(rt, *e, fd, POLLOUT, deadline, gen);
    if (w < 0) {
      errno = w == -ETIMEDOUT ? EAGAIN : -w;
      return -1;
    }
    r = real::connect(fd, addr, len);
  }
  if (r == 0 || errno != EINPROGRESS) return r;
  int w = wait_fd(rt, *e, fd, POLLOUT, deadline, gen);
  if (w < 0) {
    errno = w == -ETIMEDOUT ? EINPROGRESS : -w;  // a blocking connect's timeout
    return -1;
  }
  int err = 0;
  socklen_t elen = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return -1;
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

// --- waits on many fds ------------------------------------------------------

// wait_any() parks until one of `fds` may be ready (the caller looks with a
// real poll(0)): 0, or -ETIMEDOUT after `deadline_ns` (0: none).
int wait_any(const HookRuntime* rt, const pollfd* fds, nfds_t n, int64_t deadline_ns) {
  const pollfd* only = nullptr;
  size_t valid = 0;
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    if (only == nullptr || only->fd != fds[i].fd || only->events != fds[i].events) ++valid;
    only = &fds[i];
  }
  if (valid == 0) {
    rt->sleep_until(deadline_ns > 0 ? deadline_ns : INT64_MAX);
    return -ETIMEDOUT;
  }
  const short ev = valid == 1 ? only->events : 0;
  if (ev == POLLIN || ev == POLLOUT) {
    if (FdEntry* e = g_table.get(only->fd)) {
      int r = wait_fd(rt, *e, only->fd, ev, deadline_ns, e->gen.load(std::memory_order_acquire));
      if (r == 0 || r == -ETIMEDOUT || r == -EBADF) return r == -ETIMEDOUT ? r : 0;
    }
  }
  // Several fds, or both directions: a private epoll set over them, and one
  // wait for it to be readable.
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return -errno;
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    epoll_event ev = {};
    for (nfds_t j = 0; j < n; ++j) {  // the union over duplicates of this fd
      if (fds[j].fd == fds[i].fd) ev.events |= static_cast<uint16_t>(fds[j].events);
    }
    ev.events &= EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP;
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &ev);  // EEXIST for a duplicate: done
  }
  detail::IoHandle* h = rt->handle_new(ep);
  int32_t r = rt->wait(h, POLLIN, deadline_ns);
  rt->release(h);
  real::close(ep);
  return r == -ETIMEDOUT ? r : 0;
}

// do_poll() is poll() with a timeout in ns (< 0: none) in a fiber.
int do_poll(const HookRuntime* rt, pollfd* fds, nfds_t n, int64_t timeout_ns) {
  const int64_t deadline = timeout_ns < 0 ? 0 : rt->now_ns() + timeout_ns;
  for (;;) {
    int r = real::poll(fds, n, 0);
    if (r != 0) return r;
    if (deadline > 0 && rt->now_ns() >= deadline) return 0;
    if (wait_any(rt, fds, n, deadline) == -ETIMEDOUT) return real::poll(fds, n, 0);
  }
}

// do_select() is select() with a timeout in ns (< 0: none) in a fiber;
// `left` gets the time not slept, as Linux's select() does.
int do_select(const HookRuntime* rt, int nfds, fd_set* rd, fd_set* wr, fd_set* ex,
              int64_t timeout_ns, int64_t* left) {
  const int64_t deadline = timeout_ns < 0 ? 0 : rt->now_ns() + timeout_ns;
  std::vector<pollfd> fds;
  for (int fd = 0; fd < nfds; ++fd) {
    short ev = 0;
    if (rd != nullptr && FD_ISSET(fd, rd)) ev |= POLLIN;
    if (wr != nullptr && FD_ISSET(fd, wr)) ev |= POLLOUT;
    if (ex != nullptr && FD_ISSET(fd, ex)) ev |= POLLPRI;
    if (ev != 0) fds.push_back({fd, ev, 0});
  }
  for (;;) {
    fd_set r, w, x;
    if (rd != nullptr) r = *rd;
    if (wr != nullptr) w = *wr;
    if (ex != nullptr) x = *ex;
    timeval zero = {0, 0};
    int n = real::select(nfds, rd ? &r : nullptr, wr ? &w : nullptr, ex ? &x : nullptr, &zero);
    const int64_t now = rt->now_ns();
    bool expired = deadline > 0 && now >= deadline;
    if (n != 0 || expired) {
      if (n >= 0) {
        if (rd != nullptr) *rd = r;
        if (wr != nullptr) *wr = w;
        if (ex != nullptr) *ex = x;
      }
      if (left != nullptr) *left = deadline > now ? deadline - now : 0;
      return n;
    }
    wait_any(rt, fds.data(), fds.size(), deadline);
  }
}

// do_sleep() parks for `ns`; always 0 (a hooked sleep is not cut short by a
// signal: the signal interrupts the core, not the fiber).
int do_sleep(const HookRuntime* rt, int64_t ns) {
  rt->sleep_until(ns > 0 ? rt->now_ns() + ns : 0);
  return 0;
}

bool valid_timespec(const timespec* ts) {
  return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

int64_t timeval_ns(const timeval& tv) {
  return static_cast<int64_t>(tv.tv_sec) * 1000000000 + static_cast<int64_t>(tv.tv_usec) * 1000;
}

int do_fcntl(int fd, int cmd, void* arg, int (*fcntl_real)(int, int, void*)) {
  switch (cmd) {
    case F_GETFL: {
      int r = fcntl_real(fd, cmd, arg);
      FdEntry* e = g_table.find(fd);
      if (r < 0 || e == nullptr) return r;
      uint32_t st = e->state.load(std::memory_order_acquire);
      if (st & kFlipped) r = (r & ~O_NONBLOCK) | ((st & kUserNonblock) ? O_NONBLOCK : 0);
      return r;
    }
    case F_SETFL: {
      const long flags = reinterpret_cast<long>(arg);
      FdEntry* e = g_table.find(fd);
      uint32_t st = e == nullptr ? 0 : e->state.load(std::memory_order_acquire);
      long kernel = (st & kFlipped) ? (flags | O_NONBLOCK) : flags;
      int r = fcntl_real(fd, cmd, reinterpret_cast<void*>(kernel));
      if (r == 0 && (st & kKnown)) {
        if (flags & O_NONBLOCK) {
          e->state.fetch_or(kUserNonblock, std::memory_order_acq_rel);
        } else {
          e->state.fetch_and(~kUserNonblock, std::memory_order_acq_rel);
        }
      }
      return r;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      int r = fcntl_real(fd, cmd, arg);
      copied(fd, r);
      return r;
    }
    default:
      return fcntl_real(fd, cmd, arg);
  }
}

int real_fcntl(int fd, int cmd, void* arg) { return real::fcntl(fd, cmd, arg); }
int real_fcntl64(int fd, int cmd, void* arg) { return real::fcntl64(fd, cmd, arg); }

// The resolver calls on the blocking pool: glibc's resolver blocks in calls
// of its own that no hook can reach (README.md).
template <class F>
int resolver_call(F f) {
  const HookRuntime* rt = active();
  if (rt == nullptr) return f();
  int r = 0;
  int err = 0;
  run_blocking(rt, [&] {
    r = f();
    err = errno;
  });
  errno = err;
  return r;
}

const detail::HookClient kClient{
    .run_ended =
        [] {
          const HookRuntime* rt = g_runtime.load(std::memory_order_acquire);
          if (rt == nullptr) return;
          // The runtime has stopped: its handles go without a word to the driver.
          g_table.for_each([rt](FdEntry& e) {
            Handle* h = e.take_handle();
            if (h == nullptr) return;
            rt->drop(h->io);
            delete h;
          });
        },
};

}  // namespace

void set_enabled(bool enable) { g_enabled.store(enable, std::memory_order_relaxed); }
bool enabled() { return on(); }

}  // namespace fiber::hook

using namespace fiber::hook;  // NOLINT: the hooks below are libc's names

extern "C" {

const fiber::detail::HookClient* fiber_hook_attach(const fiber::detail::HookRuntime* runtime) {
  g_runtime.store(runtime, std::memory_order_release);
  return &kClient;
}

// --- descriptors ----------------------------------------------------------

int FIBER_HOOK_NAME(socket)(int domain, int type, int protocol) noexcept {
  int fd = real::socket(domain, type, protocol);
  made(fd, kKindSocket | ((type & SOCK_NONBLOCK) ? kUserNonblock : 0u));
  return fd;
}

int FIBER_HOOK_NAME(pipe)(int fds[2]) noexcept {
  int r = real::pipe(fds);
  if (r == 0) {
    made(fds[0], kKindOther);
    made(fds[1], kKindOther);
  }
  return r;
}

int FIBER_HOOK_NAME(pipe2)(int fds[2], int flags) noexcept {
  int r = real::pipe2(fds, flags);
  if (r == 0) {
    const uint32_t nb = (flags & O_NONBLOCK) ? kUserNonblock : 0u;
    made(fds[0], kKindOther | nb);
    made(fds[1], kKindOther | nb);
  }
  return r;
}

int FIBER_HOOK_NAME(eventfd)(unsigned int count, int flags) noexcept {
  int fd = real::eventfd(count, flags);
  made(fd, kKindOther | ((flags & EFD_NONBLOCK) ? kUserNonblock : 0u));
  return fd;
}

int FIBER_HOOK_NAME(close)(int fd) {
  forget(fd);
  return real::close(fd);
}

int FIBER_HOOK_NAME(dup)(int fd) noexcept {
  int r = real::dup(fd);
  copied(fd, r);
  return r;
}

int FIBER_HOOK_NAME(dup2)(int fd, int to) noexcept {
  if (fd != to) forget(to);
  int r = real::dup2(fd, to);
  if (fd != to) copied(fd, r);
  return r;
}

int FIBER_HOOK_NAME(dup3)(int fd, int to, int flags) noexcept {
  if (fd != to) forget(to);
  int r = real::dup3(fd, to, flags);
  copied(fd, r);
  return r;
}

int FIBER_HOOK_NAME(fcntl)(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return do_fcntl(fd, cmd, arg, &real_fcntl);
}

int FIBER_HOOK_NAME(fcntl64)(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return do_fcntl(fd, cmd, arg, &real_fcntl64);
}

int FIBER_HOOK_NAME(ioctl)(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (request != FIONBIO || arg == nullptr) return real::ioctl(fd, request, arg);
  FdEntry* e = g_table.find(fd);
  uint32_t st = e == nullptr ? 0 : e->state.load(std::memory_order_acquire);
  const int want = *static_cast<int*>(arg);
  int kernel = (st & kFlipped) ? 1 : want;
  int r = real::ioctl(fd, request, &kernel);
  if (r == 0 && (st & kKnown)) {
    if (want != 0) {
      e->state.fetch_or(kUserNonblock, std::memory_order_acq_rel);
    } else {
      e->state.fetch_and(~kUserNonblock, std::memory_order_acq_rel);
    }
  }
  return r;
}

int FIBER_HOOK_NAME(setsockopt)(int fd, int level, int name, const void* value,
                                socklen_t len) noexcept {
  int r = real::setsockopt(fd, level, name, value, len);
  if (r != 0 || level != SOL_SOCKET || len < sizeof(timeval)) return r;
  if (name != SO_RCVTIMEO && name != SO_SNDTIMEO) return r;
  if (FdEntry* e = g_table.get(fd)) {
    int64_t ns = timeval_ns(*static_cast<const timeval*>(value));
    (name == SO_RCVTIMEO ? e->rcv_timeout_ns : e->snd_timeout_ns).store(ns);
  }
  return r;
}

// --- sockets and pipes ----------------------------------------------------

int FIBER_HOOK_NAME(connect)(int fd, const sockaddr* addr, socklen_t len) {
  return do_connect(fd, addr, len);
}

int FIBER_HOOK_NAME(accept)(int fd, sockaddr* addr, socklen_t* len) {
  return do_accept4(fd, addr, len, 0);
}

int FIBER_HOOK_NAME(accept4)(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return do_accept4(fd, addr, len, flags);
}

ssize_t FIBER_HOOK_NAME(read)(int fd, void* buf, size_t n) { return do_read(fd, buf, n); }

ssize_t FIBER_HOOK_NAME(write)(int fd, const void* buf, size_t n) { return do_write(fd, buf, n); }

ssize_t FIBER_HOOK_NAME(readv)(int fd, const iovec* iov, int cnt) {
  return do_vec<true>(fd, iov, cnt);
}

ssize_t FIBER_HOOK_NAME(writev)(int fd, const iovec* iov, int cnt) {
  return do_vec<false>(fd, iov, cnt);
}

ssize_t FIBER_HOOK_NAME(recv)(int fd, void* buf, size_t n, int flags) {
  return do_recvfrom(fd, buf, n, flags, nullptr, nullptr);
}

ssize_t FIBER_HOOK_NAME(recvfrom)(int fd, void* buf, size_t n, int flags, sockaddr* addr,
                                  socklen_t* len) {
  return do_recvfrom(fd, buf, n, flags, addr, len);
}

ssize_t FIBER_HOOK_NAME(recvmsg)(int fd, msghdr* msg, int flags) {
  if (flags & MSG_DONTWAIT) return real::recvmsg(fd, msg, flags);
  return blocking_call(fd, POLLIN, Try::kFlags,
                       [&](int extra) { return real::recvmsg(fd, msg, flags | extra); });
}

ssize_t FIBER_HOOK_NAME(send)(int fd, const void* buf, size_t n, int flags) {
  return do_sendto(fd, buf, n, flags, nullptr, 0);
}

ssize_t FIBER_HOOK_NAME(sendto)(int fd, const void* buf, size_t n, int flags, const sockaddr* addr,
                                socklen_t len) {
  return do_sendto(fd, buf, n, flags, addr, len);
}

ssize_t FIBER_HOOK_NAME(sendmsg)(int fd, const msghdr* msg, int flags) {
  if (flags & MSG_DONTWAIT) return real::sendmsg(fd, msg, flags);
  return blocking_call(fd, POLLOUT, Try::kFlags,
                       [&](int extra) { return real::sendmsg(fd, msg, flags | extra); });
}

// --- regular files ----------------------------------------------------------

ssize_t FIBER_HOOK_NAME(pread)(int fd, void* buf, size_t n, off_t off) {
  return do_pread(fd, buf, n, off);
}
ssize_t FIBER_HOOK_NAME(pread64)(int fd, void* buf, size_t n, off64_t off) {
  return do_pread(fd, buf, n, off);
}
ssize_t FIBER_HOOK_NAME(pwrite)(int fd, const void* buf, size_t n, off_t off) {
  return do_pwrite(fd, buf, n, off);
}
ssize_t FIBER_HOOK_NAME(pwrite64)(int fd, const void* buf, size_t n, off64_t off) {
  return do_pwrite(fd, buf, n, off);
}

int FIBER_HOOK_NAME(fsync)(int fd) {
  if (const HookRuntime* rt = active(); file_kind(rt, fd)) {
    IoRequest req{.kind = IoKind::kFsync, .fd = fd};
    return static_cast<int>(file_call(rt, req, [&] { return real::fsync(fd); }));
  }
  return real::fsync(fd);
}

int FIBER_HOOK_NAME(fdatasync)(int fd) {
  if (const HookRuntime* rt = active(); file_kind(rt, fd)) {
    return static_cast<int>(pool_call(rt, [&] { return real::fdatasync(fd); }));
  }
  return real::fdatasync(fd);
}

// --- waits ----------------------------------------------------------------

int FIBER_HOOK_NAME(poll)(pollfd* fds, nfds_t n, int timeout) {
  const HookRuntime* rt = timeout == 0 ? nullptr : active();
  if (rt == nullptr) return real::poll(fds, n, timeout);
  return do_poll(rt, fds, n, timeout < 0 ? -1 : int64_t{timeout} * 1000000);
}

int FIBER_HOOK_NAME(ppoll)(pollfd* fds, nfds_t n, const timespec* ts, const sigset_t* mask) {
  const HookRuntime* rt = ts != nullptr && ts->tv_sec == 0 && ts->tv_nsec == 0 ? nullptr : active();
  if (rt == nullptr || (ts != nullptr && !valid_timespec(ts))) return real::ppoll(fds, n, ts, mask);
  // The signal mask is not applied in a fiber: it is the thread's, which
  // every fiber of the core shares (README.md).
  return do_poll(rt, fds, n, ts == nullptr ? -1 : timespec_ns(*ts));
}

int FIBER_HOOK_NAME(select)(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, timeval* tv) {
  const HookRuntime* rt = tv != nullptr && tv->tv_sec == 0 && tv->tv_usec == 0 ? nullptr : active();
  if (rt == nullptr || nfds < 0 || nfds > FD_SETSIZE ||
      (tv != nullptr && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000))) {
    return real::select(nfds, rd, wr, ex, tv);
  }
  int64_t left = 0;
  int r = do_select(rt, nfds, rd, wr, ex, tv == nullptr ? -1 : timeval_ns(*tv), &left);
  if (tv != nullptr) {
    tv->tv_sec = left / 1000000000;
    tv->tv_usec = (left % 1000000000) / 1000;
  }
  return r;
}

int FIBER_HOOK_NAME(pselect)(int nfds, fd_set* rd, fd_set* wr, fd_set* ex, const timespec* ts,
                             const sigset_t* mask) {
  const HookRuntime* rt = ts != nullptr && ts->tv_sec == 0 && ts->tv_nsec == 0 ? nullptr : active();
  if (rt == nullptr || nfds < 0 || nfds > FD_SETSIZE || (ts != nullptr && !valid_timespec(ts))) {
    return real::pselect(nfds, rd, wr, ex, ts, mask);
  }
  return do_select(rt, nfds, rd, wr, ex, ts == nullptr ? -1 : timespec_ns(*ts), nullptr);
}

int FIBER_HOOK_NAME(epoll_wait)(int ep, epoll_event* events, int max, int timeout) {
  const HookRuntime* rt = timeout == 0 ? nullptr : active();
  if (rt == nullptr) return real::epoll_wait(ep, events, max, timeout);
  const int64_t deadline = timeout < 0 ? 0 : rt->now_ns() + int64_t{timeout} * 1000000;
  FdEntry* e = g_table.get(ep);
  for (;;) {
    int r = real::epoll_wait(ep, events, max, 0);
    if (r != 0 || e == nullptr) return r;
    if (deadline > 0 && rt->now_ns() >= deadline) return 0;
    int w = wait_fd(rt, *e, ep, POLLIN, deadline, e->gen.load(std::memory_order_acquire));
    if (w == -ETIMEDOUT) return real::epoll_wait(ep, events, max, 0);
    if (w < 0 && w != -EBADF) return real::epoll_wait(ep, events, max, timeout);
  }
}

// --- sleeps ---------------------------------------------------------------

unsigned int FIBER_HOOK_NAME(sleep)(unsigned int seconds) {
  const HookRuntime* rt = active();
  if (rt == nullptr) return real::sleep(seconds);
  return static_cast<unsigned>(do_sleep(rt, int64_t{seconds} * 1000000000));
}

int FIBER_HOOK_NAME(usleep)(useconds_t us) {
  const HookRuntime* rt = active();
  if (rt == nullptr) return real::usleep(us);
  return do_sleep(rt, int64_t{us} * 1000);
}

int FIBER_HOOK_NAME(nanosleep)(const timespec* req, timespec* rem) {
  const HookRuntime* rt = active();
  if (rt == nullptr || req == nullptr || !valid_timespec(req)) return real::nanosleep(req, rem);
  return do_sleep(rt, timespec_ns(*req));
}

int FIBER_HOOK_NAME(clock_nanosleep)(clockid_t clock, int flags, const timespec* req,
                                     timespec* rem) {
  const HookRuntime* rt = active();
  const bool known = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC ||
                     clock == CLOCK_BOOTTIME || clock == CLOCK_TAI;
  if (rt == nullptr || !known || req == nullptr || !valid_timespec(req)) {
    return real::clock_nanosleep(clock, flags, req, rem);
  }
  int64_t ns = timespec_ns(*req);
  if (flags & TIMER_ABSTIME) {
    timespec now;
    clock_gettime(clock, &now);
    ns -= timespec_ns(now);
  }
  return do_sleep(rt, ns);
}

// --- names ----------------------------------------------------------------

int FIBER_HOOK_NAME(getaddrinfo)(const char* node, const char* service, const addrinfo* hints,
                                 addrinfo** res) {
  return resolver_call([&] { return real::getaddrinfo(node, service, hints, res); });
}

int FIBER_HOOK_NAME(getnameinfo)(const sockaddr* addr, socklen_t len, char* host, socklen_t hostlen,
                                 char* serv, socklen_t servlen, int flags) {
  return resolver_call(
      [&] { return real::getnameinfo(addr, len, host, hostlen, serv, servlen, flags); });
}

int FIBER_HOOK_NAME(gethostbyname_r)(const char* name, hostent* ret, char* buf, size_t buflen,
                                     hostent** result, int* h_errnop) {
  return resolver_call(
      [&] { return real::gethostbyname_r(name, ret, buf, buflen, result, h_errnop); });
}

// --- _FORTIFY_SOURCE entry points -------------------------------------------

void __chk_fail() __attribute__((noreturn));

ssize_t FIBER_HOOK_NAME(__read_chk)(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return do_read(fd, buf, n);
}

ssize_t FIBER_HOOK_NAME(__pread_chk)(int fd, void* buf, size_t n, off_t off, size_t buflen) {
  if (n > buflen) __chk_fail();
  return do_pread(fd, buf, n, off);
}

ssize_t FIBER_HOOK_NAME(__pread64_chk)(int fd, void* buf, size_t n, off64_t off, size_t buflen) {
  if (n > buflen) __chk_fail();
  return do_pread(fd, buf, n, off);
}

ssize_t FIBER_HOOK_NAME(__recv_chk)(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return do_recvfrom(fd, buf, n, flags, nullptr, nullptr);
}

ssize_t FIBER_HOOK_NAME(__recvfrom_chk)(int fd, void* buf, size_t n, size_t buflen, int flags,
                                        sockaddr* addr, socklen_t* len) {
  if (n > buflen) __chk_fail();
  return do_recvfrom(fd, buf, n, flags, addr, len);
}

int FIBER_HOOK_NAME(__poll_chk)(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) __chk_fail();
  return FIBER_HOOK_NAME(poll)(fds, n, timeout);
}

int FIBER_HOOK_NAME(__ppoll_chk)(pollfd* fds, nfds_t n, const timespec* ts, const sigset_t* mask,
                                 size_t fdslen) {
  if (fdslen / sizeof(pollfd) < n) __chk_fail();
  return FIBER_HOOK_NAME(ppoll)(fds, n, ts, mask);
}

}  // extern "C"
