// The guard of ListenOptions::reuse_port (tcp.cc): SO_REUSEPORT lets any
// process of the same user share a port, so the first listener of this process
// on a port first checks that nobody listens there yet. Private to io/.
#pragma once

#include "fiber/address.h"
#include "fiber/result.h"

namespace fiber::detail {

// check_reuse_port() fails with address_in_use if a socket outside this
// process's reuse_port listeners already listens on `at` (a plain bind of a
// probe socket fails); {} for port 0 or when one of ours already listens there.
// Thread-safe.
Result<void> check_reuse_port(const Address& at);

// note_reuse_port() records `fd`, a reuse_port listener just made (its socket
// inode, not the fd number, which may be reused once closed). Thread-safe.
void note_reuse_port(int fd);

}  // namespace fiber::detail
