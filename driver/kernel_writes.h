// mark_kernel_writes(): tells memcheck which bytes the kernel wrote into user
// memory for a completed io_uring operation (its row's transfer). Valgrind sees a syscall's writes,
// but not those the kernel makes later, from the ring, so without this a buffer
// filled by a read or recv stays "uninitialised" to memcheck. A no-op unless
// built with FIBER_VALGRIND and running under valgrind.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "driver/internal/io.h"
#include "op_table.h"

#ifdef FIBER_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

namespace fiber::detail {

inline void mark_kernel_writes([[maybe_unused]] const OpTraits& traits,
                               [[maybe_unused]] const IoRequest& req,
                               [[maybe_unused]] int32_t result) {
#ifdef FIBER_VALGRIND
  if (!RUNNING_ON_VALGRIND || result < 0 || !traits.kernel_writes) return;
  switch (traits.transfer) {
    case Transfer::kBuffer:
      VALGRIND_MAKE_MEM_DEFINED(req.buf, static_cast<size_t>(result));
      break;
    case Transfer::kMessage: {
      const msghdr* m = req.msg;
      VALGRIND_MAKE_MEM_DEFINED(m, sizeof *m);  // msg_namelen, msg_controllen, msg_flags
      size_t left = static_cast<size_t>(result);
      for (size_t i = 0; i < m->msg_iovlen && left > 0; ++i) {
        const size_t n = std::min(left, m->msg_iov[i].iov_len);
        VALGRIND_MAKE_MEM_DEFINED(m->msg_iov[i].iov_base, n);
        left -= n;
      }
      if (m->msg_name != nullptr) VALGRIND_MAKE_MEM_DEFINED(m->msg_name, m->msg_namelen);
      if (m->msg_control != nullptr) VALGRIND_MAKE_MEM_DEFINED(m->msg_control, m->msg_controllen);
      break;
    }
    case Transfer::kAddress:
      if (req.addrlen != nullptr) {
        VALGRIND_MAKE_MEM_DEFINED(req.addrlen, sizeof *req.addrlen);
        if (req.addr != nullptr) {
          VALGRIND_MAKE_MEM_DEFINED(req.addr,
                                    std::min<size_t>(*req.addrlen, sizeof(sockaddr_storage)));
        }
      }
      break;
    case Transfer::kNone:
      break;
  }
#endif
}

}  // namespace fiber::detail
