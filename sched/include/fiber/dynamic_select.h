// DynamicSelect is select() over a set of cases whose number is known only at
// run time, as Go's reflect.Select: add cases, then wait() for the first that
// can proceed. The cases behave exactly as select()'s (fiber/select.h): random
// choice among ready ones, nil channels never fire, at most one timeout and one
// default, kSelectNothing when nothing could ever fire.
//
// Threading: as select(): fiber-only unless there is a default case. A
// DynamicSelect itself is not shared between fibers.
//
// Example:
//   fiber::DynamicSelect sel;
//   for (auto& ch : inputs) sel.add_recv(ch, [&](std::optional<int> v) { ... });
//   sel.set_timeout(100ms);
//   int i = sel.wait();     // the index add_recv / set_timeout returned
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "fiber/select.h"

namespace fiber {

class DynamicSelect {
 public:
  // add_recv() adds a receive case; f gets std::optional<T> (std::nullopt: the
  // channel is closed). Returns the case's index.
  template <class T, class F = detail::Noop>
  int add_recv(const Chan<T>& ch, F f = {}) {
    return add(on_recv(ch, std::move(f)));
  }
  // add_send() adds a case sending `v`; f() or f(std::error_code) runs if it
  // fires. A send case that fired holds a moved-from value: add it again before
  // another wait(). Returns the case's index.
  template <class T, class V, class F = detail::Noop>
  int add_send(const Chan<T>& ch, V&& v, F f = {}) {
    return add(on_send(ch, std::forward<V>(v), std::move(f)));
  }
  // set_timeout() / set_default() add the timeout or default case; throws
  // std::logic_error if there is one already. Return the case's index.
  template <class Rep, class Period, class F = detail::Noop>
  int set_timeout(const std::chrono::duration<Rep, Period>& d, F f = {}) {
    if (has_timeout_) throw std::logic_error("fiber::DynamicSelect: a second timeout");
    has_timeout_ = true;
    return add(on_timeout(d, std::move(f)));
  }
  template <class F = detail::Noop>
  int set_default(F f = {}) {
    if (has_default_) throw std::logic_error("fiber::DynamicSelect: a second default");
    has_default_ = true;
    return add(on_default(std::move(f)));
  }

  // size() is the number of cases.
  int size() const { return static_cast<int>(cases_.size()); }

  // wait() waits for the first case that can proceed, runs its callback and
  // returns its index; kSelectNothing if no case can ever fire. Fiber-only:
  // parks the caller unless there is a default case.
  int wait() {
    const int n = size();
    std::vector<detail::SelectCase> sc(n);
    std::vector<detail::ChanWaiter> waiters(n);
    std::vector<uint16_t> scratch(2 * static_cast<size_t>(n));
    int64_t deadline = -1;
    for (int i = 0; i < n; ++i) cases_[i]->fill(sc[i], deadline);
    detail::SelectOutcome out =
        detail::select_impl(sc.data(), waiters.data(), scratch.data(), n, deadline);
    if (out.index >= 0) cases_[out.index]->dispatch(out.ok);
    return out.index;
  }

 private:
  struct Case {
    virtual ~Case() = default;
    virtual void fill(detail::SelectCase& c, int64_t& deadline) = 0;
    virtual void dispatch(bool ok) = 0;
  };
  template <class C>
  struct Holder final : Case {
    explicit Holder(C c) : c(std::move(c)) {}
    void fill(detail::SelectCase& s, int64_t& deadline) override { c.fill(s, deadline); }
    void dispatch(bool ok) override { c.dispatch(ok); }
    C c;
  };
  template <class C>
  int add(C c) {
    if (cases_.size() >= 0x7fff) throw std::length_error("fiber::DynamicSelect: too many cases");
    cases_.push_back(std::make_unique<Holder<C>>(std::move(c)));
    return size() - 1;
  }

  std::vector<std::unique_ptr<Case>> cases_;
  bool has_timeout_ = false;
  bool has_default_ = false;
};

}  // namespace fiber
