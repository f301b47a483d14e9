// Timers of one scheduler: a binary min-heap of intrusive nodes, ordered by
// deadline then by arming order (equal deadlines fire first-armed first).
//
// Threading: core-local; only the owning scheduler thread touches it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fiber::detail {

struct Timer {
  static constexpr size_t kNotQueued = ~size_t{0};

  int64_t deadline_ns = 0;
  uint64_t seq = 0;
  size_t index = kNotQueued;       // position in the heap, kNotQueued when not armed
  void (*fire)(Timer*) = nullptr;  // called by the scheduler once the deadline passed

  bool armed() const { return index != kNotQueued; }
};

class TimerHeap {
 public:
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  Timer* top() const { return heap_.front(); }

  void push(Timer* t) {
    t->seq = next_seq_++;
    t->index = heap_.size();
    heap_.push_back(t);
    up(t->index);
  }

  // remove() disarms `t` if armed.
  void remove(Timer* t) {
    if (!t->armed()) return;
    size_t i = t->index;
    Timer* last = heap_.back();
    heap_.pop_back();
    t->index = Timer::kNotQueued;
    if (last == t) return;
    heap_[i] = last;
    last->index = i;
    up(i);
    down(last->index);
  }

 private:
  static bool before(const Timer* a, const Timer* b) {
    return a->deadline_ns != b->deadline_ns ? a->deadline_ns < b->deadline_ns : a->seq < b->seq;
  }
  void place(size_t i, Timer* t) {
    heap_[i] = t;
    t->index = i;
  }
  void up(size_t i) {
    Timer* t = heap_[i];
    while (i > 0) {
      size_t parent = (i - 1) / 2;
      if (!before(t, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, t);
  }
  void down(size_t i) {
    Timer* t = heap_[i];
    const size_t n = heap_.size();
    for (;;) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
      if (!before(heap_[child], t)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, t);
  }

  std::vector<Timer*> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace fiber::detail
