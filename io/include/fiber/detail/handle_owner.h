// HandleOwner is the fd ownership that Socket and File share: it holds the
// driver's per-fd IoHandle on the heap (the epoll set keeps its address, so it
// must not move when the socket or file object does) and closes it when it is
// destroyed or assigned over. Not an API: fiber/socket.h and fiber/file.h hold
// one each.
//
// Threading: as the object that holds it (core-local; close() and cancel()
// work from any core, see Socket).
#pragma once

#include <memory>

namespace fiber::detail {

struct IoHandle;  // driver/internal/io.h

class HandleOwner {
 public:
  // The special members are defined where IoHandle is complete (each may
  // destroy the unique_ptr); the empty state holds no handle.
  HandleOwner();
  // HandleOwner() takes `fd` for the calling core.
  explicit HandleOwner(int fd);
  HandleOwner(HandleOwner&&) noexcept;
  // operator=() closes the fd held, if any, then takes `other`'s.
  HandleOwner& operator=(HandleOwner&& other) noexcept;
  ~HandleOwner();

  // close() cancels the operations in flight, waits for the kernel to let go
  // of them, then closes the fd (io_close()). Idempotent.
  void close();
  // cancel() cancels the operations in flight; the fd stays open (io_cancel()).
  void cancel();
  bool is_open() const;
  int fd() const;  // -1 when closed or empty

  // get() is the handle, or nullptr when empty (moved from or default-made).
  IoHandle* get() const { return h_.get(); }
  IoHandle& operator*() const { return *h_; }

 private:
  std::unique_ptr<IoHandle> h_;
};

}  // namespace fiber::detail
