// Chan<T> is Go's chan T: a typed FIFO through which fibers hand values to each
// other, parking (never blocking the thread) while the channel is full or empty.
// A Chan is a cheap handle: copies share one channel, which lives until the last
// handle is gone. A default-constructed Chan is a nil channel: it holds nothing,
// select() ignores it, and its operations fail at once instead of parking forever.
//
// Capacity 0 is a rendezvous: send() parks until a receiver takes the value.
// Capacity N buffers up to N values. Waiting senders and waiting receivers are each
// served first come, first served.
//
// Closing: close() wakes every parked receiver and sender. Receivers then drain
// what is buffered, after which recv() reports "closed" (std::nullopt), like
// `v, ok := <-ch` with ok == false. Sending on a closed channel is a programming
// error that Go answers with a panic; here it is an error value
// (std::errc::broken_pipe, as writing to a closed pipe) that send() returns and the
// caller must look at: a fiber runtime cannot unwind another fiber's stack, and an
// abort would take every other fiber of the process with it.
//
// Threading: thread-safe. The calls are const: they act on the shared channel,
// not on the handle. Handles may be copied to and used from fibers on any core;
// a wake-up of a fiber on another core goes through that core's inbox.
// send()/recv() are fiber-only (they may park); try_*, close, len, cap never park
// and may be called from any runtime thread.
//
// Example:
//   fiber::Chan<int> ch(16);                       // buffered, capacity 16
//   fiber::go_on(1, [ch] () mutable {
//     for (int i = 0; i < 100; ++i) ch.send(i);
//     ch.close();
//   });
//   while (std::optional<int> v = ch.recv()) use(*v);  // ends once closed and drained
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>

#include "fiber/detail/chan_core.h"

namespace fiber {

class Context;

// RecvResult is the outcome of try_recv() and of recv(ctx): a value, or why there
// is none: std::errc::broken_pipe (closed and drained),
// std::errc::resource_unavailable_try_again (try_recv: empty),
// std::errc::operation_canceled / std::errc::timed_out (the context ended),
// std::errc::invalid_argument (nil channel).
template <class T>
struct RecvResult {
  std::optional<T> value;
  std::error_code error;

  explicit operator bool() const { return value.has_value(); }
  T& operator*() { return *value; }
  T* operator->() { return &*value; }
  // closed() is true if the channel is closed and drained.
  bool closed() const { return error == std::errc::broken_pipe; }
};

template <class T>
class Chan {
 public:
  // Chan() is a nil channel.
  Chan() = default;
  Chan(const Chan& o) : core_(o.core_) {
    if (core_ != nullptr) core_->ref();
  }
  Chan(Chan&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  Chan& operator=(Chan o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~Chan() {
    if (core_ != nullptr) core_->unref();
  }

  // make() creates a channel buffering `capacity` values (0: unbuffered). Returns
  // std::nullopt for a negative capacity or a buffer over 1 GiB; throws
  // std::bad_alloc when memory runs out. Thread-safe.
  static std::optional<Chan> make(int64_t capacity = 0) {
    detail::ChanCore* core = detail::ChanCore::create(capacity, &detail::kElemOps<T>);
    if (core == nullptr) return std::nullopt;
    return Chan(core, kAdopt);
  }
  // Chan(capacity) is make(capacity) for a capacity the program chose, which
  // reads like Go's make(chan T, n): throws std::invalid_argument where make()
  // returns std::nullopt. Use make() for a capacity that comes from input.
  explicit Chan(int64_t capacity)
      : core_(detail::ChanCore::create(capacity, &detail::kElemOps<T>)) {
    if (core_ == nullptr) throw std::invalid_argument("fiber::Chan: bad capacity");
  }

  // send() moves `v` into the channel, parking while it is full (unbuffered: until
  // a receiver takes it). Returns {} on success, std::errc::broken_pipe if the
  // channel is or becomes closed (v is then dropped), std::errc::invalid_argument
  // on a nil channel. Not [[nodiscard]]: on a channel that is never closed while
  // senders remain (the usual shape) it cannot fail. Fiber-only: parks the caller.
  std::error_code send(T v) const {
    if (core_ == nullptr) return std::make_error_code(std::errc::invalid_argument);
    return code(core_->send(&v));
  }
  // send(ctx, v) is send() that gives up when `ctx` ends, returning ctx.err().
  // Defined in fiber/cancellation.h. Fiber-only: parks the caller.
  [[nodiscard]] std::error_code send(const Context& ctx, T v) const;

  // try_send() sends without parking; std::errc::resource_unavailable_try_again
  // when no receiver waits and the buffer is full. Otherwise as send().
  [[nodiscard]] std::error_code try_send(T v) const {
    if (core_ == nullptr) return std::make_error_code(std::errc::invalid_argument);
    return code(core_->try_send(&v));
  }

  // recv() takes the next value, parking while the channel is empty and open.
  // Returns std::nullopt once the channel is closed and drained (and at once on a
  // nil channel). Fiber-only: parks the caller.
  std::optional<T> recv() const {
    std::optional<T> out;
    if (core_ == nullptr) return out;
    Slot s;
    if (core_->recv(s.raw) == detail::ChanStatus::kOk) s.move_to(out);
    return out;
  }
  // recv(ctx) is recv() that gives up when `ctx` ends (error ctx.err()). Defined in
  // fiber/cancellation.h. Fiber-only: parks the caller.
  RecvResult<T> recv(const Context& ctx) const;

  // try_recv() takes a value if one is ready, without parking. See RecvResult.
  RecvResult<T> try_recv() const {
    RecvResult<T> r;
    if (core_ == nullptr) {
      r.error = std::make_error_code(std::errc::invalid_argument);
      return r;
    }
    Slot s;
    detail::ChanStatus st = core_->try_recv(s.raw);
    if (st == detail::ChanStatus::kOk) {
      s.move_to(r.value);
    } else {
      r.error = code(st);
    }
    return r;
  }

  // close() closes the channel: parked senders fail, parked receivers wake, later
  // receivers drain the buffer. Returns std::errc::broken_pipe if already closed,
  // std::errc::invalid_argument on a nil channel. Thread-safe.
  std::error_code close() const {
    if (core_ == nullptr) return std::make_error_code(std::errc::invalid_argument);
    return core_->close() ? std::error_code() : std::make_error_code(std::errc::broken_pipe);
  }

  // len() is the number of buffered values; cap() the capacity (0 for nil).
  size_t len() const { return core_ == nullptr ? 0 : core_->len(); }
  size_t cap() const { return core_ == nullptr ? 0 : core_->cap(); }
  // nil() is true for a default-constructed (or moved-from) channel.
  bool nil() const { return core_ == nullptr; }

  friend bool operator==(const Chan& a, const Chan& b) { return a.core_ == b.core_; }

  // Internal: used by select().
  detail::ChanCore* core() const { return core_; }

 private:
  enum AdoptTag { kAdopt };
  Chan(detail::ChanCore* core, AdoptTag) : core_(core) {}

  // Slot is raw storage a waker constructs a T into.
  struct Slot {
    alignas(T) unsigned char raw[sizeof(T)];
    void move_to(std::optional<T>& out) {
      T* p = std::launder(reinterpret_cast<T*>(raw));
      out.emplace(std::move(*p));
      p->~T();
    }
  };

  static std::error_code code(detail::ChanStatus s) {
    switch (s) {
      case detail::ChanStatus::kOk:
        return {};
      case detail::ChanStatus::kClosed:
        return std::make_error_code(std::errc::broken_pipe);
      case detail::ChanStatus::kWouldBlock:
        break;
    }
    return std::make_error_code(std::errc::resource_unavailable_try_again);
  }

  detail::ChanCore* core_ = nullptr;
};

}  // namespace fiber
