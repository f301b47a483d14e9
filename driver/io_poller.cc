#include "io_poller.h"

#include <cerrno>
#include <utility>

#include "fiber/detail/park.h"
#include "sched/internal/scheduler.h"
#include "sched/internal/timer.h"

namespace fiber::detail {

void link_op(IoHandle& h, IoOp* op) { h.ops.push_back(op); }

void unlink_op(IoHandle& h, IoOp* op) {
  h.ops.remove(op);
  if (h.ops.empty() && h.closer != nullptr) ready(std::exchange(h.closer, nullptr));
}

void IoPoller::park_op(IoHandle& h, IoOp& op, int64_t deadline_ns) {
  op.state = OpState::kInFlight;
  ++in_flight_;
  link_op(h, &op);
  // The one deadline timer of both drivers: a heap entry, not a linked timeout
  // (a kernel hrtimer and a second CQE per op on io_uring), since most
  // deadlines (idle and header timeouts) never fire. When one does, the op is
  // stopped like a cancelled one, and still returns only after its completion.
  struct DeadlineTimer : Timer {
    IoPoller* poller;
    IoOp* op;
  } timer;
  if (deadline_ns > 0) {
    timer.deadline_ns = deadline_ns;
    timer.poller = this;
    timer.op = &op;
    timer.fire = [](Timer* t) {
      auto* dt = static_cast<DeadlineTimer*>(t);
      dt->poller->stop(*dt->op, OpState::kExpiring);
    };
    t_scheduler->add_timer(&timer);
  }
  park(WaitReason::kIo, deadline_ns, h.fd);  // until complete()
  if (deadline_ns > 0) t_scheduler->cancel_timer(&timer);
  unlink_op(h, &op);
}

void IoPoller::complete(IoOp& op, int32_t result) {
  op.result = result;
  // A stopped op's completion says whether the stop won: -ECANCELED, or -EINTR
  // for a transfer interrupted part-way with nothing moved.
  const bool stopped = result == -ECANCELED || result == -EINTR;
  switch (op.state) {
    case OpState::kInFlight:
      op.state = OpState::kCompleted;
      break;
    case OpState::kCancelling:
      op.state = stopped ? OpState::kCancelled : OpState::kCompletedAnyway;
      break;
    case OpState::kExpiring:
      op.state = stopped ? OpState::kExpired : OpState::kCompletedAnyway;
      break;
    default:
      return;  // not in flight: nothing to complete
  }
  --in_flight_;
  ready(op.fiber);  // only queues it: the op stays valid until it runs
}

void IoPoller::stop(IoOp& op, OpState why) {
  if (op.state != OpState::kInFlight) return;  // completed, or a stop asked already
  op.state = why;
  abort(op);
}

void IoPoller::cancel(IoHandle& h, uint64_t upto) {
  for (IoOp* op = h.ops.front(); op != nullptr; op = op->next) {
    if (op->seq <= upto) stop(*op, OpState::kCancelling);
  }
}

}  // namespace fiber::detail
