// Model (b): the cross-core inbox, many producers and one consumer (MPSC).
// Checks that every item posted is taken exactly once, and that what a
// producer wrote before posting (the woken fiber's result, a spawned fiber's
// body) is visible to the consumer when it runs the item.
//
// Mirrors Scheduler::post() and Scheduler::drain_inbox() in sched/scheduler.cc:
// inbox_ is a vector guarded by inbox_mu_; the consumer swaps it with its own
// drained_ vector under the mutex, runs drained_'s items outside it, and clears
// drained_ for the next swap. The two vectors are two buffers here, and the swap
// exchanges which buffer is the inbox. Scheduler::loop()'s sleep path (model
// (a), park_doorbell.cc) lets the consumer wait without spinning.
//
// Mutants:
//   -DBUGGY=1  drain_inbox() does not clear drained_ after running it: the next
//              swap hands the old items back to the inbox, and they run twice.
//   -DBUGGY=2  drain_inbox() swaps the vectors after releasing inbox_mu_ (it
//              only checks for emptiness under the lock): a data race with
//              post().
#include "model.h"

namespace model {
namespace {

// Thread 0 is the consumer (the scheduler); threads 1..kProducers each post
// kEach items, from other cores.
template <int kProducers, int kEach>
struct Inbox : rl::test_suite<Inbox<kProducers, kEach>, 1 + kProducers> {
  static constexpr int kItems = kProducers * kEach;

  // Vector is one std::vector<InboxItem>: items are indices into item_payload.
  struct Vector {
    rl::var<int> size;
    rl::var<int> items[kItems];
  };

  // Cross-thread state of the scheduler.
  rl::mutex inbox_mu;
  Vector buffers[2];
  rl::var<int> inbox;  // which buffer is inbox_; guarded by inbox_mu
  rl::atomic<bool> sleeping;
  rl::atomic<bool> inbox_hint;
  Doorbell doorbell;

  // Consumer-local state.
  int drained = 1;  // which buffer is drained_
  int ran = 0;
  int runs[kItems] = {};

  // What a producer hands over with an item (for a wake-up: the value or status
  // the waker stored in the parked fiber's frame).
  rl::var<int> item_payload[kItems];

  void before() {
    for (Vector& v : buffers) v.size($) = 0;
    inbox($) = 0;
    drained = 1;
    sleeping.store(false, memory_order_relaxed);
    inbox_hint.store(false, memory_order_relaxed);
    ran = 0;
    for (int i = 0; i < kItems; ++i) runs[i] = 0;
  }

  void thread(unsigned t) {
    if (t == 0) {
      loop();
      return;
    }
    for (int k = 0; k < kEach; ++k) {
      int item = static_cast<int>(t - 1) * kEach + k;
      item_payload[item]($) = 100 + item;
      post(item);
    }
  }

  void after() {
    for (int i = 0; i < kItems; ++i) RL_ASSERT(runs[i] == 1);
  }

  // post() is Scheduler::post().
  void post(int item) {
    inbox_mu.lock($);
    Vector& v = buffers[inbox($)];
    int n = v.size($);
    v.items[n]($) = item;  // inbox_.push_back(item)
    v.size($) = n + 1;
    inbox_hint.store(true, memory_order_relaxed);
    inbox_mu.unlock($);
    if (sleeping.load(memory_order_seq_cst) && sleeping.exchange(false, memory_order_seq_cst)) {
      doorbell.wake();
    }
  }

  // drain_inbox() is Scheduler::drain_inbox(); run() stands for pushing the
  // item to the run queue and running it.
  bool drain_inbox() {
    inbox_mu.lock($);
    if (buffers[inbox($)].size($) == 0) {
      inbox_mu.unlock($);
      return false;
    }
#if BUGGY == 2
    inbox_mu.unlock($);
#endif
    int old = inbox($);  // drained_.swap(inbox_)
    inbox($) = drained;
    drained = old;
    inbox_hint.store(false, memory_order_relaxed);
#if BUGGY != 2
    inbox_mu.unlock($);
#endif
    Vector& d = buffers[drained];
    const int n = d.size($);
    for (int i = 0; i < n; ++i) run(d.items[i]($));
#if BUGGY != 1
    d.size($) = 0;  // drained_.clear()
#endif
    return true;
  }

  void run(int item) {
    RL_ASSERT(item_payload[item]($) == 100 + item);
    RL_ASSERT(runs[item] == 0);  // taken twice
    ++runs[item];
    ++ran;
  }

  // loop() is Scheduler::loop() until every item ran (see park_doorbell.cc).
  void loop() {
    while (ran < kItems) {
      if (drain_inbox()) continue;
      sleeping.store(true, memory_order_seq_cst);
      inbox_mu.lock($);
      bool pending = buffers[inbox($)].size($) != 0;
      inbox_mu.unlock($);
      if (pending) {
        sleeping.store(false, memory_order_relaxed);
        continue;
      }
      doorbell.poll();
      sleeping.store(false, memory_order_relaxed);
    }
  }
};

}  // namespace
}  // namespace model

int main(int argc, char** argv) {
#if BUGGY == 2
  const rl::test_result_e mutant_fails = rl::test_result_data_race;
#else
  const rl::test_result_e mutant_fails = rl::test_result_user_assert_failed;
#endif
  model::Runner r(argc, argv, "inbox", mutant_fails);
  r.check<model::Inbox<1, 1>>("1 producer x 1 item", model::Search::full());
  r.check<model::Inbox<2, 2>>("2 producers x 2 items", model::Search::bounded(4));
  r.check<model::Inbox<3, 2>>("3 producers x 2 items", model::Search::random(500000));
  return r.finish();
}
