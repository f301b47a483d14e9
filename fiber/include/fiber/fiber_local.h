// FiberLocal<T> is storage with one instance per fiber, as thread_local is per
// thread: each fiber that calls get() sees its own T, default-constructed at its
// first get() and destroyed when that fiber ends.
//
// Threading: get() is fiber-only; it throws std::logic_error off a fiber.
//
// Example:
//   fiber::FiberLocal<std::string> request_id;
//   fiber::go([&] { request_id.get() = "a"; ...; assert(request_id.get() == "a"); });
#pragma once

#include <cstddef>

namespace fiber {
namespace detail {
size_t fls_new_key();
void* fls_get(size_t key);
void fls_set(size_t key, void* value, void (*destroy)(void*));
}  // namespace detail

template <class T>
class FiberLocal {
 public:
  FiberLocal() : key_(detail::fls_new_key()) {}
  FiberLocal(const FiberLocal&) = delete;
  FiberLocal& operator=(const FiberLocal&) = delete;

  // get() returns the calling fiber's instance, creating it at first use.
  T& get() {
    if (void* p = detail::fls_get(key_)) return *static_cast<T*>(p);
    T* value = new T();
    detail::fls_set(key_, value, [](void* p) { delete static_cast<T*>(p); });
    return *value;
  }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

 private:
  size_t key_;
};

}  // namespace fiber
