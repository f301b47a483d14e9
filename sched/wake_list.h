// WakeList collects fibers to ready() once every lock is released, so a woken
// fiber on another core never spins on a lock its waker still holds.
#pragma once

#include "fiber/detail/park.h"
#include "fiber/internal/control_block.h"

namespace fiber::detail {

// Linked through Fiber::next, which is free while a fiber is parked (or about to
// park) and off every run queue. Core-local: the list itself is not shared.
class WakeList {
 public:
  void add(Fiber* f) {
    f->next = head_;
    head_ = f;
  }
  // wake_all() readies every fiber; call it after releasing the lock.
  void wake_all() {
    while (Fiber* f = head_) {
      head_ = f->next;
      ready(f);  // f may run at once on its core: do not touch it afterwards
    }
  }

 private:
  Fiber* head_ = nullptr;
};

}  // namespace fiber::detail
