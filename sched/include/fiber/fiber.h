// The whole public API of the runtime in one include.
#pragma once

#include "fiber/blocking.h"
#include "fiber/cancellation.h"
#include "fiber/chan.h"
#include "fiber/fiber_local.h"
#include "fiber/join_handle.h"
#include "fiber/mutex.h"
#include "fiber/runtime.h"
#include "fiber/select.h"
#include "fiber/stack_size.h"
#include "fiber/time.h"
#include "fiber/wait_group.h"
