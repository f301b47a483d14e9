// The runtime in one include: fibers, channels, select, time, sync, contexts,
// the blocking pool. I/O sits in a layer above and has its own headers:
// fiber/net.h (sockets), fiber/file.h, fiber/dial.h, fiber/ioutil.h,
// fiber/bufio.h, fiber/signal.h; fiber/all.h includes all of them and this.
#pragma once

#include "fiber/after_func.h"
#include "fiber/blocking.h"
#include "fiber/cancellation.h"
#include "fiber/chan.h"
#include "fiber/dynamic_select.h"
#include "fiber/errgroup.h"
#include "fiber/fiber_local.h"
#include "fiber/join_handle.h"
#include "fiber/mutex.h"
#include "fiber/once.h"
#include "fiber/runtime.h"
#include "fiber/rwmutex.h"
#include "fiber/select.h"
#include "fiber/semaphore.h"
#include "fiber/stack_size.h"
#include "fiber/time.h"
#include "fiber/wait_group.h"
