// FiberBody is what a fiber runs: the user's callable, type-erased. It lives at
// the top of the fiber's own stack when spawned locally (no allocation), or on
// the heap while it travels to another core.
#pragma once

#include <exception>
#include <functional>
#include <new>
#include <utility>

namespace fiber::detail {

// SpawnSite is where a fiber was spawned: the file and line of the go() call,
// taken as a default argument (std::source_location is missing from clang 14
// with libstdc++; these builtins are in gcc and clang alike).
struct SpawnSite {
  constexpr SpawnSite(const char* f = __builtin_FILE(), unsigned l = __builtin_LINE())
      : file(f), line(l) {}
  const char* file;
  unsigned line;
};

class FiberBody {
 public:
  virtual ~FiberBody() = default;
  // site is where the fiber was spawned (the go() call), kept for reports.
  SpawnSite site{"", 0};
  // run() calls the callable once. Exceptions leave it; the fiber decides.
  virtual void run() = 0;
  // move_to() move-constructs this body at `mem` (size() bytes, align() aligned).
  virtual FiberBody* move_to(void* mem) = 0;
  // move_to_heap() move-constructs this body with new; the result is deleted.
  virtual FiberBody* move_to_heap() = 0;
  // fail() tells a body that will never run why: its fiber could not start (no
  // stack). The body is destroyed right after. A callable with a
  // fail(std::exception_ptr) member hears of it (a join handle's, run()'s main).
  virtual void fail(std::exception_ptr why) noexcept = 0;
  virtual size_t size() const = 0;
  virtual size_t align() const = 0;
};

template <class F>
class FnBody final : public FiberBody {
 public:
  explicit FnBody(F&& f) : f_(std::move(f)) {}
  void run() override { std::invoke(std::move(f_)); }
  FiberBody* move_to(void* mem) override { return with_site(::new (mem) FnBody(std::move(f_))); }
  FiberBody* move_to_heap() override { return with_site(new FnBody(std::move(f_))); }
  void fail(std::exception_ptr why) noexcept override {
    if constexpr (requires(F & f) { f.fail(why); }) f_.fail(why);
  }
  size_t size() const override { return sizeof(FnBody); }
  size_t align() const override { return alignof(FnBody); }

 private:
  FiberBody* with_site(FiberBody* b) const {
    b->site = site;
    return b;
  }

  F f_;
};

}  // namespace fiber::detail
