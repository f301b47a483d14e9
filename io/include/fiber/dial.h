// Name resolution and dialing bounded by a Context, as Go's
// net.Resolver.LookupHost and net.Dialer.DialContext: they give up when the
// context ends, with its error (ctx.err(): "context canceled" or "context
// deadline exceeded", equal to std::errc::operation_canceled / timed_out).
//
// Threading: fiber-only (they park the caller); the stream belongs to the
// caller's core.
//
// Example:
//   auto [ctx, cancel] = fiber::with_timeout(parent, 2s);
//   auto conn = fiber::dial(ctx, "example.com:80");   // Result<TcpStream>
//   if (!conn) return conn.error();
#pragma once

#include <string_view>
#include <vector>

#include "fiber/address.h"
#include "fiber/cancellation.h"
#include "fiber/result.h"
#include "fiber/tcp.h"

namespace fiber {

// resolve(ctx, host_port) is resolve(host_port) that returns ctx.err() once ctx
// ends. getaddrinfo cannot be interrupted: a lookup still running goes on in the
// blocking pool, and its answer is dropped. Fiber-only: parks the caller.
Result<std::vector<Address>> resolve(const Context& ctx, std::string_view host_port);

// dial() resolves "host:port" and connects to the addresses in turn until one
// answers, all within ctx; ctx.err() once ctx ends. The stream is not bound to
// ctx afterwards (as in Go). Fiber-only: parks the caller.
Result<TcpStream> dial(const Context& ctx, std::string_view host_port);

}  // namespace fiber
