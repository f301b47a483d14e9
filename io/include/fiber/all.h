// Everything public of the runtime and its I/O in one include: fiber/fiber.h
// (fibers, channels, select, time, sync, contexts), the sockets, files,
// dialing with a context, Go's io and bufio helpers, and signals. The HTTP
// server (fiber/http.h) is a separate library.
#pragma once

#include "fiber/bufio.h"
#include "fiber/dial.h"
#include "fiber/fiber.h"
#include "fiber/file.h"
#include "fiber/ioutil.h"
#include "fiber/net.h"
#include "fiber/signal.h"
