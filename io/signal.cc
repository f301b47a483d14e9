// signal_notify(), signal_stop() and notify_context() (fiber/signal.h).
//
// A socket pair per activation: the handler writes the signal number to the
// write end (non-blocking: a full socket drops the signal rather than block a
// handler); a relay fiber reads the read end (a UnixStream of its core) and
// try_sends to the subscribed channels. When the last subscription goes, the
// old handlers are put back, the write end is published as closed, in-flight
// handlers are waited out (an atomic count: both are async-signal-safe), and the
// write end is closed: the relay fiber reads end of stream and ends, closing the
// read end.
#include "fiber/signal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>
#include <vector>

#include "driver/internal/io.h"
#include "fiber/runtime.h"
#include "fiber/select.h"
#include "fiber/unix.h"

namespace fiber {
namespace {

std::atomic<int> g_write_fd{-1};
std::atomic<int> g_in_handler{0};

void on_signal(int signo) {
  g_in_handler.fetch_add(1, std::memory_order_acq_rel);
  const int saved = errno;
  int fd = g_write_fd.load(std::memory_order_acquire);
  if (fd >= 0) {
    unsigned char b = static_cast<unsigned char>(signo);
    (void)::write(fd, &b, 1);
  }
  errno = saved;
  g_in_handler.fetch_sub(1, std::memory_order_acq_rel);
}

struct Subscription {
  Chan<int> ch;
  sigset_t set;
};

struct Registry {
  std::mutex mu;
  std::vector<Subscription> subs;   // guarded by mu
  int refs[NSIG] = {};              // guarded by mu: subscriptions per signal
  struct sigaction old[NSIG] = {};  // guarded by mu: the handler before ours
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: handlers may outlive statics
  return *r;
}

// The relay fiber closes this when it ends (after its socket); a new relay gets
// a new one. Guarded by the registry's mu.
Chan<int>* g_relay_exited = nullptr;

// relay() runs in the relay fiber: read signal numbers until end of stream.
void relay(UnixStream in, Chan<int> exited) {
  unsigned char buf[64];
  for (;;) {
    Result<size_t> n = in.read({reinterpret_cast<char*>(buf), sizeof buf});
    if (!n || *n == 0) {
      in.close();
      exited.close();
      return;
    }
    Registry& r = registry();
    std::lock_guard<std::mutex> g(r.mu);
    for (size_t i = 0; i < *n; ++i) {
      for (const Subscription& s : r.subs) {
        if (sigismember(&s.set, buf[i]) == 1) (void)s.ch.try_send(buf[i]);
      }
    }
  }
}

// start_relay() makes the socket pair and the relay fiber. Caller holds mu.
Result<void> start_relay() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return std::error_code(errno, std::generic_category());
  }
  ::fcntl(sv[1], F_SETFL, ::fcntl(sv[1], F_GETFL) | O_NONBLOCK);
  if ((detail::socket_flags() & SOCK_NONBLOCK) != 0) {
    ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  }
  Chan<int> exited(0);
  delete g_relay_exited;
  g_relay_exited = new Chan<int>(exited);
  go([in = UnixStream(sv[0]), exited]() mutable { relay(std::move(in), std::move(exited)); });
  g_write_fd.store(sv[1], std::memory_order_release);
  return {};
}

// stop_relay() ends the relay once no subscription is left; the channel its
// fiber closes when it has ended (nil if none runs). Caller holds mu.
Chan<int> stop_relay() {
  int fd = g_write_fd.exchange(-1, std::memory_order_acq_rel);
  if (fd < 0) return {};
  while (g_in_handler.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  ::close(fd);  // the relay fiber reads end of stream
  Chan<int> exited = *g_relay_exited;
  delete g_relay_exited;
  g_relay_exited = nullptr;
  return exited;
}

bool catchable(int s) { return s > 0 && s < NSIG && s != SIGKILL && s != SIGSTOP; }

// stop_locked() removes the subscription of `ch`; `exited` is the relay's exit
// channel if that was the last one. Caller holds mu.
void stop_locked(Registry& r, const Chan<int>& ch, Chan<int>& exited) {
  for (auto it = r.subs.begin(); it != r.subs.end(); ++it) {
    if (!(it->ch == ch)) continue;
    for (int s = 1; s < NSIG; ++s) {
      if (sigismember(&it->set, s) == 1 && --r.refs[s] == 0) ::sigaction(s, &r.old[s], nullptr);
    }
    r.subs.erase(it);
    break;
  }
  if (r.subs.empty()) exited = stop_relay();
}

}  // namespace

Result<void> signal_notify(const Chan<int>& ch, std::initializer_list<int> signals) {
  if (ch.nil()) return std::errc::invalid_argument;
  for (int s : signals) {
    if (!catchable(s)) return std::errc::invalid_argument;
  }
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  if (g_write_fd.load(std::memory_order_relaxed) < 0) {
    if (Result<void> started = start_relay(); !started) return started;
  }
  Subscription* sub = nullptr;
  for (Subscription& s : r.subs) {
    if (s.ch == ch) sub = &s;
  }
  if (sub == nullptr) {
    r.subs.push_back(Subscription{ch, {}});
    sub = &r.subs.back();
    sigemptyset(&sub->set);
  }
  for (int s : signals) {
    if (sigismember(&sub->set, s) == 1) continue;
    sigaddset(&sub->set, s);
    if (r.refs[s]++ == 0) {
      struct sigaction sa = {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      ::sigaction(s, &sa, &r.old[s]);
    }
  }
  return {};
}

void signal_stop(const Chan<int>& ch) {
  Registry& r = registry();
  Chan<int> exited;
  {
    std::lock_guard<std::mutex> g(r.mu);
    stop_locked(r, ch, exited);
  }
  if (!exited.nil() && current_id() != 0) (void)exited.recv();  // closed as the relay ends
}

namespace detail {
// SignalWatch is the state a notify_context() shares with its fiber and stop.
struct SignalWatch {
  CancelFunc cancel;
  Chan<int> unregistered{0};  // closed by the fiber once the signals are off
};
}  // namespace detail

void StopFunc::operator()() const {
  if (w_ == nullptr) return;
  w_->cancel();
  if (current_id() != 0) (void)w_->unregistered.recv();
}

WithStop notify_context(const Context& parent, std::initializer_list<int> signals) {
  WithCancel c = with_cancel(parent);
  WithStop out{c.ctx, StopFunc()};
  out.stop.w_ = std::make_shared<detail::SignalWatch>();
  out.stop.w_->cancel = c.cancel;
  Chan<int> ch(1);
  if (!signal_notify(ch, signals)) {
    c.cancel();  // nothing to wait for: a bad signal ends the context at once
    out.stop.w_->unregistered.close();
    return out;
  }
  go([ch, w = out.stop.w_, ctx = c.ctx] {
    select(on_recv(ch), on_recv(ctx.done()));
    w->cancel();
    signal_stop(ch);
    w->unregistered.close();
  });
  return out;
}

}  // namespace fiber
